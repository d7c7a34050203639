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

declare -A SERVER_NS CLIENT_NS SERVER_IP

# Each setup leaves a namespace pair with addresses 10.78.N.1 (client) and .2 (server).
# have PATH: whether the path's software is here (else it is left out, with a note).
have() {
    case $1 in
    switchd | mixed | shared) [[ -x "$SWITCHD" ]] || { it_log "no switchd at $SWITCHD (make release): leaving out $1"; return 1; } ;;
    bridge) true ;;
    vde) command -v vde_switch >/dev/null && command -v vde_plug2tap >/dev/null ||
        { it_log "vde2 is not installed: leaving out vde"; return 1; } ;;
    ovs) command -v ovs-vswitchd >/dev/null && command -v ovsdb-server >/dev/null &&
        [[ -r /usr/share/openvswitch/vswitch.ovsschema ]] ||
        { it_log "openvswitch-switch is not installed: leaving out ovs"; return 1; } ;;
    *) it_fail "unknown path $1 (known: switchd mixed shared bridge ovs vde)" ;;
    esac
}

setup_switchd() {
    local a b ta tb
    a=$(it_name sa) b=$(it_name sb) ta=$(it_name sta) tb=$(it_name stb)
    it_netns "$a"
    it_netns "$b"
    cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  bench:
    mode: isolated
    subnet: 10.78.1.0/24
    gateway: 10.78.1.254        # the guests use .1 and .2 (port security refuses the gateway's address)
    mtu: $MTU
    ports:
      - {tap: $ta, netns: $a}
      - {tap: $tb, netns: $b}
EOF
    it_start_switchd "$IT_TMP/switchd.yaml"
    it_tap_ready "$a" "$ta" 10.78.1.1/24
    it_tap_ready "$b" "$tb" 10.78.1.2/24
    CLIENT_NS[switchd]=$a SERVER_NS[switchd]=$b SERVER_IP[switchd]=10.78.1.2
}

# mixed: switchd's tap pair on a network that also has a plain (non-offload) dgram port, a
# reader that takes everything sent to it. Unicast TSO flows must not notice it: only flooded
# frames reach it, cut to the MTU for it alone (docs/DESIGN.md §9 "mixed offloads").
setup_mixed() {
    local a b ta tb run
    a=$(it_name ma) b=$(it_name mb) ta=$(it_name mta) tb=$(it_name mtb) run=$IT_TMP/mixed
    it_netns "$a"
    it_netns "$b"
    mkdir -p "$run"
    cat >"$IT_TMP/mixed.yaml" <<EOF
networks:
  mixed:
    mode: isolated
    subnet: 10.78.5.0/24
    gateway: 10.78.5.254        # the guests use .1 and .2 (port security refuses the gateway's address)
    mtu: $MTU
    ports:
      - {tap: $ta, netns: $a}
      - {tap: $tb, netns: $b}
EOF
    it_bg "$IT_TMP/switchd-mixed.log" "$SWITCHD" run --config "$IT_TMP/mixed.yaml" --run-dir "$run/run" \
        --state-dir "$run/state" --log-level info
    it_wait_until 20 "mixed switchd" test -S "$run/run/mixed/dgram.sock"
    it_bg "$IT_TMP/plain-peer.log" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.sendto(b"\xff" * 6 + bytes.fromhex("02000000f00d") + b"\x88\xb5" + b"\x00" * 46, sys.argv[2])
while True:
    s.recv(70000)
' "$run/plain.sock" "$run/run/mixed/dgram.sock"
    it_tap_ready "$a" "$ta" 10.78.5.1/24
    it_tap_ready "$b" "$tb" 10.78.5.2/24
    CLIENT_NS[mixed]=$a SERVER_NS[mixed]=$b SERVER_IP[mixed]=10.78.5.2
}

# shared: guest -> uplink -> the host namespace's stack (forwarding, masquerade) -> veth -> server.
setup_shared() {
    local a h b ta run
    a=$(it_name na) h=$(it_name nh) b=$(it_name nb) ta=$(it_name nta) run=$IT_TMP/shared
    it_netns "$a"
    it_netns "$h"
    it_netns "$b"
    mkdir -p "$run"
    ip link add veth0 netns "$h" mtu "$MTU" type veth peer name veth0 netns "$b" mtu "$MTU"
    it_addr "$h" veth0 10.78.7.1/24
    it_addr "$b" veth0 10.78.7.2/24
    cat >"$IT_TMP/shared.yaml" <<EOF
networks:
  nat:
    mode: shared
    subnet: 10.78.6.0/24
    mtu: $MTU
    ports:
      - {tap: $ta, netns: $a}
EOF
    it_bg "$IT_TMP/switchd-shared.log" ip netns exec "$h" "$SWITCHD" run --config "$IT_TMP/shared.yaml" \
        --run-dir "$run/run" --state-dir "$run/state" --log-level info
    it_wait_until 20 "shared switchd" test -S "$run/run/nat/dgram.sock"
    it_tap_ready "$a" "$ta" 10.78.6.10/24
    ip -n "$a" route add default via 10.78.6.1
    CLIENT_NS[shared]=$a SERVER_NS[shared]=$b SERVER_IP[shared]=10.78.7.2
}

