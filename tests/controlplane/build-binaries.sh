#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl, etcd, helm)
# from the pinned Go wrapper modules beside this script, once per machine: the binaries are
# cached under a directory keyed by the versions, and a second run only checks they exist.
# Prints the cache directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0
cache_root="${ATMOS_AUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/atmos-auth-controller}"
bin="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin"
# Two cores and 24 GiB: one package at a time keeps the linker's peak memory low.
export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath" GOTOOLCHAIN=local
log() { echo "build-binaries: $*" >&2; }

k8s_ldflags() {
  local v="$1" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

build() { # module-dir package output ldflags
  local dir="$1" pkg="$2" out="$3" ldflags="$4"
  if [ -x "$bin/$out" ]; then return; fi
  log "building $out (first run on this machine only)"
  local start=$SECONDS
  (cd "$here/go/$dir" && go build -ldflags "$ldflags" -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
  log "built $out in $((SECONDS - start)) s"
}

build etcd go.etcd.io/etcd/server/v3 etcd "-s -w"
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$(k8s_ldflags $K8S_VERSION)"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$(k8s_ldflags $K8S_VERSION)"
build kubernetes k8s.io/kubernetes/cmd/kubectl kubectl "$(k8s_ldflags $K8S_VERSION)"
build helm helm.sh/helm/v3/cmd/helm helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
echo "$bin"
