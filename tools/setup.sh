#!/usr/bin/env bash
# Installs everything the project needs on a Debian machine, idempotently:
# apt packages, the Python virtualenv with the project, bpffs, and (via tools/k8s) the local
# Kubernetes control plane binaries. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(clang llvm bpftool libbpf-dev iproute2 linux-libc-dev libc6-dev python3-venv iputils-ping)
# `dev-cluster up --node` and `make image`: a container runtime for the kubelet, the CNI bridge
# plugin, a local registry, and buildah + debootstrap to build the image without a daemon or a
# public registry. Their services are not started (dev-cluster runs its own instances).
APT_PACKAGES+=(containerd runc containernetworking-plugins docker-registry buildah debootstrap)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -e $stamp ]]; then
  echo "setup: pip install -e .[dev]"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# bpffs: these machines boot without it.
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  mount -t bpf bpf /sys/fs/bpf
fi

# The local control plane (kube-apiserver, etcd, kubelet, ...) built from the Go module proxy,
# cached.
if [[ -x tools/k8s/build.sh ]]; then
  tools/k8s/build.sh
fi

# iproute2's legacy BPF loader (an `ip` without libbpf): the peer for SEC("maps") objects in
# tests/kernel/test_legacy_maps_iproute2.py.
tools/iproute2-legacy/build.sh >/dev/null

# The image's base (Debian minbase + Python via debootstrap) in buildah's storage, cached.
if [[ -x tools/image/base.sh ]]; then
  tools/image/base.sh >/dev/null
fi
