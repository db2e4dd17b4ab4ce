#!/usr/bin/env bash
# The image's base when no public registry is reachable: Debian bookworm (minbase) with Python,
# built by debootstrap through this machine's apt sources and committed into buildah's local
# storage as $BASE_IMAGE. Idempotent: exits at once when the image is there. Prints its name.
# Cold: ~2 minutes and ~60 MB of packages; warm: nothing.
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-localhost/bpfglobals-base:bookworm}
# This machine's Debian mirror (one-line or deb822 sources), or $DEBIAN_MIRROR.
MIRROR=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -oE '^(deb|URIs:) +http[^ ]*/debian/?( |$)' | awk '{print $2}' | head -1 || true)}
[[ -n $MIRROR ]] || { echo "base.sh: no Debian mirror in the apt sources; set DEBIAN_MIRROR" >&2; exit 1; }
# python3-venv: the Dockerfile installs into a venv (Debian's python refuses pip installs, PEP 668);
# ca-certificates: ELF objects fetched from https URLs.
PACKAGES=python3,python3-venv,ca-certificates

if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "$BASE_IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base.sh: debootstrap is needed (tools/setup.sh)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/bpfglobals-base.XXXXXX)
ctr=""
cleanup() {
  [[ -n $ctr ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "base.sh: debootstrap --variant=minbase bookworm from $MIRROR" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Smaller: no apt lists, caches, docs or man pages in the image.
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/* \
  "$work"/rootfs/usr/share/{doc,man,info,locale}/* "$work"/rootfs/var/log/*
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
ctr=$(buildah from scratch)
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
ctr=""
echo "$BASE_IMAGE"
