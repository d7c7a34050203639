#!/usr/bin/env bash
# MAC learning: three namespaces on tap ports. Once a and b have pinged each other (so the
# switch knows both MACs), an iperf3 run between them must not reach c: tcpdump on c's TAP
# sees only a handful of broadcast/multicast frames and no frame of the flow, and c's tx
# counter in `status` stays small.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping tcpdump
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b) NS_C=$(it_name c)
TAP_A=$(it_name ta) TAP_B=$(it_name tb) TAP_C=$(it_name tc)
it_netns "$NS_A"
it_netns "$NS_B"
it_netns "$NS_C"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
      - {tap: $TAP_C, netns: $NS_C}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.31/24
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.32/24
it_tap_ready "$NS_C" "$TAP_C" 10.77.0.33/24

# Learning: both directions, and c too, so every MAC is known.
it_ping "$NS_A" 10.77.0.32 2
it_ping "$NS_B" 10.77.0.31 2
it_ping "$NS_C" 10.77.0.31 1
it_ping "$NS_C" 10.77.0.32 1

# Watch c from here on, in its own namespace.
it_bg "$IT_TMP/tcpdump.log" ip netns exec "$NS_C" tcpdump -i "$TAP_C" -nn -U -w "$IT_TMP/c.pcap"
TCPDUMP=$IT_LAST_PID
it_wait_until 10 "tcpdump capturing on $TAP_C" grep -q 'listening on' "$IT_TMP/tcpdump.log"

it_iperf_server "$NS_B"
it_check "iperf3 TCP 5 s $NS_A -> $NS_B completes" \
    it_iperf_client "$NS_A" 10.77.0.32 5 "$IT_TMP/iperf.json"
bytes=$(it_iperf_received "$IT_TMP/iperf.json")
((bytes > 0)) || it_fail "iperf3 received no bytes"
it_log "iperf3: $bytes bytes between a and b"

sleep 0.5
it_kill "$TCPDUMP"
total=$(tcpdump -nn -r "$IT_TMP/c.pcap" 2>/dev/null | wc -l)
flow=$(tcpdump -nn -r "$IT_TMP/c.pcap" 'tcp port 5201' 2>/dev/null | wc -l)
unicast=$(tcpdump -nn -r "$IT_TMP/c.pcap" 'not broadcast and not multicast' 2>/dev/null | wc -l)
it_log "c saw $total frames: $flow of the iperf3 flow, $unicast unicast"
if ((flow > 0 || total > 50 || unicast > 10)); then
    tcpdump -nn -e -r "$IT_TMP/c.pcap" 2>/dev/null | head -n 30 >&2
    it_fail "the a<->b flow leaked to c: $total frames, $flow of tcp port 5201, $unicast unicast"
fi
it_log "ok: c saw only a handful of broadcast/multicast frames"

# The same from switchd's side: the port that learned c's MAC sent few bytes, b's port (which
# sent the flow to b) many.
MAC_B=$(it_mac "$NS_B" "$TAP_B") MAC_C=$(it_mac "$NS_C" "$TAP_C")
it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
port_of() { echo "[p for p in ports('lab') if '$1' in [m.lower() for m in p.get('macs', [])]]"; }
n=$(it_json "len($(port_of "$MAC_B")) + len($(port_of "$MAC_C"))")
[[ "$n" == 2 ]] || { cat "$IT_TMP/ports.json" >&2; it_fail "status: expected one port each with macs $MAC_B and $MAC_C"; }
tx_b=$(it_json "tx($(port_of "$MAC_B")[0], 'bytes')")
tx_c=$(it_json "tx($(port_of "$MAC_C")[0], 'bytes')")
it_log "tx bytes: b's port $tx_b, c's port $tx_c"
if ((tx_c > 100000 || tx_b < 1000000)); then
    cat "$IT_TMP/ports.json" >&2
    it_fail "status tx counters do not show learning: b's port sent $tx_b bytes, c's $tx_c"
fi
it_log "ok: status shows c's port sent $tx_c bytes while b's sent $tx_b"
it_pass
