#!/usr/bin/env bash
# Builds iproute2's `ip` WITHOUT libbpf, so that it loads objects with its own legacy loader
# (struct bpf_elf_map in SEC("maps"), PIN_GLOBAL_NS pinning). Debian's `ip` links libbpf 1.x,
# which refuses legacy map definitions, as does bpftool: this binary is the peer the legacy-map
# tests compare against. Source: Debian's iproute2 6.1.0 tarball (the version Debian ships),
# checked against its sha256. Idempotent; prints the binary's path.
set -euo pipefail

VERSION=6.1.0
SHA256=5ce12a0fec6b212725ef218735941b2dab76244db7e72646a76021b0537b43ab
DEST=${BPFGLOBALS_TOOLS:-/var/cache/bpfglobals/tools}/iproute2-legacy-$VERSION
if [[ -x $DEST/ip ]]; then
  echo "$DEST/ip"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The tarball comes through apt as this machine is set up (its own mirrors), as a source
# package: deb-src twins of the configured deb entries, in a private apt state directory.
apt_dir=$work/apt
mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -e $f ]] && sed -e 's/^Types: deb$/Types: deb-src/' "$f" >"$apt_dir/parts/$(basename "$f")"
done
if [[ -e /etc/apt/sources.list ]]; then
  sed -n -e 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_dir/parts/legacy.list"
fi
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" -qq update
(cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only iproute2 >/dev/null)
mv "$work"/iproute2_"$VERSION".orig.tar.xz "$work/src.tar.xz"
echo "$SHA256  $work/src.tar.xz" | sha256sum -c --quiet
tar -xJf "$work/src.tar.xz" -C "$work"
cd "$work"/iproute2-*/
LIBBPF_FORCE=off ./configure >"$work/configure.log" 2>&1
grep -q "libbpf support: no" "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
make -j"$(nproc)" SUBDIRS="lib ip" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log"; exit 1; }
mkdir -p "$DEST"
install -m 0755 ip/ip "$DEST/ip"
echo "$DEST/ip"
