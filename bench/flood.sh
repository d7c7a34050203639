#!/usr/bin/env bash
# bench/flood.sh: the flood-fairness figure. Does one port flooding small frames take the
# switch away from the others?
#
# World (one per switchd build): an isolated network of a switchd release build with three
# `tap` ports in namespaces A, B and C. iperf3 TCP A -> B, single stream, FLOOD_SECONDS
# (default 8) per run, alternately without and with C flooding: trafgen on C's TAP, unpaced,
# one process, 60-byte frames (64 on a wire) from a fixed source MAC to a unicast MAC nobody
# has, so switchd floods every one of them to A and B. FLOOD_REPS (default 3) runs of each,
# interleaved (no-flood, flood, no-flood, ...; and across builds when there are two).
#
# Prints, per build: the median Gbit/s without and with the flood, their ratio (the bar is
# >= 0.5), the frames switchd took from C per second of flood, and the drop counters of
# `switchd status --json` on the flooding port (C) and on the others (A, B).
#
# And a control row, `cpu only`: the same trafgen flooding a veth pair in a namespace of its own,
# outside switchd, during an iperf3 run through the last build's world. It measures what the
# flood takes from the flow through CPU time alone (trafgen spins on a core; on a two-core box
# that is half of it): the ratio a perfectly fair switch could reach on this machine.
#
#   FLOOD_SECONDS=8 FLOOD_REPS=3 SWITCHD=.build/release/switchd BEFORE_SWITCHD=/tmp/old/switchd bench/flood.sh
#
# BEFORE_SWITCHD (optional): a second switchd binary (the code before a change) measured in a
# world of its own, side by side, so the table reads before/after. The two worlds take turns;
# the idle one's switchd sleeps in io_uring_enter.
#
# Needs root, iperf3 and trafgen (netsniff-ng; scripts/deps.sh installs both). Everything it
# creates is removed at exit, also on Ctrl-C: it reuses the integration harness
# (Tests/integration/lib.sh), processes are stopped by PID. trafgen runs with --no-sock-mem and -Q, so it
# leaves the host's socket memory sysctls and IRQ affinities alone.
#
# The machine's other load shows in the figures: the flood, iperf3's two ends and switchd's
# loop want more than two cores between them. Compare builds within one run, not across runs.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SWITCHD=${SWITCHD:-.build/release/switchd}
export IT_LOG_LEVEL=${IT_LOG_LEVEL:-info}
SECS=${FLOOD_SECONDS:-8}
REPS=${FLOOD_REPS:-3}
BEFORE=${BEFORE_SWITCHD:-}
# shellcheck source=../Tests/integration/lib.sh
source "$ROOT/Tests/integration/lib.sh"
TEST_NAME=flood

it_require_netns
it_require_cmd iperf3 trafgen
OUT=$ROOT/bench/results/flood-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

# The flood: destination 02:00:00:00:ff:01 (unicast, nobody's), source 02:00:00:00:cc:01, the
# local experimental EtherType, zero padding to the 60-byte minimum.
FLOOD_FRAME='{ 0x02, 0x00, 0x00, 0x00, 0xff, 0x01, 0x02, 0x00, 0x00, 0x00, 0xcc, 0x01, c16(0x88b5), fill(0x00, 46) }'

declare -A BIN NS_A NS_B NS_C TAP_C RUN IP_B FLOOD_DEV
builds=(after)
BIN[after]=$SWITCHD
if [[ -n "$BEFORE" ]]; then
    builds=(before after)
    BIN[before]=$BEFORE
