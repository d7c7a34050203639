#!/usr/bin/env bash
# run.sh: builds the libFuzzer binary and runs fuzz targets, printing iterations, exec/s, coverage and crashes.
#
# Usage: fuzz/run.sh TARGET...|all [--runs N] [--seconds S]
#   --runs N     libFuzzer -runs (default 10000000 unless --seconds is given)
#   --seconds S  libFuzzer -max_total_time
# Targets: `fuzz/run.sh --list`. Each runs under `nice -n 10` on a copy of fuzz/corpus/TARGET in
# .build/fuzz/corpus/TARGET (new inputs stay there, out of git); crash inputs go to
# .build/fuzz/artifacts/TARGET/, the libFuzzer log to .build/fuzz/logs/TARGET.log.
#
# The build is `-c debug -Xswiftc -O`, not `-c release`: debug builds `@testable` modules (the
# stream framer is internal to Switch), and -O optimises while keeping every overflow trap and
# precondition the fuzzer is meant to hit (the release build compiled with -Ounchecked until
# 2026-12-06, which removed them).
set -euo pipefail
cd "$(dirname "$0")"

runs=""; seconds=""; targets=()
while (($#)); do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --list) targets=(--list); shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || { sed -n '2,13p' "$0" >&2; exit 2; }
[[ -n "$runs" || -n "$seconds" ]] || runs=10000000

build=(swift build -c debug -Xswiftc -O -Xswiftc -sanitize=fuzzer,address --scratch-path .build --product SwitchdFuzz)
nice -n 10 "${build[@]}" >&2
bin="$("${build[@]}" --show-bin-path)/SwitchdFuzz"

if [[ "${targets[0]}" == --list ]]; then FUZZ_TARGET=ethernet "$bin" --list; exit 0; fi
if [[ "${targets[0]}" == all ]]; then mapfile -t targets < <(FUZZ_TARGET=ethernet "$bin" --list); fi

args=(-print_final_stats=1 -timeout=25 -rss_limit_mb=4096)
[[ -n "$runs" ]] && args+=("-runs=$runs")
[[ -n "$seconds" ]] && args+=("-max_total_time=$seconds")

printf '%-16s %12s %10s %8s %8s %8s %8s\n' target iterations exec/s cov new wall_s crashes
failed=0
for target in "${targets[@]}"; do
    work=.build/fuzz/corpus/$target artifacts=.build/fuzz/artifacts/$target log=.build/fuzz/logs/$target.log
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    [[ -d corpus/$target ]] && cp -n corpus/"$target"/* "$work"/ 2>/dev/null || true
    start=$(date +%s)
    status=0
    # SWIFT_BACKTRACE: Swift's own crash handler would race libFuzzer's (and trips AddressSanitizer).
    SWIFT_BACKTRACE=enable=no FUZZ_TARGET=$target nice -n 10 "$bin" "${args[@]}" -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1 || status=$?
    wall=$(( $(date +%s) - start ))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
    crashes=$(find "$artifacts" -type f | wc -l)
    printf '%-16s %12s %10s %8s %8s %8s %8s\n' "$target" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "${cov:-?}" "$(stat new_units_added)" "$wall" "$crashes"
    if ((status != 0)); then
        failed=1
        echo "  $target: libFuzzer exited $status; see fuzz/$log" >&2
        grep -m5 -E 'ERROR|Fatal error|invariant|SUMMARY' "$log" | sed 's/^/  /' >&2 || true
    fi
done
exit $failed
