#!/usr/bin/env bash
# QEMU as the client: two `qemu-system-x86_64 -M none` processes, each in its own namespace,
# join a TAP they create there to switchd through a hub: one with `-netdev dgram` (unix,
# path-bound) and one with `-netdev stream` (unix client). The namespaces then ping and run
# iperf3 through QEMU -> switchd -> QEMU. Checks the port kinds that `status` reports.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping qemu-system-x86_64
it_require_switchd

NS_D=$(it_name d) NS_S=$(it_name s)
TAP_D=$(it_name qd) TAP_S=$(it_name qs)
it_netns "$NS_D"
it_netns "$NS_S"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: 1500
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/lab/dgram.sock"
it_wait_socket "$RUN_DIR/lab/stream.sock"

QEMU=(qemu-system-x86_64 -M none -nodefaults -display none)

# QEMU 7.2 syntax; the hub joins the namespace TAP (t0) to the switch side.
it_bg "$IT_TMP/qemu-dgram.log" ip netns exec "$NS_D" "${QEMU[@]}" \
    -netdev "tap,id=t0,ifname=$TAP_D,script=no,downscript=no" \
    -netdev "dgram,id=d0,local.type=unix,local.path=$IT_TMP/qa.sock,remote.type=unix,remote.path=$RUN_DIR/lab/dgram.sock" \
    -netdev hubport,id=h0,hubid=0,netdev=t0 \
    -netdev hubport,id=h1,hubid=0,netdev=d0
QEMU_D=$IT_LAST_PID
it_bg "$IT_TMP/qemu-stream.log" ip netns exec "$NS_S" "${QEMU[@]}" \
    -netdev "tap,id=t0,ifname=$TAP_S,script=no,downscript=no" \
    -netdev "stream,id=s0,server=off,addr.type=unix,addr.path=$RUN_DIR/lab/stream.sock" \
    -netdev hubport,id=h0,hubid=0,netdev=t0 \
    -netdev hubport,id=h1,hubid=0,netdev=s0
QEMU_S=$IT_LAST_PID

it_wait_link "$NS_D" "$TAP_D"
it_wait_link "$NS_S" "$TAP_S"
for p in "$QEMU_D" "$QEMU_S"; do
    _it_alive "$p" || { cat "$IT_TMP"/qemu-*.log >&2; it_fail "QEMU (pid $p) exited"; }
done
it_addr "$NS_D" "$TAP_D" 10.77.0.21/24
it_addr "$NS_S" "$TAP_S" 10.77.0.22/24

# The stream client is a port as soon as QEMU has connected.
it_wait_until 10 "a stream port in status" it_json_is 'len(kind("lab", "stream"))' 1

it_ping "$NS_D" 10.77.0.22 3
it_ping "$NS_S" 10.77.0.21 3

it_iperf_server "$NS_S"
it_check "iperf3 TCP 5 s dgram-QEMU -> stream-QEMU completes" \
    it_iperf_client "$NS_D" 10.77.0.22 5 "$IT_TMP/iperf.json"
bytes=$(it_iperf_received "$IT_TMP/iperf.json")
it_log "iperf3: $bytes bytes received, $(it_iperf_gbps "$IT_TMP/iperf.json") Gbit/s"
((bytes > 0)) || it_fail "iperf3 received no bytes"

it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
nd=$(it_json 'len(kind("lab", "dgram"))')
ns=$(it_json 'len(kind("lab", "stream"))')
if [[ "$nd" != 1 || "$ns" != 1 ]]; then
    cat "$IT_TMP/ports.json" >&2
    it_fail "status lists $nd dgram and $ns stream ports, expected 1 and 1"
fi
it_log "ok: status lists one dgram and one stream port"

# A QEMU that goes away takes its stream port with it (EOF).
it_kill "$QEMU_S"
it_wait_until 10 "the stream port is removed after its QEMU exits" \
    it_json_is 'len(kind("lab", "stream"))' 0
it_log "ok: stream port removed when QEMU exits"
it_pass
