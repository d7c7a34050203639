#!/usr/bin/env bash
# Port security: on an isolated network, guest b attacks guests a and c with crafted frames (scapy):
# a MAC hijack, IP spoofing, a rogue DHCP server, a rogue RA, forged ARP and NA. Each attack is
# dropped and counted on b's port by reason, a and c keep talking, and c never configures the
# rogue prefix or learns the forged neighbours. Port d has `portSecurity: false`: the same rogue RA
# and spoofed ping from it do reach c (the control that shows the checks can fail).
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd ping tcpdump
it_require_switchd
"$PY" -c 'import scapy.all' >/dev/null 2>&1 || it_skip "needs scapy for $PY (python3-scapy)"

NS_A=$(it_name a) NS_B=$(it_name b) NS_C=$(it_name c) NS_D=$(it_name d)
TAP_A=$(it_name ta) TAP_B=$(it_name tb) TAP_C=$(it_name tc) TAP_D=$(it_name td)
for ns in "$NS_A" "$NS_B" "$NS_C" "$NS_D"; do it_netns "$ns"; done

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
      - {tap: $TAP_C, netns: $NS_C}
      - {tap: $TAP_D, netns: $NS_D, portSecurity: false}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.31/24
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.32/24
it_tap_ready "$NS_C" "$TAP_C" 10.77.0.33/24
it_tap_ready "$NS_D" "$TAP_D" 10.77.0.34/24

# Static addresses are bound first come, first served: everyone reaches everyone.
it_ping "$NS_A" 10.77.0.33 2
it_ping "$NS_B" 10.77.0.33 1
it_ping "$NS_D" 10.77.0.33 1
it_ping "$NS_C" 10.77.0.31 1
MAC_A=$(it_mac "$NS_A" "$TAP_A") MAC_B=$(it_mac "$NS_B" "$TAP_B") MAC_C=$(it_mac "$NS_C" "$TAP_C")

guards=$(it_json "[p['security'] for p in ports('lab') if p['id'] == '$TAP_B'][0]")
[[ "$guards" == *'"mac"'*'"ip"'*'"neighbor"'*'"dhcpServer"'*'"routerAdvertisement"'* ]] \
    || it_fail "status: $TAP_B should have every guard on, has $guards"
guards=$(it_json "[p['security'] for p in ports('lab') if p['id'] == '$TAP_D'][0]")
[[ "$guards" == "[]" ]] || it_fail "status: $TAP_D has portSecurity: false, shows guards $guards"
it_log "ok: status lists the guards per port ($TAP_D: none)"

# drop_count PORT REASON: one drop counter of a port.
drop_count() { it_json "[p['drops'].get('$2', 0) for p in ports('lab') if p['id'] == '$1'][0]"; }
# attack NS TAP ATTACK ARGS...: run hostile_guest.py in NS on TAP.
attack() {
    local ns=$1 tap=$2
    shift 2
    ip netns exec "$ns" "$PY" "$IT_DIR/hostile_guest.py" "$tap" "$@" >/dev/null \
        || it_fail "hostile_guest.py $* failed in $ns"
}
# at_least PORT REASON MIN: the counter has reached MIN.
at_least() {
    local v
    v=$(it_status 2>/dev/null | "$PY" "$IT_DIR/swjson.py" "[p['drops'].get('$2', 0) for p in ports('lab') if p['id'] == '$1'][0]" 2>/dev/null) \
        && ((v >= $3))
}
# expect_drops PORT REASON MIN: the counter reaches MIN within a few seconds.
expect_drops() {
    it_wait_until 5 "$1 counts $2 >= $3" at_least "$1" "$2" "$3"
    it_log "ok: $1 dropped $(drop_count "$1" "$2") frames as $2"
}

# Watch c from here on.
it_bg "$IT_TMP/tcpdump.log" ip netns exec "$NS_C" tcpdump -i "$TAP_C" -nn -U -e -w "$IT_TMP/c.pcap"
TCPDUMP=$IT_LAST_PID
it_wait_until 10 "tcpdump capturing on $TAP_C" grep -q 'listening on' "$IT_TMP/tcpdump.log"

# 1. MAC hijack: b sends from a's MAC. Refused; a's MAC stays on a's port; c still reaches a.
attack "$NS_B" "$TAP_B" hijack "$MAC_A" "$MAC_C" --count 30
expect_drops "$TAP_B" spoofedMac 30
owner=$(it_sw fdb lab --json | "$PY" -c "import json,sys; print([e['port'] for e in json.load(sys.stdin) if e['mac'] == '$MAC_A'])")
[[ "$owner" == "['$TAP_A']" ]] || it_fail "fdb: a's MAC $MAC_A is on $owner after the hijack attempt, expected ['$TAP_A']"
it_ping "$NS_C" 10.77.0.31 2
it_log "ok: a's MAC stayed on $TAP_A and a is still reachable from c"

