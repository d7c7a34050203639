#!/usr/bin/env bash
# A dgram peer that stops reading must cost only itself: a bound unix datagram socket
# announces a MAC to switchd and never reads again; a namespace floods frames at that MAC
# (static neighbour entry) and broadcasts while two tap namespaces run iperf3. The iperf3 run
# completes, and `status` shows the stalled port's drops rising, not the others'.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping
it_require_switchd

STALL_MAC=02:00:5e:77:00:99
STALL_IP=10.77.0.99
it_two_tap_lab 41 42  # queueFrames: the default, 256

it_bg "$IT_TMP/stalled.log" "$PY" "$IT_DIR/stalled_peer.py" "$IT_TMP/stalled.sock" \
    "$RUN_DIR/lab/dgram.sock" "$STALL_MAC" "$STALL_IP"
STALLED=$IT_LAST_PID
it_wait_until 10 "stalled peer announced itself" grep -q ready "$IT_TMP/stalled.log"
it_wait_until 10 "a dgram port that learned $STALL_MAC" \
    it_json_is "len([p for p in kind('lab', 'dgram') if '$STALL_MAC' in [m.lower() for m in p.get('macs', [])]])" 1

# Frames for the stalled peer: unicast UDP to its MAC from a (which knows it statically),
# and broadcast pings from b, both while iperf3 runs between a and b.
ip -n "$NS_A" neigh replace "$STALL_IP" lladdr "$STALL_MAC" dev "$TAP_A" nud permanent
it_bg "$IT_TMP/blast.log" ip netns exec "$NS_A" "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    try:
        s.sendto(b"x" * 200, (sys.argv[1], 9))
        n += 1
    except OSError:
        time.sleep(0.001)
    if n % 200 == 0:
        time.sleep(0.002)
print("sent", n, flush=True)
' "$STALL_IP" 6
BLAST=$IT_LAST_PID
ip netns exec "$NS_B" sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0
it_bg "$IT_TMP/bping.log" ip netns exec "$NS_B" ping -n -b -i 0.01 -c 500 10.77.0.255

it_iperf_server "$NS_B"
it_check "iperf3 TCP 5 s $NS_A -> $NS_B completes next to a stalled peer" \
    it_iperf_client "$NS_A" 10.77.0.42 5 "$IT_TMP/iperf.json"
bytes=$(it_iperf_received "$IT_TMP/iperf.json")
((bytes > 0)) || it_fail "iperf3 received no bytes"
it_log "iperf3: $bytes bytes, $(it_iperf_gbps "$IT_TMP/iperf.json") Gbit/s"

it_wait_until 10 "the UDP blaster finishes" grep -q sent "$IT_TMP/blast.log"
it_log "blaster: $(cat "$IT_TMP/blast.log")"
_it_alive "$STALLED" || it_fail "the stalled peer process died"

it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
stalled_port="[p for p in kind('lab', 'dgram') if '$STALL_MAC' in [m.lower() for m in p.get('macs', [])]]"
d1=$(it_json "sum(drops(p) for p in $stalled_port)")
it_log "stalled port drops: $d1 ($(it_json "[p.get('drops') for p in $stalled_port]"))"
((d1 > 0)) || { cat "$IT_TMP/ports.json" >&2; it_fail "the stalled dgram port shows no drops"; }

# Still rising while it stays stalled.
ip netns exec "$NS_A" ping -n -q -c 50 -i 0.01 -W 0.01 "$STALL_IP" >/dev/null 2>&1 || true
d2=$(it_json "sum(drops(p) for p in $stalled_port)")
((d2 > d1)) || { cat "$IT_TMP/ports.json" >&2; it_fail "the stalled port's drops did not rise: $d1 -> $d2"; }
it_log "ok: stalled port drops rose $d1 -> $d2"

# The tap ports lost nothing to queue overflow, and switchd still forwards.
tapdrops=$(it_json "sum(p.get('drops', {}).get('queueFull', 0) for p in kind('lab', 'tap'))")
it_log "tap ports' queueFull drops: $tapdrops"
it_ping "$NS_B" 10.77.0.41 3
it_pass
