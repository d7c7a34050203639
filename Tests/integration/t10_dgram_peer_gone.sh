#!/usr/bin/env bash
# A path-bound dgram peer whose socket goes away is removed by switchd's periodic probe: a
# peer joins with a broadcast and is listed in `status`; it closes its socket and unlinks its
# path while nothing is sent to it (IPv6 off everywhere, so no multicast chatter triggers a
# failed send); within 10 s its port is gone from `status`, its MAC is forgotten (frames to it
# are flooded again), and the remaining ports (two taps, one live dgram peer) keep forwarding.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd ping
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b)
TAP_A=$(it_name ta) TAP_B=$(it_name tb)
GONE_MAC=02:00:5e:77:10:01 GONE_IP=10.77.0.101
LIVE_MAC=02:00:5e:77:10:02 LIVE_IP=10.77.0.102
for ns in "$NS_A" "$NS_B"; do
    it_netns "$ns"
    # No IPv6 on the TAPs that arrive here: no router solicitations or MLD reports to flood.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1 ||
        true
done

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    ipv6: false
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/lab/dgram.sock"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.111/24
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.112/24
it_ping "$NS_A" 10.77.0.112 2
it_ping "$NS_B" 10.77.0.111 1

port_at() { echo "[p for p in kind('lab', 'dgram') if p.get('peer') == '$IT_TMP/$1.sock']"; }

it_bg "$IT_TMP/live.log" "$PY" "$IT_DIR/dgram_peer.py" "$IT_TMP/live.sock" "$RUN_DIR/lab/dgram.sock" "$LIVE_MAC" "$LIVE_IP"
it_bg "$IT_TMP/gone.log" "$PY" "$IT_DIR/dgram_peer.py" "$IT_TMP/gone.sock" "$RUN_DIR/lab/dgram.sock" "$GONE_MAC" "$GONE_IP"
GONE=$IT_LAST_PID
it_wait_until 10 "both dgram peers announced themselves" \
    sh -c "grep -q ready '$IT_TMP/live.log' && grep -q ready '$IT_TMP/gone.log'"
it_wait_until 10 "status lists the peer at gone.sock with $GONE_MAC" \
    it_json_is "[m.lower() for p in $(port_at gone) for m in p.get('macs', [])]" "[\"$GONE_MAC\"]"
it_wait_until 10 "status lists the peer at live.sock" it_json_is "len($(port_at live))" 1
it_log "ok: both dgram peers are ports ($(it_json "[p['id'] for p in kind('lab', 'dgram')]"))"

# The peer vanishes: socket closed, path unlinked; nothing is addressed to it from now on.
seen0=$(grep -c '^frame' "$IT_TMP/live.log" || true)
kill -USR1 "$GONE"
it_wait_until 5 "the peer closed its socket and unlinked its path" grep -q gone "$IT_TMP/gone.log"
[[ ! -e "$IT_TMP/gone.sock" ]] || it_fail "gone.sock still exists"
t0=$(date +%s.%N)
it_wait_until 10 "the vanished peer's port is removed from status (probe)" it_json_is "len($(port_at gone))" 0
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
it_log "ok: port removed ${took}s after its socket went away"
# Anything flooded meanwhile would also have gone to the vanished port (a failed send removes
# it too): then this run did not show the probe at work.
seen1=$(grep -c '^frame' "$IT_TMP/live.log" || true)
if ((seen1 == seen0)); then
    it_log "ok: nothing was flooded meanwhile, so the probe removed it"
else
    it_log "warning: $((seen1 - seen0)) frames were flooded meanwhile; a failed send may have removed the port"
fi
it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
n=$(it_json "len($(port_at live)) + len(kind('lab', 'tap'))")
[[ "$n" == 3 ]] || { cat "$IT_TMP/ports.json" >&2; it_fail "the other ports did not survive: $n of 3 (live dgram peer, 2 taps) left"; }
macs=$(it_json "[m.lower() for p in ports('lab') for m in p.get('macs', [])]")
[[ "$macs" != *"$GONE_MAC"* ]] || it_fail "status still lists $GONE_MAC on a port: $macs"

# The rest keeps forwarding: tap <-> tap, and frames reach the live dgram peer.
it_ping "$NS_A" 10.77.0.112 3
it_ping "$NS_B" 10.77.0.111 3
# Frames to the forgotten MAC are unknown unicast again: flooded, so the live peer sees them.
ip -n "$NS_A" neigh replace "$GONE_IP" lladdr "$GONE_MAC" dev "$TAP_A" nud permanent
ip netns exec "$NS_A" ping -n -q -c 3 -i 0.2 -W 1 "$GONE_IP" >/dev/null 2>&1 || true
mac_a=$(it_mac "$NS_A" "$TAP_A")
it_wait_until 5 "the live dgram peer gets frames for the forgotten $GONE_MAC (flooded)" \
    grep -q "^frame $GONE_MAC $mac_a " "$IT_TMP/live.log"
it_log "ok: the live dgram peer still receives; $GONE_MAC is flooded again"
_it_alive "$SWITCHD_PID" || it_fail "switchd died"
it_pass
