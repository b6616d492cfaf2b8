#!/usr/bin/env bash
# Regenerates the "Figures" section of docs/reliability.md from one run of the fault-injection
# tier: every test there prints `reliability-figure: NAME = VALUE` on stderr; this script runs
# them, collects those lines and rewrites the table between the markers
# `<!-- figures:begin -->` and `<!-- figures:end -->` (as mip-bench rewrites docs/benchmarks.md).
#
#   tools/reliability/report.sh            run the tests (debug build, as the suite does), rewrite the doc
#   tools/reliability/report.sh --dry-run  print the table only
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
doc=docs/reliability.md
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s)
# The fault tests, the state at 10 000 federations, and the CLI fault tier.
cargo test --locked -p mip-kube --test faults --test state 2>&1 | tee -a "$log" >&2
cargo test --locked -p mip-cli --test cli -- faults:: 2>&1 | tee -a "$log" >&2
elapsed=$(( $(date +%s) - start ))

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), debug build as the test suite runs it;"
  echo "the fault tests took ${elapsed}s wall time, builds included."
  echo
  echo "| figure | value |"
  echo "|---|---|"
  sed -n 's/^reliability-figure: \([^ ]*\) = \(.*\)$/| `\1` | \2 |/p' "$log"
)
if [[ "${1:-}" == "--dry-run" ]]; then
  printf '%s\n' "$table"
  exit 0
fi
python3 - "$doc" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
PY
echo "rewrote the figures of $doc" >&2
