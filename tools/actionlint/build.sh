#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow linter) from its Go module into a cache outside
# the work tree, as tools/testcluster/build.sh builds the test cluster: only when missing.
#
#   build.sh        build unless cached; print the path of the `actionlint` binary on stdout
#   build.sh key    print the cache key
#
# Cache: ${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}/actionlint-<key>/bin,
# key = sha256(version, module hash, `go version`, recipe). The module is fetched through the Go
# module proxy and its hash checked against the one pinned here (as go.sum would), so a changed
# upstream tag is refused rather than built. Logs go to stderr only.
set -euo pipefail

version=v1.7.12
module=github.com/rhysd/actionlint
# `go mod download -json github.com/rhysd/actionlint@v1.7.12` → "Sum" (the sum.golang.org record).
module_sum="h1:vQ4GeJN86C0QH+gTUQcs8McmK62OLT3kmakPMtEWYnY="
recipe="CGO_ENABLED=0 -trimpath -s -w version-ldflags v1"
cache_root=${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}

log() { printf 'actionlint/build.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null; then
  log "go is not on PATH (Go >= 1.25 is needed for actionlint $version)"
  exit 1
fi

cache_key() {
  { echo "$version $module_sum"; (cd / && go version); echo "$recipe"; } | sha256sum | cut -c1-16
}

build() {
  local dir=$1 json got tmp start
  mkdir -p "$(dirname "$dir")"
  # One builder per key; others wait and then find the binary present.
  exec 9>"$(dirname "$dir")/lock"
  flock 9
  if [[ -x "$dir/actionlint" ]]; then
    log "cache hit (built by a concurrent run): $dir"
    return
  fi
  log "cache miss: building actionlint $version into $dir (about a minute cold)"
  start=$(date +%s)
  # Outside any module, so only this module and its own go.sum are used.
  json=$(cd / && go mod download -json "$module@$version")
  got=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  if [[ "$got" != "$module_sum" ]]; then
    log "$module $version: module hash $got does not match the pinned $module_sum"
    exit 1
  fi
  tmp=$(mktemp -d "$(dirname "$dir")/actionlint.tmp.XXXXXX")
  (cd / && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X $module.version=$version" "$module/cmd/actionlint@$version")
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "built in $(($(date +%s) - start))s: $dir"
}

case "${1:-bin}" in
  bin)
    dir="$cache_root/actionlint-$(cache_key)/bin"
    if [[ -x "$dir/actionlint" ]]; then
      log "cache hit: $dir"
    else
      build "$dir"
    fi
    echo "$dir/actionlint"
    ;;
  key) cache_key ;;
  *)
    log "usage: build.sh [bin|key]"
    exit 2
    ;;
esac
