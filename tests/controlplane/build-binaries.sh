#!/usr/bin/env bash
# Builds the test control plane from the pinned Go wrapper modules beside this script, once per
# machine: the binaries are cached under a directory keyed by the versions and the layout, and
# a second run only checks they exist. Prints the cache directory on stdout.
#
#   build-binaries.sh [control-plane|helm|registry|all]     (default: control-plane)
#
# control-plane: etcd, and one multi-call `kube` binary with the links kube-apiserver,
#   kube-controller-manager and kubectl (what `cargo dev` and every control plane need).
# helm: helm, stamped like an official release (only the chart tests use it).
# registry: the OCI registry server (distribution) and crane (go-containerregistry), for the
#   ECR pull-Secret and image tests; in a directory of their own (printed instead), so adding
#   them did not re-key the control plane's cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
what="${1:-control-plane}"
case "$what" in control-plane | helm | registry | all) ;; *)
  echo "usage: $0 [control-plane|helm|registry|all]" >&2
  exit 2
  ;;
esac
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0
DISTRIBUTION_VERSION=v3.1.2
CRANE_VERSION=v0.22.1
# Bump when what is built, or how, changes: a new layout gets a new directory, so a cache
# made by an older script is never mixed with this one (and stays usable by that script).
LAYOUT=multicall-1
cache_root="${ATMOS_AUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/atmos-auth-controller}"
bin="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-$LAYOUT"
registry_bin="$cache_root/bin/distribution-$DISTRIBUTION_VERSION-crane-$CRANE_VERSION"
mkdir -p "$bin" "$registry_bin"
# Static binaries, paths trimmed, symbols and DWARF left out (-s -w), as the official builds
# do; no VCS stamp (the wrapper modules live in this repository: a stamp would re-link after
# every commit); go.mod and go.sum are read, never rewritten in the working tree. One binary
# at a time keeps the linker's peak memory low on two cores.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false" GOTOOLCHAIN=local
log() { echo "build-binaries: $*" >&2; }

k8s_ldflags() {
  local v="$1" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

# helm's Makefile: the default Kubernetes version of `helm template`/`lint` (chartutil) and
# of the lint rules is that of the k8s.io/client-go helm is built with (v0.X.Y is 1.X),
# without it helm assumes v1.20 and refuses any chart with a newer `kubeVersion`.
helm_ldflags() {
  local client_go major minor
  client_go="$(cd "$here/go/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  client_go="${client_go#v}"
  major=$((${client_go%%.*} + 1))
  minor="${client_go#*.}"; minor="${minor%%.*}"
  echo "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}

build() { # module-dir package output ldflags [output-dir]
  local dir="$1" pkg="$2" out="$3" ldflags="$4" to="${5:-$bin}"
  if [ -x "$to/$out" ]; then return; fi
  log "building $out (first run on this machine only)"
  local start=$SECONDS
  (cd "$here/go/$dir" && go build -ldflags "$ldflags" -o "$to/$out.tmp" "$pkg")
  mv "$to/$out.tmp" "$to/$out"
  log "built $out in $((SECONDS - start)) s"
}

if [ "$what" != helm ]; then
  build etcd go.etcd.io/etcd/server/v3 etcd "-s -w"
  # One link instead of three: the components share almost all their packages.
  build kubernetes . kube "$(k8s_ldflags $K8S_VERSION)"
  for name in kube-apiserver kube-controller-manager kubectl; do
    [ -L "$bin/$name" ] || ln -sfn kube "$bin/$name"
  done
fi
if [ "$what" = helm ] || [ "$what" = all ]; then
  build helm helm.sh/helm/v3/cmd/helm helm "$(helm_ldflags)"
fi
if [ "$what" = registry ] || [ "$what" = all ]; then
  build registry github.com/distribution/distribution/v3/cmd/registry registry "-s -w" "$registry_bin"
  build registry github.com/google/go-containerregistry/cmd/crane crane "-s -w" "$registry_bin"
fi
if [ "$what" = registry ]; then echo "$registry_bin"; else echo "$bin"; fi
