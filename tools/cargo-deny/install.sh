#!/usr/bin/env bash
# Installs cargo-deny (the supply-chain check of the test command: advisories, licences, bans,
# sources; deny.toml) from crates.io into a cache outside the work tree, only when missing, as
# tools/lib/go-install.sh caches the Go tools.
#
#   install.sh        install unless cached; print the path of the `cargo-deny` binary on stdout
#   install.sh key    print the cache key
#
# `cargo install --locked` builds the version pinned here with the crates of its own Cargo.lock,
# each checked against the checksum crates.io's index records. Cache:
# ${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}/cargo-deny-<key>/bin,
# key = sha256(version, `rustc -V`, recipe). Logs go to stderr only.
set -euo pipefail
version=0.20.2
recipe="cargo install --locked --version v1"
cache_root=${MIP_TESTCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mip-testcluster}
log() { printf 'cargo-deny/install.sh: %s\n' "$*" >&2; }

key=$({ echo "$version"; (cd / && rustc -V); echo "$recipe"; } | sha256sum | cut -c1-16)
case "${1:-bin}" in
  key) echo "$key"; exit 0 ;;
  bin) ;;
  *) log "usage: install.sh [bin|key]"; exit 2 ;;
esac
dir="$cache_root/cargo-deny-$key/bin"
if [[ -x "$dir/cargo-deny" ]]; then
  log "cache hit: $dir"
  echo "$dir/cargo-deny"
  exit 0
fi
mkdir -p "$(dirname "$dir")"
# One installer per key; others wait and then find the binary present.
exec 9>"$(dirname "$dir")/lock"
flock 9
if [[ ! -x "$dir/cargo-deny" ]]; then
  log "cache miss: installing cargo-deny $version from crates.io into $dir (about 6 min cold on 2 busy cores)"
  start=$(date +%s)
  tmp=$(mktemp -d "$(dirname "$dir")/cargo-deny.tmp.XXXXXX")
  # Outside the work tree (its rust-toolchain and config do not apply), its own target dir.
  (cd / && CARGO_TARGET_DIR="$tmp/target" cargo install --quiet --locked --version "$version" \
    --root "$tmp/root" cargo-deny)
  rm -rf "$dir"
  mv "$tmp/root/bin" "$dir"
  rm -rf "$tmp"
  log "installed in $(($(date +%s) - start))s: $dir"
fi
echo "$dir/cargo-deny"
