#!/usr/bin/env bash
# The pod sandbox ("pause") image, built here (no public registry is reachable): a static
# binary in an empty image, pushed to REGISTRY (host:port, plain HTTP on loopback).
# Usage: pause.sh REGISTRY   -> prints the pushed reference.
set -euo pipefail
REGISTRY=$1
HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=localhost/bpfglobals-pause:1
REF=$REGISTRY/pause:1
if ! buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  work=$(mktemp -d /var/tmp/bpfglobals-pause.XXXXXX)
  ctr=""
  trap '[[ -n $ctr ]] && buildah rm "$ctr" >/dev/null 2>&1; rm -rf "$work"' EXIT
  ${CC:-clang} -static -O2 -o "$work/pause" "$HERE/pause.c"
  ctr=$(buildah from scratch)
  buildah copy "$ctr" "$work/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
  ctr=""
fi
buildah push --quiet --tls-verify=false "$IMAGE" "docker://$REF" >/dev/null
echo "$REF"
