#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow linter) from its Go module into a cache outside
# the work tree, as tools/testcluster/build.sh builds the test cluster: only when missing
# (tools/lib/go-install.sh has the cache and the hash check).
#
#   build.sh        build unless cached; print the path of the `actionlint` binary on stdout
#   build.sh key    print the cache key
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/go-install.sh"

version=v1.7.12
module=github.com/rhysd/actionlint
# `go mod download -json github.com/rhysd/actionlint@v1.7.12` → "Sum" (the sum.golang.org record).
module_sum="h1:vQ4GeJN86C0QH+gTUQcs8McmK62OLT3kmakPMtEWYnY="
GO_INSTALL_LDFLAGS="-X $module.version=$version" \
  go_install_main actionlint "$module" "$version" "$module_sum" "$module/cmd/actionlint" actionlint \
  "about a minute cold" "${1:-bin}"
