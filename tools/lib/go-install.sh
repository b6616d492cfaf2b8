#!/usr/bin/env bash
# Shared by tools/actionlint/build.sh and tools/toxiproxy/build.sh: builds one command of a Go
# module, pinned by version and module hash, into a cache outside the work tree, only when missing.
#
#   go_install_main <label> <module> <version> <module sum> <package> <binary> <note> [bin|key]
#
# Prints the binary's path (or, with `key`, the cache key) on stdout. Cache:
# ${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}/<label>-<key>/bin, where
# key = sha256(version, module hash, `go version`, recipe). The module comes from the Go module
# proxy and its hash is checked against the pinned one (as go.sum would), so a changed upstream
# tag is refused rather than built. Logs go to stderr only.
set -euo pipefail

go_install_main() {
  local label=$1 module=$2 version=$3 module_sum=$4 package=$5 binary=$6 note=$7 cmd=${8:-bin}
  local recipe="CGO_ENABLED=0 -trimpath -s -w version-ldflags v1"
  local cache_root=${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}
  log() { printf '%s/build.sh: %s\n' "$label" "$*" >&2; }
  if ! command -v go >/dev/null; then
    log "go is not on PATH (needed to build $label $version)"
    exit 1
  fi
  local key
  key=$({ echo "$version $module_sum"; (cd / && go version); echo "$recipe"; } | sha256sum | cut -c1-16)
  case "$cmd" in
    key) echo "$key"; return ;;
    bin) ;;
    *) log "usage: build.sh [bin|key]"; exit 2 ;;
  esac
  local dir="$cache_root/$label-$key/bin"
  if [[ -x "$dir/$binary" ]]; then
    log "cache hit: $dir"
    echo "$dir/$binary"
    return
  fi
  mkdir -p "$(dirname "$dir")"
  # One builder per key; others wait and then find the binary present.
  exec 9>"$(dirname "$dir")/lock"
  flock 9
  if [[ ! -x "$dir/$binary" ]]; then
    log "cache miss: building $label $version into $dir ($note)"
    local start json got tmp built
    start=$(date +%s)
    # Outside any module, so only this module and its own go.sum are used.
    json=$(cd / && go mod download -json "$module@$version")
    got=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
    if [[ "$got" != "$module_sum" ]]; then
      log "$module $version: module hash $got does not match the pinned $module_sum"
      exit 1
    fi
    tmp=$(mktemp -d "$(dirname "$dir")/$label.tmp.XXXXXX")
    (cd / && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
      -ldflags "-s -w ${GO_INSTALL_LDFLAGS:-}" "$package@$version")
    built=$(basename "$package")
    [[ "$built" == "$binary" ]] || mv "$tmp/$built" "$tmp/$binary"
    chmod 755 "$tmp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "built in $(($(date +%s) - start))s: $dir"
  else
    log "cache hit (built by a concurrent run): $dir"
  fi
  echo "$dir/$binary"
}
