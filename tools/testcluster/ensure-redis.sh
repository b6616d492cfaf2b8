#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH for the test cluster's Argo CD tier (Argo CD's
# controllers and repo-server need a Redis cache): installs Debian's `redis-server` package
# when it is missing (as root, or through sudo), running `apt-get update` first only if the
# package is unknown. Prints the redis-server path on stdout; logs go to stderr.
set -euo pipefail

log() { printf 'ensure-redis.sh: %s\n' "$*" >&2; }

if path=$(command -v redis-server); then
  echo "$path"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "redis-server is missing and there is no apt-get: install Redis (>= 6) so that redis-server is on PATH"
  exit 1
fi
sudo=()
if [[ $(id -u) != 0 ]]; then
  if ! command -v sudo >/dev/null; then
    log "redis-server is missing; run as root (or install sudo): apt-get install -y redis-server"
    exit 1
  fi
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show redis-server >/dev/null 2>&1; then
  log "apt-get update"
  "${sudo[@]}" apt-get update -qq >&2
fi
log "apt-get install -y redis-server"
# --no-install-recommends: no service is started; the harness runs its own redis-server.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >&2
command -v redis-server
