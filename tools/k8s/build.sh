#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy into a cache keyed by version:
#   kube-apiserver, kube-controller-manager, kubectl, and for `dev-cluster up --node` kubelet and
#   kube-scheduler (Kubernetes $K8S_VERSION, one wrapper module), etcd, helm, and for the OCI
#   image tests cosign and oras (each in a directory keyed by its own version, linked into bin/).
# Idempotent: exits at once when the binaries are there. Prints the bin directory last.
# Cold: ~1 GB of modules and 15-25 minutes on two cores; warm: nothing.
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=v1.35.4
ETCD_VERSION=$(grep -oE 'go.etcd.io/etcd/server/v3 v[0-9.]+' etcd/go.mod | head -1 | cut -d' ' -f2)
HELM_VERSION=$(grep -oE 'helm.sh/helm/v3 v[0-9.]+' helm/go.mod | head -1 | cut -d' ' -f2)
CACHE=${BPFGLOBALS_TOOLS_DIR:-/var/cache/bpfglobals/tools}
COSIGN_VERSION=$(grep -oE 'github.com/sigstore/cosign/v2 v[0-9.]+' cosign/go.mod | head -1 | cut -d' ' -f2)
ORAS_VERSION=$(grep -oE 'oras.land/oras v[0-9.]+' oras/go.mod | head -1 | cut -d' ' -f2)
BIN=$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION/bin
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod CGO_ENABLED=0
command -v go >/dev/null || { echo "build.sh: Go is needed (apt-get install golang-go, or /usr/local/go)" >&2; exit 1; }
mkdir -p "$BIN"

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # dir, output name, package, ldflags
  if [[ -x $BIN/$2 ]]; then return; fi
  echo "build.sh: building $2 (cold builds take minutes)" >&2
  (cd "$1" && go build -trimpath -ldflags "$4" -o "$BIN/$2.tmp" "$3") && mv "$BIN/$2.tmp" "$BIN/$2"
}

build apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build apiserver kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build apiserver kubectl k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
# Same module and build cache as the apiserver: seconds once the lines above were built.
build apiserver kubelet k8s.io/kubernetes/cmd/kubelet "$k8s_ldflags"
build apiserver kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
build helm helm helm.sh/helm/v3/cmd/helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

# cosign and oras live outside the control plane's directory (a new version of either must not
# rebuild Kubernetes); bin/ links to the versioned builds.
linked() { # dir, name, package, ldflags, version
  local out=$CACHE/$2-$5/bin
  if [[ ! -x $out/$2 ]]; then
    mkdir -p "$out"
    echo "build.sh: building $2 $5 (cold builds take minutes)" >&2
    (cd "$1" && go build -trimpath -ldflags "$4" -o "$out/$2.tmp" "$3") && mv "$out/$2.tmp" "$out/$2"
  fi
  ln -sfn "$out/$2" "$BIN/$2"
}
linked cosign cosign github.com/sigstore/cosign/v2/cmd/cosign \
  "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION" "$COSIGN_VERSION"
linked oras oras oras.land/oras/cmd/oras \
  "-s -w -X oras.land/oras/internal/version.Version=${ORAS_VERSION#v} -X oras.land/oras/internal/version.BuildMetadata=" "$ORAS_VERSION"

"$BIN/kube-apiserver" --version >/dev/null
"$BIN/kubelet" --version >/dev/null
"$BIN/kube-scheduler" --version >/dev/null
"$BIN/etcd" --version >/dev/null
"$BIN/kubectl" version --client >/dev/null
"$BIN/helm" version >/dev/null
"$BIN/cosign" version >/dev/null
"$BIN/oras" version >/dev/null
echo "$BIN"
