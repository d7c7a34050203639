#!/usr/bin/env bash
# DHCP fairness and a DHCP storm (issue 10, items 2 and 5), with three `tap` ports in three
# namespaces on one isolated network whose pool is 50 addresses and `dhcpLeasesPerPort: 4`
# (the hostile port C has port security's MAC guard off, so that its fresh MACs reach DHCP):
#  1. starvation: namespace C DISCOVERs (then REQUESTs) from 60 fresh MACs through one port
#     (scapy, dhcp_flood.py): it gets at most 4 offers and 4 ACKs, `drops.dhcpCapped` in
#     `status --json` counts the refusals, and busybox udhcpc in namespace B still gets a lease;
#  2. a storm does not stall forwarding: iperf3 from A to B for 5 s without a storm, then again
#     while C sends DISCOVER/REQUEST/RELEASE from fresh MACs at 20 000 frames a second (scapy's pace)
#     (every ACK and RELEASE changes the lease file; the port's rate limit, `drops.dhcpRateLimited`,
#     lets about 50 a second through). The storm run must keep more than 10 % of the quiet run's
#     rate (both printed); switchd must still answer and B's lease is on disk after a SIGTERM
#     (the housekeeping thread's last write).
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd busybox iperf3
it_require_switchd
"$PY" -c 'import scapy.all' 2>/dev/null || it_skip "$PY has no scapy"

NS_A=$(it_name a) NS_B=$(it_name b) NS_C=$(it_name c)
TAP_A=$(it_name ta) TAP_B=$(it_name tb) TAP_C=$(it_name tc)
GW=10.77.0.1 RANGE_LO=10.77.0.100 RANGE_HI=10.77.0.149 CAP=4 FRESH=60 STORM_SECONDS=10
# About what scapy's own sendp() manages; 400 times what the port's rate limit lets through. An
# unpaced raw-socket flood (several 100 000 broadcast frames a second) measures the forwarding
# thread's CPU against any broadcast flood instead, whatever the protocol (see the report).
STORM_RATE=${STORM_RATE:-20000}
for ns in "$NS_A" "$NS_B" "$NS_C"; do
    it_netns "$ns"
    it_netns_resolv "$ns"
done

cat >"$IT_TMP/switchd.yaml" <<YAML
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    dhcpRange: $RANGE_LO-$RANGE_HI
    dhcpLeasesPerPort: $CAP
    ipv6: false
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
      # The MAC guard (macLimit) would stop most fresh MACs before DHCP sees them; this test is
      # about DHCP's own defences, which also hold where that guard is off (link ports).
      - {tap: $TAP_C, netns: $NS_C, portSecurity: {mac: false}}
YAML
# info, not debug: the storm would otherwise write a log line per frame.
IT_LOG_LEVEL=info it_start_switchd "$IT_TMP/switchd.yaml"
for t in "$NS_A $TAP_A" "$NS_B $TAP_B" "$NS_C $TAP_C"; do
    set -- $t
    it_wait_link "$1" "$2"
    it_wait_until 5 "switchd brings $2 up in $1" it_link_is_up "$1" "$2"
done
it_addr "$NS_A" "$TAP_A" 10.77.0.10/24

capped() { it_json "net('lab').get('drops', {}).get('dhcpCapped', 0)"; }
rate_limited() { it_json "net('lab').get('drops', {}).get('dhcpRateLimited', 0)"; }

# --- 1. starvation through one port ---------------------------------------------------------

timeout -k 5 60 ip netns exec "$NS_C" "$PY" "$IT_DIR/dhcp_flood.py" starve "$TAP_C" "$FRESH" "$RANGE_LO" "$RANGE_HI" \
    "$IT_TMP/starve.json" >"$IT_TMP/starve.log" 2>&1 || { cat "$IT_TMP/starve.log" >&2; it_fail "dhcp_flood.py starve failed"; }
