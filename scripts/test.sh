#!/usr/bin/env bash
# scripts/test.sh: what `make test` runs: packages, debug build, unit tests, then every
# integration test as root against that build. The last line is the integration verdict
# (`integration: N passed, M failed[, K skipped]`); the exit status is non-zero if the build,
# any unit test or any integration test failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

SWIFT=${SWIFT:-swift}
status=0
# run.sh also leaves its verdict here, so that .ci/run can repeat it after make's own output.
export IT_SUMMARY_FILE=${IT_SUMMARY_FILE:-$PWD/.build/integration-summary}
mkdir -p "$(dirname "$IT_SUMMARY_FILE")"
rm -f "$IT_SUMMARY_FILE"

scripts/deps.sh || { echo "test: installing packages failed" >&2; exit 1; }

echo "== lint (layering)"
scripts/lint.sh || status=1

echo "== swift build"
if ! $SWIFT build; then
    echo "test: swift build failed" >&2
    # No binary, so every integration test fails.
    n=$(ls Tests/integration/t[0-9]*.sh | wc -l)
    echo "integration: 0 passed, $n failed" | tee "$IT_SUMMARY_FILE"
    exit 1
fi

echo "== swift test"
if ! $SWIFT test; then
    echo "test: swift test failed" >&2
    status=1
fi

echo "== swift test -c release (allocation counts are a release-build property)"
if ! $SWIFT test -c release -Xswiftc -enable-testing --filter "ZeroAllocationTests|ResponderAllocationTests|CaptureTests.testCapturesAllocateNothing"; then
    echo "test: release zero-allocation test failed" >&2
    status=1
fi

echo "== integration tests"
export SWITCHD=${SWITCHD:-$PWD/.build/debug/switchd}
# Per-test logs, replaced on every run.
export IT_LOG_DIR=${IT_LOG_DIR:-$PWD/.build/integration-logs}
rm -rf "$IT_LOG_DIR"
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    sudo -E env "PATH=$PATH" Tests/integration/run.sh || status=1
else
    Tests/integration/run.sh || status=1
fi
exit $status
