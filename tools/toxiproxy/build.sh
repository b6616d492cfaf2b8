#!/usr/bin/env bash
# Builds the Toxiproxy server (the TCP fault proxy of the fault-injection tests, tests/cli/faults.rs
# and crates/mip-kube/tests/faults.rs) from its Go module into a cache outside the work tree, only
# when missing (tools/lib/go-install.sh has the cache and the hash check).
#
#   build.sh        build unless cached; print the path of the `toxiproxy-server` binary on stdout
#   build.sh key    print the cache key
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/go-install.sh"

version=v2.5.0
module=github.com/Shopify/toxiproxy/v2
# `go mod download -json github.com/Shopify/toxiproxy/v2@v2.5.0` → "Sum" (the sum.golang.org record).
module_sum="h1:i4LPT+qrSlKNtQf5QliVjdP08GyAH8+BUIc9gT0eahc="
GO_INSTALL_LDFLAGS="-X $module.Version=$version" \
  go_install_main toxiproxy "$module" "$version" "$module_sum" "$module/cmd/server" toxiproxy-server \
  "about 15 s cold" "${1:-bin}"