# 2. IP spoofing: b pings c from a's address (with b's own MAC).
attack "$NS_B" "$TAP_B" spoof-ip 10.77.0.31 "$MAC_C" 10.77.0.33
expect_drops "$TAP_B" spoofedIp 20

# 3. Rogue DHCP server, 4. rogue RA, 5. forged ARP for the gateway and for a, 6. forged NA for a.
attack "$NS_B" "$TAP_B" rogue-dhcp
expect_drops "$TAP_B" rogueDhcp 20
attack "$NS_B" "$TAP_B" rogue-ra 2001:db8:bad::
expect_drops "$TAP_B" rogueRa 20
attack "$NS_B" "$TAP_B" forge-arp 10.77.0.1 "$MAC_C"
attack "$NS_B" "$TAP_B" forge-arp 10.77.0.31 "$MAC_C"
expect_drops "$TAP_B" spoofedArp 40
A_LL=$(ip -n "$NS_A" -6 -o addr show dev "$TAP_A" scope link | awk '{print $4}' | cut -d/ -f1)
[[ -n "$A_LL" ]] || it_fail "a has no IPv6 link-local address"
attack "$NS_B" "$TAP_B" forge-na "$A_LL" "$MAC_C"
expect_drops "$TAP_B" spoofedNd 20

sleep 1
it_kill "$TCPDUMP"
leaked=$(tcpdump -nn -e -r "$IT_TMP/c.pcap" "ether src $MAC_A and udp port 9 or icmp[4:2] = 0x5151 or udp port 68 or icmp6[0] = 134 or (arp and ether src $MAC_B and (arp[14:4] = 0x0a4d0001 or arp[14:4] = 0x0a4d001f)) or icmp6[0] = 136 and ether src $MAC_B" 2>/dev/null | wc -l)
if ((leaked > 0)); then
    tcpdump -nn -e -r "$IT_TMP/c.pcap" 2>/dev/null | tail -n 30 >&2
    it_fail "c received $leaked of b's crafted frames"
fi
it_log "ok: c received none of b's crafted frames"

if ip -n "$NS_C" -6 addr show dev "$TAP_C" | grep -q '2001:db8:bad:'; then
    it_fail "c configured the rogue prefix 2001:db8:bad::/64"
fi
gw=$(ip -n "$NS_C" neigh show 10.77.0.1 | grep -o "lladdr [0-9a-f:]*" || true)
[[ "$gw" != *"$MAC_B"* ]] || it_fail "c's neighbour entry for the gateway points at b: $gw"
a_entry=$(ip -n "$NS_C" neigh show 10.77.0.31 | grep -o "lladdr [0-9a-f:]*" || true)
[[ "$a_entry" != *"$MAC_B"* ]] || it_fail "c's neighbour entry for a points at b: $a_entry"
it_ping "$NS_C" 10.77.0.31 2
it_ping "$NS_A" 10.77.0.33 2
it_log "ok: no rogue prefix on c, c's neighbours intact, a and c still talk"

grep -q "port $TAP_B: port security refused" "$SWITCHD_LOG" || it_fail "no port-security log line for $TAP_B"
lines=$(grep -c "port $TAP_B: port security refused" "$SWITCHD_LOG")
((lines <= 3)) || it_fail "port-security log lines are not rate-limited: $lines lines in a few seconds"
it_log "ok: $lines rate-limited log line(s) for $TAP_B"

# Control: d has no guards, so its rogue RA and spoofed ping reach c.
it_bg "$IT_TMP/tcpdump2.log" ip netns exec "$NS_C" tcpdump -i "$TAP_C" -nn -U -e -w "$IT_TMP/c2.pcap"
TCPDUMP=$IT_LAST_PID
it_wait_until 10 "tcpdump capturing on $TAP_C" grep -q 'listening on' "$IT_TMP/tcpdump2.log"
attack "$NS_D" "$TAP_D" spoof-ip 10.77.0.31 "$MAC_C" 10.77.0.33 --count 5
attack "$NS_D" "$TAP_D" rogue-ra 2001:db8:d::
it_wait_until 10 "c configures d's prefix (no guard on d)" \
    bash -c "ip -n '$NS_C' -6 addr show dev '$TAP_C' | grep -q '2001:db8:d:'"
sleep 0.5
it_kill "$TCPDUMP"
seen=$(tcpdump -nn -r "$IT_TMP/c2.pcap" "icmp[4:2] = 0x5151" 2>/dev/null | wc -l)
((seen >= 5)) || it_fail "c saw $seen of d's 5 spoofed pings (d has no guards)"
[[ $(drop_count "$TAP_D" spoofedIp) == 0 ]] || it_fail "$TAP_D counted spoofedIp with portSecurity: false"
it_log "ok: without guards d's spoofed pings ($seen) and rogue RA reach c"
it_pass