fi
for b in "${builds[@]}"; do
    [[ "${BIN[$b]}" == /* ]] || BIN[$b]=$ROOT/${BIN[$b]}
    [[ -x "${BIN[$b]}" ]] || it_fail "no switchd at ${BIN[$b]} (swift build -c release)"
done

# setup BUILD INDEX: namespaces, switchd and iperf3 server of one world (10.79.INDEX.0/24).
setup() {
    local b=$1 i=$2 a bb c ta tb tc run
    a=$(it_name "f${i}a") bb=$(it_name "f${i}b") c=$(it_name "f${i}c")
    ta=$(it_name "f${i}ta") tb=$(it_name "f${i}tb") tc=$(it_name "f${i}tc")
    run=$IT_TMP/$b
    mkdir -p "$run"
    it_netns "$a"
    it_netns "$bb"
    it_netns "$c"
    cat >"$run/switchd.yaml" <<EOF
networks:
  flood:
    mode: isolated
    subnet: 10.79.$i.0/24
    gateway: 10.79.$i.254        # the guests use .1 to .3 (port security refuses the gateway's address)
    ports:
      - {tap: $ta, netns: $a}
      - {tap: $tb, netns: $bb}
      - {tap: $tc, netns: $c}
EOF
    it_bg "$run/switchd.log" "${BIN[$b]}" run --config "$run/switchd.yaml" --run-dir "$run/run" \
        --state-dir "$run/state" --log-level "$IT_LOG_LEVEL"
    it_wait_until 20 "switchd ($b)" "${BIN[$b]}" status --json --run-dir "$run/run"
    it_tap_ready "$a" "$ta" "10.79.$i.1/24"
    it_tap_ready "$bb" "$tb" "10.79.$i.2/24"
    it_tap_ready "$c" "$tc" "10.79.$i.3/24"
    it_ping "$a" "10.79.$i.2" 2
    it_bg "$run/iperf3-server.log" ip netns exec "$bb" iperf3 -s
    it_wait_until 10 "iperf3 server ($b)" sh -c "ip netns exec '$bb' ss -Hltn 'sport = :5201' | grep -q LISTEN"
    NS_A[$b]=$a NS_B[$b]=$bb NS_C[$b]=$c TAP_C[$b]=$tc RUN[$b]=$run/run IP_B[$b]=10.79.$i.2
    FLOOD_DEV[$b]=$tc
}

# The control: a namespace with a veth pair that trafgen floods (the frames die at the other end).
setup_control() {
    local d
    d=$(it_name fcd)
    it_netns "$d"
    ip -n "$d" link add v0 type veth peer name v1
    ip -n "$d" link set v0 up
    ip -n "$d" link set v1 up
    NS_C[control]=$d FLOOD_DEV[control]=v0
}

# The flood of the world being measured: trafgen's PID (ip netns exec execs, so it is
# trafgen's own) and the forks it makes, all of them inside namespace C, stopped by PID.
FLOOD_NS=
start_flood() {
    local b=$1
    FLOOD_NS=${NS_C[$b]}
    ip netns exec "$FLOOD_NS" trafgen -o "${FLOOD_DEV[$b]}" -P 1 --no-sock-mem -Q -C "$FLOOD_FRAME" \
        </dev/null >"$OUT/trafgen-$b.log" 2>&1 &
}
stop_flood() {
    local p
    [[ -n "$FLOOD_NS" ]] || return 0
    for p in $(ip netns pids "$FLOOD_NS" 2>/dev/null); do it_kill "$p"; done
    FLOOD_NS=
}
it_defer stop_flood

# rx_c BUILD: frames switchd has taken from C so far.
rx_c() {
    "${BIN[$1]}" status --json --run-dir "${RUN[$1]}" |
        "$PY" -c 'import json,sys
ports=json.load(sys.stdin)["networks"][0]["ports"]
print(sum(p["rx"]["packets"] for p in ports if p["peer"].endswith(sys.argv[1])))' "@${NS_C[$1]}"
}

i=1
for b in "${builds[@]}"; do
    setup "$b" "$i"
    i=$((i + 1))
done
setup_control
last=${builds[-1]}

it_log "builds: ${builds[*]}; ${SECS}s per run, $REPS runs each with and without the flood; raw results in $OUT"
for ((r = 1; r <= REPS; r++)); do
    for b in "${builds[@]}"; do
        f="$OUT/$b-quiet-r$r.json"
        it_iperf_client "${NS_A[$b]}" "${IP_B[$b]}" "$SECS" "$f" || it_log "warning: $b quiet run $r failed"
        it_log "$b no flood, run $r: $(it_iperf_gbps "$f" 2>/dev/null || echo '?') Gbit/s"
        before_rx=$(rx_c "$b")
        start_flood "$b"
        sleep 1
        f="$OUT/$b-flood-r$r.json"
        it_iperf_client "${NS_A[$b]}" "${IP_B[$b]}" "$SECS" "$f" || it_log "warning: $b flood run $r failed"
        stop_flood
        echo $(($(rx_c "$b") - before_rx)) >"$OUT/$b-flood-r$r.rx"
        it_log "$b flood, run $r: $(it_iperf_gbps "$f" 2>/dev/null || echo '?') Gbit/s," \
            "$(cat "$OUT/$b-flood-r$r.rx") frames taken from C"
    done
    start_flood control
    sleep 1
    f="$OUT/control-flood-r$r.json"
    it_iperf_client "${NS_A[$last]}" "${IP_B[$last]}" "$SECS" "$f" || it_log "warning: control run $r failed"
    stop_flood
    it_log "$last with the flood outside switchd (cpu only), run $r: $(it_iperf_gbps "$f" 2>/dev/null || echo '?') Gbit/s"
done
for b in "${builds[@]}"; do
    "${BIN[$b]}" status --json --run-dir "${RUN[$b]}" >"$OUT/$b-status.json"
    echo "${NS_C[$b]}" >"$OUT/$b-flooder"
done

# The table: medians, the ratio, the flood rate switchd took, and the drop counters by port.
"$PY" - "$OUT" "$SECS" "${builds[@]}" <<'PY' | tee "$OUT/table.txt"
import glob, json, os, statistics, sys
out, secs, builds = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
last = builds[-1]

def gbps(kind, b):
    g = []
    for f in sorted(glob.glob(os.path.join(out, "%s-%s-r*.json" % (b, kind)))):
        try:
            g.append(json.load(open(f))["end"]["sum_received"]["bits_per_second"] / 1e9)
        except (KeyError, ValueError):
            pass
    return g

def drops(p):
    return ", ".join("%s %d" % kv for kv in sorted(p.get("drops", {}).items())) or "none"

print()
print("%-7s %14s %12s %7s %5s %16s" % ("build", "no flood Gbps", "flood Gbps", "ratio", "runs", "C frames/s taken"))
for b in builds:
    q, f = gbps("quiet", b), gbps("flood", b)
    rx = [int(open(x).read()) for x in sorted(glob.glob(os.path.join(out, "%s-flood-r*.rx" % b)))]
    if not q or not f:
        print("%-7s %14s" % (b, "failed"))
        continue
    mq, mf = statistics.median(q), statistics.median(f)
    # Frames per second of flood: each flood lasted the iperf3 run plus ~1 s of lead-in.
    rate = statistics.median(rx) / (secs + 1) if rx else 0
    print("%-7s %14.2f %12.2f %7.2f %5d %16.0f" % (b, mq, mf, mf / mq if mq else 0, min(len(q), len(f)), rate))
    print("        no flood runs: %s; flood runs: %s" % (" ".join("%.2f" % x for x in q), " ".join("%.3f" % x for x in f)))
c, q = gbps("flood", "control"), gbps("quiet", last)
if c and q:
    mc, mq = statistics.median(c), statistics.median(q)
    print("%-7s %14.2f %12.2f %7.2f %5d  (trafgen into a veth outside switchd, iperf3 through %s)"
          % ("cpu only", mq, mc, mc / mq if mq else 0, len(c), last))
    print("        flood runs: %s" % " ".join("%.3f" % x for x in c))
print()
print("drops counted by switchd (status --json, whole run):")
for b in builds:
    flooder = "@" + open(os.path.join(out, "%s-flooder" % b)).read().strip()
    ports = json.load(open(os.path.join(out, "%s-status.json" % b)))["networks"][0]["ports"]
    for p in ports:
        role = "flooding" if p["peer"].endswith(flooder) else "other"
        print("  %-7s %-9s %-16s rx %12d  drops: %s" % (b, role, p["id"], p["rx"]["packets"], drops(p)))
PY
echo "raw results: $OUT"
