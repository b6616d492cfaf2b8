#!/usr/bin/env bash
# Makes sure COMMAND is on PATH, installing Debian's PACKAGE when it is missing (as root, or
# through sudo), running `apt-get update` first only if the package is unknown. Prints the
# command's path on stdout; logs go to stderr. Used by scripts/test for the tools the tests run:
#
#   bash tools/ensure-deb.sh promtool prometheus
#   bash tools/ensure-deb.sh prometheus-pushgateway prometheus-pushgateway
#   bash tools/ensure-deb.sh buildah buildah
set -euo pipefail
command=${1:?usage: ensure-deb.sh COMMAND PACKAGE}
package=${2:?usage: ensure-deb.sh COMMAND PACKAGE}
log() { printf 'ensure-deb.sh: %s\n' "$*" >&2; }

if path=$(command -v "$command"); then
  echo "$path"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "$command is missing and there is no apt-get: install $package so that $command is on PATH"
  exit 1
fi
sudo=()
if [[ $(id -u) != 0 ]]; then
  if ! command -v sudo >/dev/null; then
    log "$command is missing; run as root (or install sudo): apt-get install -y $package"
    exit 1
  fi
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show "$package" >/dev/null 2>&1; then
  log "apt-get update"
  "${sudo[@]}" apt-get update -qq >&2
fi
log "apt-get install -y $package"
# --no-install-recommends: no service is started (prometheus, the pushgateway); the tests run
# their own processes.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >&2
command -v "$command"
