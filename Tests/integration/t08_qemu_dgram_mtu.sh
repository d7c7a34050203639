#!/usr/bin/env bash
# Offloading tap -> QEMU dgram client, at MTU 1500 and at MTU 65520. Two networks in one
# switchd: `lab` (MTU 1500) and `big` (MTU 65520), each with a namespace on a `tap` port (TSO
# super-frames in) and a `qemu-system-x86_64 -M none` in its own namespace that joins its TAP
# to dgram.sock through a hub (QEMU's dgram netdev takes no offloads). At MTU 1500 iperf3
# completes, switchd segments (the dgram port's `segmented` rises) and no frame longer than
# 1514 bytes reaches the QEMU side (tcpdump on QEMU's TAP); at MTU 65520 iperf3 completes.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping tcpdump qemu-system-x86_64
it_require_switchd

NS_A1=$(it_name a1) NS_Q1=$(it_name q1) NS_A2=$(it_name a2) NS_Q2=$(it_name q2)
TAP_A1=$(it_name ta1) TAP_Q1=$(it_name tq1) TAP_A2=$(it_name ta2) TAP_Q2=$(it_name tq2)
for ns in "$NS_A1" "$NS_Q1" "$NS_A2" "$NS_Q2"; do it_netns "$ns"; done

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: 1500
    ports:
      - {tap: $TAP_A1, netns: $NS_A1}
  big:
    mode: isolated
    subnet: 10.78.0.0/24
    mtu: 65520
    ports:
      - {tap: $TAP_A2, netns: $NS_A2}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/lab/dgram.sock"
it_wait_socket "$RUN_DIR/big/dgram.sock"

QEMU=(qemu-system-x86_64 -M none -nodefaults -display none)
# qemu_dgram NS TAP NET: QEMU in NS with its TAP hubbed to NET's dgram.sock (t02's recipe).
qemu_dgram() {
    local ns=$1 tap=$2 net=$3
    it_bg "$IT_TMP/qemu-$net.log" ip netns exec "$ns" "${QEMU[@]}" \
        -netdev "tap,id=t0,ifname=$tap,script=no,downscript=no" \
        -netdev "dgram,id=d0,local.type=unix,local.path=$IT_TMP/q-$net.sock,remote.type=unix,remote.path=$RUN_DIR/$net/dgram.sock" \
        -netdev hubport,id=h0,hubid=0,netdev=t0 \
        -netdev hubport,id=h1,hubid=0,netdev=d0
}
qemu_dgram "$NS_Q1" "$TAP_Q1" lab
QEMU_1=$IT_LAST_PID
qemu_dgram "$NS_Q2" "$TAP_Q2" big
QEMU_2=$IT_LAST_PID
it_wait_link "$NS_Q1" "$TAP_Q1"
it_wait_link "$NS_Q2" "$TAP_Q2"
for p in "$QEMU_1" "$QEMU_2"; do
    _it_alive "$p" || { cat "$IT_TMP"/qemu-*.log >&2; it_fail "QEMU (pid $p) exited"; }
done

