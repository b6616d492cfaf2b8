#!/usr/bin/env bash
# Builds the test-cluster binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) from
# the Go modules pinned next to this script, into a cache outside the work tree.
#
#   build.sh [bin-dir]   build unless cached; print the bin dir on stdout
#   build.sh crds-dir    download the pinned Argo CD module; print its manifests/crds dir
#   build.sh key         print the cache key
#   build.sh argocd-bin-dir   build the Argo CD tier's binaries unless cached (argocd with its
#                        argocd-{application-controller,applicationset-controller,repo-server}
#                        links, helm, kustomize); print their bin dir
#   build.sh argocd-key  print that cache key
#   build.sh kwok-bin-dir     build the workload tier's binaries unless cached (kwok, and
#                        kube-scheduler from the same Kubernetes module as the control plane) plus
#                        kwok-stages.yaml (kwok's own Stage objects, read from its module); print
#                        their bin dir
#   build.sh kwok-key    print that cache key
#
# Cache: ${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}/<key>/bin, where
# key = sha256(go.mod, go.sum, etcd/go.mod, etcd/go.sum, `go version`, build recipe). When every
# binary is present nothing is built and stderr says "cache hit". Logs go to stderr only.
# The Argo CD tier has its own key (argocd-bin/, helm/, kustomize/ go.mod+go.sum, main.go,
# `go version`, recipe) and dir <cache>/argocd-<key>/bin, so neither set rebuilds the other.
# The workload tier's key covers go.mod, go.sum (kube-scheduler), kwok/go.mod, kwok/go.sum,
# `go version` and its recipe; dir <cache>/kwok-<key>/bin.
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

argocd_binaries=(argocd argocd-application-controller argocd-applicationset-controller argocd-repo-server helm kustomize)
argocd_recipe="CGO_ENABLED=0 -trimpath -s -w argocd-version-ldflags helm-version-ldflags v1"

