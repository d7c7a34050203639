#!/usr/bin/env bash
# switchd attach with real QEMU: `switchd attach lab --kind dgram -- qemu-system-x86_64 -M none ...
# -netdev dgram,local.type=fd,local.str=3` (and the same with --kind stream and
# `-netdev stream,addr.type=fd,addr.str=3`), QEMU joining a TAP it creates in its own namespace
# through a hub. Ping and short iperf3 runs both ways between that namespace and one on a `tap` port; status shows
# the port with peer attach:PID (QEMU's PID: attach execs it); when QEMU is killed the port leaves
# status within 2 s (the control connection it inherited is the port's lease). attach --offload
# (both kinds) carries a header-less offload client's super-frames. A missing command exits 127 and
# leaves no port.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping qemu-system-x86_64
it_require_switchd

NS_A=$(it_name a) NS_Q=$(it_name q)
TAP_A=$(it_name ta)
it_netns "$NS_A"
it_netns "$NS_Q"

cat >"$IT_TMP/switchd.yaml" <<EOF2
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    ports:
      - {tap: $TAP_A, netns: $NS_A}
EOF2
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.11/24

QEMU=(qemu-system-x86_64 -M none -nodefaults -display none)

# attached KIND TAP NETDEV: QEMU under `switchd attach` in NS_Q, its TAP hubbed to the fd netdev.
attached() {
    local kind=$1 tap=$2 netdev=$3
    it_bg "$IT_TMP/qemu-$kind.log" ip netns exec "$NS_Q" "$SWITCHD" attach lab --kind "$kind" --run-dir "$RUN_DIR" -- \
        "${QEMU[@]}" -netdev "tap,id=t0,ifname=$tap,script=no,downscript=no" -netdev "$netdev" \
        -netdev hubport,id=h0,hubid=0,netdev=t0 -netdev hubport,id=h1,hubid=0,netdev=n0
}

# check KIND TAP ADDR NETDEV: the whole round for one kind.
check() {
    local kind=$1 tap=$2 addr=$3 netdev=$4 pid
    attached "$kind" "$tap" "$netdev"
    pid=$IT_LAST_PID
    it_wait_link "$NS_Q" "$tap"
    _it_alive "$pid" || { cat "$IT_TMP/qemu-$kind.log" >&2; it_fail "QEMU under switchd attach --kind $kind exited"; }
    it_addr "$NS_Q" "$tap" "$addr/24"
    it_wait_until 5 "a $kind port with peer attach:$pid" \
        it_json_is "len([p for p in kind('lab', '$kind') if p['peer'] == 'attach:$pid'])" 1
    it_log "ok: status lists the $kind port with peer attach:$pid"
    it_ping "$NS_Q" 10.77.0.11 3
    it_ping "$NS_A" "$addr" 3

    it_iperf_server "$NS_A"
    it_check "iperf3 TCP 3 s QEMU ($kind fd) -> tap completes" \
        it_iperf_client "$NS_Q" 10.77.0.11 3 "$IT_TMP/iperf-$kind.json"
    local bytes
    bytes=$(it_iperf_received "$IT_TMP/iperf-$kind.json")
    ((bytes > 0)) || it_fail "iperf3 over the attached $kind port received no bytes"
    it_log "iperf3 over the attached $kind port: $bytes bytes, $(it_iperf_gbps "$IT_TMP/iperf-$kind.json") Gbit/s"
    # And the other way: the tap's TSO super-frames are cut for the socket port.
    it_iperf_server "$NS_A"
    it_check "iperf3 TCP 2 s tap -> QEMU ($kind fd) completes" \
        it_iperf_client "$NS_Q" 10.77.0.11 2 "$IT_TMP/iperf-$kind-r.json" -R
    bytes=$(it_iperf_received "$IT_TMP/iperf-$kind-r.json")
    ((bytes > 0)) || it_fail "iperf3 -R over the attached $kind port received no bytes"
    it_log "iperf3 -R over the attached $kind port: $bytes bytes, $(it_iperf_gbps "$IT_TMP/iperf-$kind-r.json") Gbit/s"

    # The lease: killing QEMU closes the control connection it inherited, and the port goes.
    local t0 t1
    t0=$(date +%s%N)
    kill -KILL "$pid"
    it_wait_until 5 "the $kind port gone after QEMU was killed" it_json_is "len(kind('lab', '$kind'))" 0
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    ((ms <= 2000)) || it_fail "the $kind port took ${ms} ms to go after QEMU was killed (expected <= 2 s)"
    it_log "ok: the $kind port left status ${ms} ms after QEMU was killed"
    wait "$pid" 2>/dev/null || true
}

check dgram "$(it_name qd)" 10.77.0.21 "dgram,id=n0,local.type=fd,local.str=3"
check stream "$(it_name qs)" 10.77.0.22 "stream,id=n0,addr.type=fd,addr.str=3"

# --offload: a header-less offload client on fd 3 (krunkit offloading=on's framing, played by
# attach_offload_peer.py): its TCP super-frame with a partial checksum reaches a plain dgram peer as
# MTU-size segments with valid checksums.
for kind in dgram stream; do
    if ! timeout -k 5 30 "$SWITCHD" attach lab --kind "$kind" --offload --run-dir "$RUN_DIR" -- \
        "$PY" "$IT_DIR/attach_offload_peer.py" "$kind" "$RUN_DIR/lab" "$IT_TMP" "$SWITCHD" "$RUN_DIR" \
        >"$IT_TMP/offload-$kind.log" 2>&1; then
        cat "$IT_TMP/offload-$kind.log" >&2
        it_fail "the header-less offload client under attach --kind $kind --offload failed"
    fi
    sed 's/^/    /' "$IT_TMP/offload-$kind.log" >&2
done
it_wait_until 5 "the offload clients' ports gone" it_json_is "len([p for p in ports('lab') if p['peer'].startswith('attach:')])" 0
it_log "ok: attach --offload, dgram and stream: super-frames segmented for a plain peer"

# A command that does not exist: exit status 127, a clear message, and no port left behind.
rc=0
out=$("$SWITCHD" attach lab --run-dir "$RUN_DIR" -- "$IT_TMP/no-such-command" 2>&1) || rc=$?
[[ $rc -eq 127 ]] || it_fail "attach with a missing command exited $rc, expected 127: $out"
[[ "$out" == *"command not found"* ]] || it_fail "attach with a missing command said: $out"
rc=0
out=$("$SWITCHD" attach lab --run-dir "$RUN_DIR" -- 2>&1) || rc=$?
[[ $rc -eq 127 ]] || it_fail "attach without a command exited $rc, expected 127: $out"
n=$(it_json "len([p for p in ports('lab') if p['peer'].startswith('attach:')])")
[[ "$n" == 0 ]] || { it_status >&2; it_fail "a failed attach left $n attach ports"; }
it_log "ok: a missing command exits 127 and leaves no port"
it_pass
