#!/usr/bin/env bash
# bench/worlds.sh: the benchmark worlds that bench/iperf.sh and bench/pps.sh share, sourced
# after Tests/integration/lib.sh (it_netns, it_bg, it_defer: everything made here is removed at
# exit). Each setup_PATH leaves a pair of namespaces joined through one switch:
#   CLIENT_NS[PATH] CLIENT_IF[PATH]                   the sending side, 10.78.N.1
#   SERVER_NS[PATH] SERVER_IF[PATH] SERVER_IP[PATH]   the receiving side, 10.78.N.2
#   SWITCH_PIDS[PATH]  the switch's own processes, for CPU accounting (none for the bridge: the
#                      kernel forwards in the softirq context of whoever sends)
#   SWITCHD_RUN[NAME]  world_switchd's run directory (for `switchd status|fdb --run-dir`)
# The caller sets SWITCHD (the release binary), MTU (default 1500) and IT_LOG_LEVEL.
# shellcheck shell=bash

MTU=${MTU:-1500}

declare -A SERVER_NS CLIENT_NS SERVER_IP CLIENT_IF SERVER_IF SWITCH_PIDS SWITCHD_RUN

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
    CLIENT_IF[switchd]=$ta SERVER_IF[switchd]=$tb SWITCH_PIDS[switchd]=$SWITCHD_PID
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
    CLIENT_IF[mixed]=$ta SERVER_IF[mixed]=$tb
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
    CLIENT_IF[shared]=$ta SERVER_IF[shared]=veth0
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
    CLIENT_IF[bridge]=veth0 SERVER_IF[bridge]=veth0
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
    SWITCH_PIDS[vde]=$(cat "$IT_TMP/vde.pid")
    it_bg "$IT_TMP/vde-a.log" ip netns exec "$a" vde_plug2tap -s "$IT_TMP/vde" vtap0
    SWITCH_PIDS[vde]+=" $IT_LAST_PID"
    it_bg "$IT_TMP/vde-b.log" ip netns exec "$b" vde_plug2tap -s "$IT_TMP/vde" vtap0
    SWITCH_PIDS[vde]+=" $IT_LAST_PID"
    it_wait_link "$a" vtap0
    it_wait_link "$b" vtap0
    ip -n "$a" link set vtap0 mtu "$MTU"
    ip -n "$b" link set vtap0 mtu "$MTU"
    it_addr "$a" vtap0 10.78.3.1/24
    it_addr "$b" vtap0 10.78.3.2/24
    CLIENT_NS[vde]=$a SERVER_NS[vde]=$b SERVER_IP[vde]=10.78.3.2
    CLIENT_IF[vde]=vtap0 SERVER_IF[vde]=vtap0
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
    CLIENT_IF[ovs]=veth0 SERVER_IF[ovs]=veth0 SWITCH_PIDS[ovs]=$(cat "$d/vswitchd.pid")
}

# world_switchd NAME INDEX [RUN ARGS...]: a switchd world with its own run and state dirs, log
# and PID, so that several run side by side (pps.sh: one per --threads value): an isolated
# network with two `tap` ports in namespaces of their own on 10.78.INDEX.0/24.
world_switchd() {
    local w=$1 i=$2 a b ta tb run
    shift 2
    a=$(it_name "w${i}a") b=$(it_name "w${i}b") ta=$(it_name "w${i}ta") tb=$(it_name "w${i}tb")
    run=$IT_TMP/$w
    mkdir -p "$run"
    it_netns "$a"
    it_netns "$b"
    cat >"$run/switchd.yaml" <<EOF
networks:
  bench:
    mode: isolated
    subnet: 10.78.$i.0/24
    gateway: 10.78.$i.254        # the guests use .1 and .2 (port security refuses the gateway's address)
    mtu: $MTU
    ports:
      - {tap: $ta, netns: $a}
      - {tap: $tb, netns: $b}
EOF
    it_bg "$run/switchd.log" "$SWITCHD" run --config "$run/switchd.yaml" --run-dir "$run/run" \
        --state-dir "$run/state" --log-level "${IT_LOG_LEVEL:-info}" "$@"
    SWITCH_PIDS[$w]=$IT_LAST_PID
    it_wait_until 20 "switchd ($w)" "$SWITCHD" status --json --run-dir "$run/run"
    it_tap_ready "$a" "$ta" "10.78.$i.1/24"
    it_tap_ready "$b" "$tb" "10.78.$i.2/24"
    CLIENT_NS[$w]=$a SERVER_NS[$w]=$b SERVER_IP[$w]=10.78.$i.2
    CLIENT_IF[$w]=$ta SERVER_IF[$w]=$tb SWITCHD_RUN[$w]=$run/run
}
