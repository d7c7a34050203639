#!/usr/bin/env bash
# ci.sh: the short fuzz run for CI: every target for S seconds (default 60), build included, with the total time.
#
# Usage: fuzz/ci.sh [SECONDS]
# Exits non-zero when a target finds a crash or an invariant fails (its input is under
# fuzz/.build/fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
status=0
./run.sh all --seconds "${1:-60}" || status=$?
echo "fuzz/ci.sh: $(( $(date +%s) - start )) s in all (build included), exit $status"
exit $status