setup_bridge() {
    local a b s
    a=$(it_name ba) b=$(it_name bb) s=$(it_name bs)
    it_netns "$a"
    it_netns "$b"
    it_netns "$s"
    ip -n "$s" link add br0 type bridge
    ip -n "$s" link set br0 mtu "$MTU" up
    ip link add veth0 netns "$a" mtu "$MTU" type veth peer name pa netns "$s" mtu "$MTU"
    ip link add veth0 netns "$b" mtu "$MTU" type veth peer name pb netns "$s" mtu "$MTU"
    ip -n "$s" link set pa master br0 up
    ip -n "$s" link set pb master br0 up
    it_addr "$a" veth0 10.78.2.1/24
    it_addr "$b" veth0 10.78.2.2/24
    CLIENT_NS[bridge]=$a SERVER_NS[bridge]=$b SERVER_IP[bridge]=10.78.2.2
}

setup_vde() {
    local a b
    a=$(it_name va) b=$(it_name vb)
    it_netns "$a"
    it_netns "$b"
    # vde_switch reads commands from stdin in the foreground (EOF ends it): run it as a daemon
    # and take its PID from the pidfile.
    vde_switch -s "$IT_TMP/vde" -M "$IT_TMP/vde.mgmt" -d -p "$IT_TMP/vde.pid"
    it_wait_until 5 "vde_switch pidfile" test -s "$IT_TMP/vde.pid"
    it_defer "it_kill $(cat "$IT_TMP/vde.pid")"
    it_bg "$IT_TMP/vde-a.log" ip netns exec "$a" vde_plug2tap -s "$IT_TMP/vde" vtap0
    it_bg "$IT_TMP/vde-b.log" ip netns exec "$b" vde_plug2tap -s "$IT_TMP/vde" vtap0
    it_wait_link "$a" vtap0
    it_wait_link "$b" vtap0
    ip -n "$a" link set vtap0 mtu "$MTU"
    ip -n "$b" link set vtap0 mtu "$MTU"
    it_addr "$a" vtap0 10.78.3.1/24
    it_addr "$b" vtap0 10.78.3.2/24
    CLIENT_NS[vde]=$a SERVER_NS[vde]=$b SERVER_IP[vde]=10.78.3.2
}

setup_ovs() {
    local a b s d=$IT_TMP/ovs v
    a=$(it_name oa) b=$(it_name ob) s=$(it_name os)
    it_netns "$a"
    it_netns "$b"
    it_netns "$s"
    mkdir -p "$d"
    export OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d
    v=(ovs-vsctl "--db=unix:$d/db.sock")
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$s" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/ovsdb.pid" \
        --unixctl="$d/ovsdb.ctl" --detach --log-file="$d/ovsdb.log"
    it_defer "it_kill $(cat "$d/ovsdb.pid")"
    "${v[@]}" --no-wait init
    "${v[@]}" --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
    ip netns exec "$s" ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vswitchd.pid" \
        --unixctl="$d/vswitchd.ctl" --detach --log-file="$d/vswitchd.log"
    it_defer "it_kill $(cat "$d/vswitchd.pid")"
    "${v[@]}" add-br br0 -- set bridge br0 datapath_type=netdev
    ip link add veth0 netns "$a" mtu "$MTU" type veth peer name pa netns "$s" mtu "$MTU"
    ip link add veth0 netns "$b" mtu "$MTU" type veth peer name pb netns "$s" mtu "$MTU"
    ip -n "$s" link set pa up
    ip -n "$s" link set pb up
    "${v[@]}" add-port br0 pa -- add-port br0 pb
    it_addr "$a" veth0 10.78.4.1/24
    it_addr "$b" veth0 10.78.4.2/24
    CLIENT_NS[ovs]=$a SERVER_NS[ovs]=$b SERVER_IP[ovs]=10.78.4.2
}

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