read -r offers acks naks < <("$PY" -c 'import json, sys
r = json.load(open(sys.argv[1])); print(r["offers"], r["acks"], r["naks"])' "$IT_TMP/starve.json")
it_log "starvation attempt from $FRESH fresh MACs: $offers offers, $acks ACKs, $naks NAKs"
((offers >= 1 && offers <= CAP)) || it_fail "the hostile port got $offers offers (cap $CAP)"
((acks >= 1 && acks <= CAP)) || it_fail "the hostile port got $acks ACKs (cap $CAP)"
((naks == 0)) || it_fail "a capped REQUEST was NAKed ($naks), not left unanswered"
n=$(capped)
# Every DISCOVER and REQUEST past the cap is refused: 2 × (FRESH - CAP) when the four got in.
((n >= 2 * (FRESH - CAP))) || it_fail "drops.dhcpCapped is $n, expected at least $((2 * (FRESH - CAP)))"
it_log "ok: drops.dhcpCapped = $n"
grep -q 'dhcpLeasesPerPort' "$SWITCHD_LOG" || it_fail "no log line about the capped port"
lines=$(grep -c 'dhcpLeasesPerPort' "$SWITCHD_LOG")
((lines <= 3)) || it_fail "$lines log lines about the capped port: not rate-limited"
it_log "ok: $lines rate-limited log line(s) about the cap"

if ! UDHCPC_OUT=$IT_TMP/beta timeout -k 5 30 ip netns exec "$NS_B" busybox udhcpc -i "$TAP_B" -x hostname:beta \
    -q -n -t 5 -T 1 -s "$IT_DIR/udhcpc_script.sh" >"$IT_TMP/beta.log" 2>&1 || [[ ! -s "$IT_TMP/beta.bound" ]]; then
    cat "$IT_TMP/beta.log" >&2
    it_fail "udhcpc in $NS_B got no lease after the starvation attempt"
fi
B_IP=$(sed -n 's/^ip=//p' "$IT_TMP/beta.bound")
it_log "ok: a new client still gets a lease: $B_IP"
it_ping "$NS_A" "$B_IP" 2

# --- 2. a DHCP storm does not stall forwarding ------------------------------------------------

it_iperf_server "$NS_B" 5201
it_iperf_client "$NS_A" "$B_IP" 5 "$IT_TMP/quiet.json" || it_fail "iperf3 without a storm failed"
quiet=$(it_iperf_gbps "$IT_TMP/quiet.json")
it_log "iperf3 A -> B without a storm: $quiet Gbit/s"

before=$(capped)
it_bg "$IT_TMP/storm.log" ip netns exec "$NS_C" "$PY" "$IT_DIR/dhcp_flood.py" storm "$TAP_C" "$STORM_SECONDS" "$RANGE_LO" "$RANGE_HI" "$STORM_RATE"
STORM_PID=$IT_LAST_PID
it_wait_until 60 "the storm to start sending" grep -q '^sending' "$IT_TMP/storm.log"
sleep 1
it_iperf_server "$NS_B" 5202
it_iperf_client "$NS_A" "$B_IP" 5 "$IT_TMP/storm.json" -p 5202 || it_fail "iperf3 during the storm failed"
storm=$(it_iperf_gbps "$IT_TMP/storm.json")
it_log "iperf3 A -> B during the DHCP storm: $storm Gbit/s (quiet: $quiet Gbit/s)"
for ((i = 0; i < (STORM_SECONDS + 20) * 10; i++)); do
    _it_alive "$STORM_PID" || break
    sleep 0.1
done
_it_alive "$STORM_PID" && it_fail "the storm did not end"
wait "$STORM_PID" 2>/dev/null || true
sent=$(tail -n 1 "$IT_TMP/storm.log")
[[ "$sent" =~ ^[0-9]+$ ]] || { cat "$IT_TMP/storm.log" >&2; it_fail "the storm did not run"; }
after=$(capped) limited=$(rate_limited)
it_log "storm: $sent frames sent in ${STORM_SECONDS}s; drops.dhcpCapped $before -> $after, drops.dhcpRateLimited $limited"
((sent > 1000)) || it_fail "the storm sent only $sent frames"
((limited > 0)) || it_fail "the storm was not rate-limited at all"
leased=$(grep -c 'leases 10\.77' "$SWITCHD_LOG" || true)
it_log "lease changes logged so far: $leased (each ACK of a new client is a save)"
"$PY" -c 'import sys; q, s = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if s > 0.1 * q else 1)' "$quiet" "$storm" ||
    it_fail "forwarding stalled during the storm: $storm Gbit/s against $quiet Gbit/s without"
it_log "ok: forwarding kept $(awk -v q="$quiet" -v s="$storm" 'BEGIN{printf "%.0f", 100*s/q}')% of its rate during the storm"
it_ping "$NS_A" "$B_IP" 2

# The lease file is the housekeeping thread's: written during the storm, and once more at SIGTERM.
[[ -s "$STATE_DIR/lab/leases" ]] || it_fail "no lease file at $STATE_DIR/lab/leases"
it_stop_switchd 10
grep -q " $B_IP " "$STATE_DIR/lab/leases" || { cat "$STATE_DIR/lab/leases" >&2; it_fail "B's lease $B_IP is not in the lease file"; }
[[ ! -e "$STATE_DIR/lab/leases.tmp" ]] || it_fail "a leases.tmp was left behind"
it_log "ok: the lease file holds $B_IP after SIGTERM ($(grep -c . "$STATE_DIR/lab/leases") lines)"
it_pass
