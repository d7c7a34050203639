#!/usr/bin/env bash
# bench/capture.sh: what a capture costs the switch. iperf3 TCP between two network namespaces on
# `tap` ports of a switchd release build (SWITCHD, default .build/release/switchd), in three modes:
#   none      no capture
#   stalled   a capture whose reader never reads (`switchd capture -w FIFO`, the FIFO's reader
#             asleep): once its 4 MiB socket buffer is full every frame is counted lost, no syscall
#   filtered  a capture with --filter icmp read into /dev/null: libpcap's BPF runs on every frame
#             and keeps none of them
# BENCH_REPS (default 3) rounds of BENCH_SECONDS (default 10) per mode, interleaved; the table shows
# medians in Gbit/s and each mode's ratio to `none` (target for `stalled`: at least 0.90).
#
#   BENCH_SECONDS=10 BENCH_REPS=3 BENCH_MODES="none stalled filtered" BENCH_PARALLEL=1 bench/capture.sh
#
# Needs root. Everything it creates is removed at exit (it reuses Tests/integration/lib.sh).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SWITCHD=${SWITCHD:-.build/release/switchd}
export IT_LOG_LEVEL=${IT_LOG_LEVEL:-info}
SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
MODES=${BENCH_MODES:-none stalled filtered}
PARALLEL=${BENCH_PARALLEL:-1}
# shellcheck source=../Tests/integration/lib.sh
source "$ROOT/Tests/integration/lib.sh"
TEST_NAME=bench-capture

it_require_netns
it_require_cmd iperf3
it_require_switchd
OUT=$ROOT/bench/results/capture-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

A=$(it_name ca) B=$(it_name cb)
TA=$(it_name cta) TB=$(it_name ctb)
it_netns "$A"
it_netns "$B"
cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  bench:
    mode: isolated
    subnet: 10.78.9.0/24
    gateway: 10.78.9.254        # the guests use .1 and .2 (port security refuses the gateway's address)
    ports:
      - {tap: $TA, netns: $A}
      - {tap: $TB, netns: $B}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$A" "$TA" 10.78.9.1/24
it_tap_ready "$B" "$TB" 10.78.9.2/24
it_ping "$A" 10.78.9.2 2

# start_capture MODE: the capture of that mode, running (and stalled, for `stalled`) on return.
start_capture() {
    CAPTURE_PIDS=()
    case $1 in
    none) return 0 ;;
    stalled)
        rm -f "$IT_TMP/stall.fifo"
        mkfifo "$IT_TMP/stall.fifo"
        it_bg "$IT_TMP/sleeper.log" sh -c "exec sleep 100000 <'$IT_TMP/stall.fifo'"
        CAPTURE_PIDS+=("$IT_LAST_PID")
        it_bg "$OUT/capture-stalled.err" "$SWITCHD" capture bench -w "$IT_TMP/stall.fifo" --run-dir "$RUN_DIR"
        ;;
    filtered)
        it_bg "$OUT/capture-filtered.err" "$SWITCHD" capture bench --filter icmp -w /dev/null --run-dir "$RUN_DIR"
        ;;
    esac
    CAPTURE_PIDS+=("$IT_LAST_PID")
    it_wait_until 10 "the $1 capture runs" it_json_is 'net("bench").get("captures")' 1
}

stop_capture() {
    local p
    for p in "${CAPTURE_PIDS[@]}"; do it_kill "$p"; done
    it_wait_until 10 "no capture left" it_json_is 'net("bench").get("captures")' None
}

declare -A RESULTS
for ((rep = 1; rep <= REPS; rep++)); do
    for mode in $MODES; do
        start_capture "$mode"
        it_iperf_server "$B"
        out=$OUT/$mode-$rep.json
        it_iperf_client "$A" 10.78.9.2 "$SECS" "$out" -P "$PARALLEL" || it_fail "iperf3 ($mode, rep $rep) failed"
        stop_capture
        gbps=$(it_iperf_gbps "$out")
        RESULTS[$mode]+="$gbps "
        it_log "rep $rep/$REPS $mode: $gbps Gbit/s"
    done
done
grep -h 'frames captured' "$OUT"/capture-*.err 2>/dev/null | sed 's/^/capture client: /' >&2 || true

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
base=$(echo "${RESULTS[none]:-}" | median)
printf '\niperf3 TCP -P %s, %s s x %s reps, release build, medians (results in %s)\n' "$PARALLEL" "$SECS" "$REPS" "$OUT"
printf '%-10s %12s %10s   %s\n' mode Gbit/s ratio runs
for mode in $MODES; do
    m=$(echo "${RESULTS[$mode]}" | median)
    ratio=$(awk -v m="$m" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.3f", m / b; else print "-" }')
    printf '%-10s %12s %10s   %s\n' "$mode" "$m" "$ratio" "${RESULTS[$mode]}"
done
