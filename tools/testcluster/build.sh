#!/usr/bin/env bash
# Builds the test-cluster binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) from
# the Go modules pinned next to this script, into a cache outside the work tree.
#
#   build.sh [bin-dir]   build unless cached; print the bin dir on stdout
#   build.sh crds-dir    download the pinned Argo CD module; print its manifests/crds dir
#   build.sh key         print the cache key
#
# Cache: ${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}/<key>/bin, where
# key = sha256(go.mod, go.sum, etcd/go.mod, etcd/go.sum, `go version`, build recipe). When every
# binary is present nothing is built and stderr says "cache hit". Logs go to stderr only.
# Details: docs/testcluster.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

# The version of a module required by a go.mod: module_version <go.mod> <module path>
module_version() {
  awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}
k8s_version=$(module_version "$here/go.mod" k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
# Everything that changes the binaries for the same go.mod/go.sum goes into the key, too.
recipe="CGO_ENABLED=0 -trimpath -tags=selinux,notest,grpcnotrace -s -w version-ldflags v2"

log() { printf 'build.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null; then
  log "go is not on PATH (Go >= 1.26 is needed for etcd 3.6.16; or point MIP_TESTCLUSTER_BIN_DIR at prebuilt binaries)"
  exit 1
fi

cache_key() {
  {
    cat "$here/go.mod" "$here/go.sum" "$here/etcd/go.mod" "$here/etcd/go.sum"
    (cd "$here" && go version)
    echo "$recipe"
  } | sha256sum | cut -c1-16
}

all_present() {
  local dir=$1 b
  for b in "${binaries[@]}"; do
    [[ -x "$dir/$b" ]] || return 1
  done
}

version_ldflags() {
  local pkg build_date
  # buildDate = the release time of the pinned module, so that builds are reproducible.
  build_date=$(cd / && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$k8s_version")
  # gitCommit: the module proxy does not say which commit a tag is; "" beats "$Format:%H$".
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- "-X %s.%s=%s " \
      "$pkg" gitVersion "$k8s_version" \
      "$pkg" gitMajor 1 \
      "$pkg" gitMinor "$k8s_minor" \
      "$pkg" gitTreeState clean \
      "$pkg" gitCommit "" \
      "$pkg" buildDate "$build_date"
  done
}

build_into() {
  local out=$1
  export CGO_ENABLED=0
  local -a common=(-trimpath -tags=selinux,notest,grpcnotrace)
  log "go build kube-apiserver kube-controller-manager kubectl ($k8s_version) -> $out"
  go build -C "$here" "${common[@]}" -ldflags "-s -w $(version_ldflags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  log "go build etcd -> $out"
  go build -C "$here/etcd" "${common[@]}" -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

cmd_bin_dir() {
  local key dir
  key=$(cache_key)
  dir="$cache_root/$key/bin"
  if all_present "$dir"; then
    log "cache hit: $dir"
    echo "$dir"
    return
  fi
  mkdir -p "$cache_root/$key"
  # One builder per key; others wait and then find the binaries present.
  exec 9>"$cache_root/$key/lock"
  flock 9
  if all_present "$dir"; then
    log "cache hit (built by a concurrent run): $dir"
    echo "$dir"
    return
  fi
  log "cache miss: building into $dir (5-10 min cold on 2 cores)"
  local start tmp
  start=$(date +%s)
  tmp=$(mktemp -d "$cache_root/$key/bin.tmp.XXXXXX")
  build_into "$tmp"
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "built in $(($(date +%s) - start))s: $dir"
  echo "$dir"
}

cmd_crds_dir() {
  local version sum json dir got
  version=$(module_version "$here/argocd/go.mod" github.com/argoproj/argo-cd/v3)
  sum=$(awk -v v="$version" '$1 == "github.com/argoproj/argo-cd/v3" && $2 == v { print $3 }' "$here/argocd/go.sum")
  # Outside any module, so only this one module is fetched (no dependency graph).
  json=$(cd / && go mod download -json "github.com/argoproj/argo-cd/v3@$version")
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  got=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  if [[ "$got" != "$sum" ]]; then
    log "argo-cd $version: module hash $got does not match argocd/go.sum ($sum)"
    exit 1
  fi
  if [[ ! -f "$dir/manifests/crds/application-crd.yaml" ]]; then
    log "argo-cd $version: no manifests/crds in $dir"
    exit 1
  fi
  echo "$dir/manifests/crds"
}

case "${1:-bin-dir}" in
  bin-dir) cmd_bin_dir ;;
  crds-dir) cmd_crds_dir ;;
  key) cache_key ;;
  *)
    log "usage: build.sh [bin-dir|crds-dir|key]"
    exit 2
    ;;
esac