it_tap_ready "$NS_A1" "$TAP_A1" 10.77.0.81/24
it_addr "$NS_Q1" "$TAP_Q1" 10.77.0.82/24
it_tap_ready "$NS_A2" "$TAP_A2" 10.78.0.81/24
ip -n "$NS_Q2" link set "$TAP_Q2" mtu 65520
it_addr "$NS_Q2" "$TAP_Q2" 10.78.0.82/24
mtu_a2=$(ip -n "$NS_A2" -o link show "$TAP_A2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
[[ "$mtu_a2" == 65520 ]] || it_fail "switchd set MTU $mtu_a2 on $TAP_A2, expected the network's 65520"
it_log "ok: $TAP_A2 has MTU 65520"

it_ping "$NS_A1" 10.77.0.82 2
it_ping "$NS_A2" 10.78.0.82 2
it_wait_until 5 "one dgram port on lab" it_json_is 'len(kind("lab", "dgram"))' 1
it_wait_until 5 "one dgram port on big" it_json_is 'len(kind("big", "dgram"))' 1

# --- MTU 1500: switchd cuts a1's super-frames for QEMU; watch what QEMU writes to its TAP.
it_bg "$IT_TMP/tcpdump.log" ip netns exec "$NS_Q1" tcpdump -i "$TAP_Q1" -Q in -nn -s 64 -B 8192 \
    -w "$IT_TMP/q1.pcap"
TCPDUMP=$IT_LAST_PID
it_wait_until 10 "tcpdump capturing on $TAP_Q1" grep -q 'listening on' "$IT_TMP/tcpdump.log"

it_iperf_server "$NS_Q1"
it_check "iperf3 TCP 4 s tap -> QEMU dgram at MTU 1500 completes" \
    it_iperf_client "$NS_A1" 10.77.0.82 4 "$IT_TMP/iperf-1500.json"
bytes=$(it_iperf_received "$IT_TMP/iperf-1500.json")
gbps_1500=$(it_iperf_gbps "$IT_TMP/iperf-1500.json")
it_log "iperf3 MTU 1500: $bytes bytes, $gbps_1500 Gbit/s"
((bytes > 0)) || it_fail "iperf3 at MTU 1500 received no bytes"
it_kill "$TCPDUMP"
it_log "tcpdump: $(grep -E 'captured|dropped' "$IT_TMP/tcpdump.log" | tr '\n' ' ')"

it_json 'dump(ports("lab"))' >"$IT_TMP/ports-lab.json"
seg=$(it_json 'kind("lab", "dgram")[0].get("segmented", -1)')
sf=$(it_json 'kind("lab", "dgram")[0].get("superFrames", -1)')
txp=$(it_json 'tx(kind("lab", "dgram")[0])')
it_log "lab dgram port: segmented $seg, superFrames $sf, tx packets $txp"
((seg > 0)) || { cat "$IT_TMP/ports-lab.json" >&2; it_fail "the dgram port at MTU 1500 shows no software segmentation (segmented $seg)"; }
((sf == 0)) || { cat "$IT_TMP/ports-lab.json" >&2; it_fail "switchd forwarded $sf super-frames whole to a plain dgram port"; }

read -r _ frames _ maxlen _ over < <("$PY" "$IT_DIR/pcap_lengths.py" "$IT_TMP/q1.pcap" 1514)
it_log "QEMU's TAP got $frames frames from QEMU, longest $maxlen bytes, $over over 1514"
((frames > 1000 && maxlen > 1000)) || it_fail "capture on $TAP_Q1 too small to judge: $frames frames, longest $maxlen"
((over == 0)) || it_fail "$over frames longer than 1514 bytes reached QEMU's side at MTU 1500 (longest $maxlen)"
it_log "ok: at MTU 1500 switchd segmented and QEMU saw only frames <= 1514 bytes"

# --- MTU 65520.
it_iperf_server "$NS_Q2"
it_check "iperf3 TCP 4 s tap -> QEMU dgram at MTU 65520 completes" \
    it_iperf_client "$NS_A2" 10.78.0.82 4 "$IT_TMP/iperf-65520.json"
bytes=$(it_iperf_received "$IT_TMP/iperf-65520.json")
gbps_big=$(it_iperf_gbps "$IT_TMP/iperf-65520.json")
it_log "iperf3 MTU 65520: $bytes bytes, $gbps_big Gbit/s"
((bytes > 0)) || it_fail "iperf3 at MTU 65520 received no bytes"
it_json 'dump(ports("big"))' >"$IT_TMP/ports-big.json"
it_log "big dgram port: segmented $(it_json 'kind("big", "dgram")[0].get("segmented", -1)'), superFrames $(it_json 'kind("big", "dgram")[0].get("superFrames", -1)'), tx packets $(it_json 'tx(kind("big", "dgram")[0])'), drops $(it_json 'kind("big", "dgram")[0].get("drops", {})')"
it_log "summary: tap -> QEMU dgram: $gbps_1500 Gbit/s at MTU 1500, $gbps_big Gbit/s at MTU 65520"
it_pass
