#!/usr/bin/env bash
# bench/ab.sh: an A/B of switchd binaries on bench/iperf.sh's switchd path (TAP to TAP), alternating.
#
#   bench/ab.sh ROUNDS NAME=BINARY NAME=BINARY ...
#   e.g. bench/ab.sh 3 before=/tmp/switchd-old after=.build/release/switchd
#
# Each round runs every binary once (BENCH_SECONDS, default 8, one repetition) and prints its
# single-stream and -P 4 Gbit/s; alternating spreads the machine's drift over all binaries. Take
# the medians across rounds. Needs root (bench/iperf.sh does the setup and cleanup).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
(($# >= 2)) || { sed -n '2,9p' "$0" >&2; exit 2; }
rounds=$1; shift
for r in $(seq 1 "$rounds"); do
    for pair in "$@"; do
        name=${pair%%=*} bin=${pair#*=}
        out=$(SWITCHD=$bin BENCH_PATHS=switchd BENCH_SECONDS=${BENCH_SECONDS:-8} BENCH_REPS=1 \
            "$ROOT/bench/iperf.sh" 2>&1 | awk '/^switchd +[14] /{printf "%s stream(s): %s  ", $2, $3}')
        echo "round $r $name: ${out:-failed (run bench/iperf.sh with SWITCHD=$bin to see why)}"
    done
done
