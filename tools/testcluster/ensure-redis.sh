#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH for the test cluster's Argo CD tier (Argo CD's
# controllers and repo-server need a Redis cache): installs Debian's `redis-server` package
# when it is missing (tools/ensure-deb.sh: as root or through sudo, `apt-get update` only if the
# package is unknown, no service started). Prints the redis-server path on stdout; logs go to
# stderr.
set -euo pipefail
exec bash "$(dirname "$0")/../ensure-deb.sh" redis-server redis-server
