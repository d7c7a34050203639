#!/usr/bin/env bash
# bench/iperf.sh: iperf3 TCP between two network namespaces through switchd and its peers.
#
# Paths, all set up side by side in the same run (each pair of namespaces is its own world):
#   switchd  two `tap` ports of a switchd release build (SWITCHD, default .build/release/switchd)
#   mixed    the same on a network that also has a plain (non-offload) dgram port reading all
#            it gets: TSO-to-TSO throughput with a non-TSO port present (docs/DESIGN.md §9)
#   shared   a guest on a `tap` port of a `shared` network to a server behind the host: switchd
#            runs in a third namespace ("the host"), the server sits behind a veth of it, and
#            the kernel forwards and masquerades (nftables) between the uplink and the veth
#   bridge   the Linux bridge in a third namespace, veth pairs to the two namespaces
#   vde      vde_switch, one vde_plug2tap per namespace creating the TAP in it
#   ovs      Open vSwitch's userspace datapath (datapath_type=netdev, userspace TSO on): a
#            private ovsdb-server and ovs-vswitchd inside a third namespace, veth pairs
#            (the host's own OVS, if any, is not touched)
# Each path runs a single stream and -P 4 for BENCH_SECONDS (default 10), BENCH_REPS times
# (default 3, interleaved across paths); the table shows medians and switchd's ratio to each
# peer. Raw iperf3 JSON goes to bench/results/iperf-TIMESTAMP/ (git-ignored).
#
#   BENCH_SECONDS=10 BENCH_REPS=3 BENCH_PATHS="switchd bridge ovs vde" BENCH_MTU=1500 bench/iperf.sh
#
# Needs root. Everything it creates (namespaces, interfaces, processes, temp files) is removed
# at exit, also on Ctrl-C; it reuses the integration harness (Tests/integration/lib.sh) for that.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SWITCHD=${SWITCHD:-.build/release/switchd}
export IT_LOG_LEVEL=${IT_LOG_LEVEL:-info}
SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
PATHS=${BENCH_PATHS:-switchd mixed shared bridge ovs vde}
MTU=${BENCH_MTU:-1500}
# shellcheck source=../Tests/integration/lib.sh
source "$ROOT/Tests/integration/lib.sh"
TEST_NAME=bench

it_require_netns
it_require_cmd iperf3
OUT=$ROOT/bench/results/iperf-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

# shellcheck source=worlds.sh
source "$ROOT/bench/worlds.sh"

ready=()
for p in $PATHS; do
    if have "$p"; then
        "setup_$p"
        it_ping "${CLIENT_NS[$p]}" "${SERVER_IP[$p]}" 2
        it_bg "$IT_TMP/iperf3-server-$p.log" ip netns exec "${SERVER_NS[$p]}" iperf3 -s
        it_wait_until 10 "iperf3 server ($p)" \
            sh -c "ip netns exec '${SERVER_NS[$p]}' ss -Hltn 'sport = :5201' | grep -q LISTEN"
        ready+=("$p")
    fi
done
((${#ready[@]} > 0)) || it_fail "no path could be set up"

it_log "paths: ${ready[*]}; ${SECS}s per run, $REPS repetitions, MTU $MTU; raw results in $OUT"
for ((r = 1; r <= REPS; r++)); do
    for p in "${ready[@]}"; do
        for streams in 1 4; do
            f="$OUT/$p-P$streams-r$r.json"
            it_iperf_client "${CLIENT_NS[$p]}" "${SERVER_IP[$p]}" "$SECS" "$f" -P "$streams" ||
                it_log "warning: $p -P $streams run $r failed"
            it_log "$p -P $streams run $r: $(it_iperf_gbps "$f" 2>/dev/null || echo '?') Gbit/s"
        done
    done
done
if [[ " ${ready[*]} " == *" switchd "* ]]; then
    it_json 'dump(ports("bench"))' >"$OUT/switchd-ports.json" || true
fi

# The table: medians per path and stream count, and switchd's ratio to each peer.
"$PY" - "$OUT" "${ready[@]}" <<'PY' | tee "$OUT/table.txt"
import glob, json, os, statistics, sys
out, paths = sys.argv[1], sys.argv[2:]
res = {}
for p in paths:
    for s in (1, 4):
        g, rt = [], []
        for f in sorted(glob.glob(os.path.join(out, "%s-P%d-r*.json" % (p, s)))):
            try:
                e = json.load(open(f))["end"]
                g.append(e["sum_received"]["bits_per_second"] / 1e9)
                rt.append(e["sum_sent"].get("retransmits", 0))
            except (KeyError, ValueError):
                pass
        if g:
            res[(p, s)] = (statistics.median(g), statistics.median(rt), len(g))
print()
print("%-8s %7s %8s %12s %5s  %s" % ("path", "streams", "Gbit/s", "retransmits", "runs", "switchd/path"))
for p in paths:
    for s in (1, 4):
        if (p, s) not in res:
            print("%-8s %7d %8s" % (p, s, "failed"))
            continue
        g, rt, n = res[(p, s)]
        ratio = ""
        if p != "switchd" and ("switchd", s) in res and g > 0:
            ratio = "%.2f" % (res[("switchd", s)][0] / g)
        print("%-8s %7d %8.2f %12d %5d  %s" % (p, s, g, rt, n, ratio))
PY
echo "raw results: $OUT"