# The workload tier: kwok (tools/testcluster/kwok/go.mod) simulates kubelets, kube-scheduler (this
# directory's go.mod, the control plane's Kubernetes version) binds pods to its Nodes.
kwok_binaries=(kwok kube-scheduler)
# The Stage files of kwok's module that go into kwok-stages.yaml, in that order.
kwok_stage_files=(node/fast/node-initialize.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
kwok_recipe="CGO_ENABLED=0 -trimpath -tags=selinux,notest,grpcnotrace -s -w version-ldflags stages:${kwok_stage_files[*]} v1"

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

argocd_cache_key() {
  {
    cat "$here/argocd-bin/go.mod" "$here/argocd-bin/go.sum" "$here/argocd-bin/main.go" \
      "$here/helm/go.mod" "$here/helm/go.sum" "$here/kustomize/go.mod" "$here/kustomize/go.sum"
    (cd "$here" && go version)
    echo "$argocd_recipe"
  } | sha256sum | cut -c1-16
}

kwok_cache_key() {
  {
    cat "$here/go.mod" "$here/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum"
    (cd "$here" && go version)
    echo "$kwok_recipe"
  } | sha256sum | cut -c1-16
}

# all_present <dir> [binary...]: every binary (default: the control plane's) is executable in dir.
all_present() {
  local dir=$1 b
  shift
  local -a want=("$@")
  ((${#want[@]})) || want=("${binaries[@]}")
  for b in "${want[@]}"; do
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

# Argo CD (one binary, dispatching on argv[0] like upstream's cmd/main.go), helm, kustomize.
argocd_build_into() {
  local out=$1 argo_version helm_version build_date
  export CGO_ENABLED=0
  argo_version=$(module_version "$here/argocd-bin/go.mod" github.com/argoproj/argo-cd/v3)
  helm_version=$(module_version "$here/helm/go.mod" helm.sh/helm/v3)
  build_date=$(cd / && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "github.com/argoproj/argo-cd/v3@$argo_version")
  log "go build argocd ($argo_version) -> $out"
  local pkg=github.com/argoproj/argo-cd/v3/common
  go build -C "$here/argocd-bin" -trimpath -o "$out/argocd" -ldflags "-s -w \
    -X $pkg.version=${argo_version#v} -X $pkg.buildDate=$build_date -X $pkg.gitTreeState=clean" .
  local b
  for b in argocd-application-controller argocd-applicationset-controller argocd-repo-server; do
    ln -s argocd "$out/$b"
  done
  log "go build helm ($helm_version), kustomize -> $out"
  go build -C "$here/helm" -trimpath -o "$out/helm" -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$helm_version \
    -X helm.sh/helm/v3/internal/version.gitTreeState=clean" helm.sh/helm/v3/cmd/helm
  go build -C "$here/kustomize" -trimpath -o "$out/kustomize" -ldflags "-s -w" sigs.k8s.io/kustomize/kustomize/v5
}

# The dir of a pinned module in the module cache, downloaded if needed and its hash checked
# against go.sum: module_dir <module path> <version> <go.sum>
module_dir() {
  local module=$1 version=$2 gosum=$3 sum json dir got
  sum=$(awk -v m="$module" -v v="$version" '$1 == m && $2 == v { print $3 }' "$gosum")
  # Outside any module, so only this one module is fetched (no dependency graph).
  json=$(cd / && go mod download -json "$module@$version")
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  got=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  if [[ -z "$sum" || "$got" != "$sum" ]]; then
    log "$module $version: module hash $got does not match $gosum (${sum:-no entry})"
    return 1
  fi
  echo "$dir"
}

# kube-scheduler (same module, flags and version ldflags as the control plane), kwok, and
# kwok-stages.yaml: the Stage objects of kwok's module (no stages: kwok refuses to start).
kwok_build_into() {
  local out=$1 kwok_version kwok_dir file
  export CGO_ENABLED=0
  kwok_version=$(module_version "$here/kwok/go.mod" sigs.k8s.io/kwok)
  log "go build kube-scheduler ($k8s_version) -> $out"
  go build -C "$here" -trimpath -tags=selinux,notest,grpcnotrace -ldflags "-s -w $(version_ldflags)" \
    -o "$out/" k8s.io/kubernetes/cmd/kube-scheduler
  log "go build kwok ($kwok_version) -> $out"
  go build -C "$here/kwok" -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
  kwok_dir=$(module_dir sigs.k8s.io/kwok "$kwok_version" "$here/kwok/go.sum")
  {
    echo "# kwok's Stage objects, from sigs.k8s.io/kwok@$kwok_version kustomize/stage/ (written by build.sh)"
    for file in "${kwok_stage_files[@]}"; do
      if [[ ! -f "$kwok_dir/kustomize/stage/$file" ]]; then
        log "sigs.k8s.io/kwok $kwok_version: no kustomize/stage/$file in $kwok_dir"
        return 1
      fi
      echo "---"
      echo "# kustomize/stage/$file"
      cat "$kwok_dir/kustomize/stage/$file"
    done
  } >"$out/kwok-stages.yaml"
  log "wrote $out/kwok-stages.yaml (${#kwok_stage_files[@]} stages)"
}

# cached_build <dir> <build function> <note> <binary...>: dir, built by the function unless all
# binaries are present in it.
cached_build() {
  local dir=$1 build=$2 note=$3
  shift 3
  if all_present "$dir" "$@"; then
    log "cache hit: $dir"
    echo "$dir"
    return
  fi
  mkdir -p "$(dirname "$dir")"
  # One builder per key; others wait and then find the binaries present.
  exec 9>"$(dirname "$dir")/lock"
  flock 9
  if all_present "$dir" "$@"; then
    log "cache hit (built by a concurrent run): $dir"
    echo "$dir"
    return
  fi
  log "cache miss: building into $dir ($note)"
  local start tmp
  start=$(date +%s)
  tmp=$(mktemp -d "$(dirname "$dir")/bin.tmp.XXXXXX")
  "$build" "$tmp"
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "built in $(($(date +%s) - start))s: $dir"
  echo "$dir"
}

cmd_argocd_bin_dir() {
  cached_build "$cache_root/argocd-$(argocd_cache_key)/bin" argocd_build_into \
    "8-15 min cold on 2 cores" "${argocd_binaries[@]}"
}

cmd_kwok_bin_dir() {
  cached_build "$cache_root/kwok-$(kwok_cache_key)/bin" kwok_build_into \
    "5 min cold on 2 cores, 1.5 min after the control plane's build" "${kwok_binaries[@]}"
}

cmd_bin_dir() {
  cached_build "$cache_root/$(cache_key)/bin" build_into "5-10 min cold on 2 cores" "${binaries[@]}"
}

cmd_crds_dir() {
  local version dir
  version=$(module_version "$here/argocd/go.mod" github.com/argoproj/argo-cd/v3)
  dir=$(module_dir github.com/argoproj/argo-cd/v3 "$version" "$here/argocd/go.sum")
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
  argocd-bin-dir) cmd_argocd_bin_dir ;;
  argocd-key) argocd_cache_key ;;
  kwok-bin-dir) cmd_kwok_bin_dir ;;
  kwok-key) kwok_cache_key ;;
  *)
    log "usage: build.sh [bin-dir|crds-dir|key|argocd-bin-dir|argocd-key|kwok-bin-dir|kwok-key]"
    exit 2
    ;;
esac
