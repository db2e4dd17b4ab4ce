#!/usr/bin/env bash
# `make image`: builds the Dockerfile with buildah (no daemon) and pushes it.
#   IMAGE  the reference to push (default $BPFGLOBALS_REGISTRY/bpfglobals:<project version>)
#   BASE   the Dockerfile's base (default: the Debian base tools/image/base.sh builds here,
#          since no public registry is reachable; users elsewhere may pass the public default)
# Plain HTTP is allowed only for a registry on loopback (the dev cluster's).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
if [[ -z ${IMAGE:-} ]]; then
  [[ -n ${BPFGLOBALS_REGISTRY:-} ]] || {
    echo 'image: set IMAGE=… or BPFGLOBALS_REGISTRY (eval "$(bpfglobals dev-cluster env)")' >&2
    exit 1
  }
  IMAGE=$BPFGLOBALS_REGISTRY/bpfglobals:$VERSION
fi
BASE=${BASE:-$(tools/image/base.sh)}
# The build stage downloads wheels from PyPI: it sees this machine's pip configuration and CA
# bundle (e.g. a proxy's CA) through read-only mounts that are not committed into the image.
mounts=()
for f in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
  [[ -f $f ]] && mounts+=(--volume "$f:$f:ro")
done
buildah bud --quiet --layers --network host "${mounts[@]}" --build-arg "BASE=$BASE" \
  --tag "$IMAGE" --file Dockerfile . >/dev/null
tls=true
[[ $IMAGE == 127.0.0.1:* || $IMAGE == localhost:* ]] && tls=false
buildah push --quiet --tls-verify=$tls "$IMAGE" "docker://$IMAGE"
echo "$IMAGE"
