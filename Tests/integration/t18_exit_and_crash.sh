#!/usr/bin/env bash
# Clean exit and crash recovery of a `shared` network (docs/DESIGN.md §1, §6; issue 5 "Exit"). switchd runs
# in a "host" namespace (whose forwarding sysctls start at 0) with network `lab` (10.205.0.0/24)
# and one guest on a `tap` port.
# 1. Running: uplink sw-lab, table inet switchd-lab, ip_forward=1 and IPv6 forwarding 1,
#    STATEDIR/sysctls records them; the guest gets a lease and reaches the outside through NAT.
# 2. SIGTERM: exit status 0, no sw-* interface, no inet switchd-* table, both forwarding sysctls
#    back to 0, STATEDIR/sysctls gone.
# 3. Second start, then SIGKILL: the table and ip_forward=1 (and STATEDIR/sysctls) are left behind
#    (this proves the crash case is real), while the uplink TAP dies with the process.
# 4. Third start: the log says `cleaned up after an unclean exit` (table, sysctls, and the socket
#    directory of a network that is no longer configured), and everything works: the
#    guest (its TAP re-created, so it asks again) gets the same address back (leases persist
#    and are stable per client), pings the gateway and fetches from the outside via NAT44.
# 5. Final SIGTERM: forwarding back to 0, no table, no uplink, no STATEDIR/sysctls.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox
it_require_switchd

it_host_world
G=$(it_name g) T=$(it_name t)
it_netns "$G"
GW=10.205.0.1

it_whoami_server "$OUT" :: 8080

fwd() { echo "$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)"; }
[[ $(fwd) == 00 ]] || it_fail "a fresh namespace should forward nothing (ipv4/ipv6 = $(fwd))"
it_log "ok: before: ip_forward=0, ipv6 forwarding=0"

uplinks() { ip -n "$HOST" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^sw-' || true; }
switchd_tables() {
    local t
    t=$(ip netns exec "$HOST" nft list tables) || it_fail "nft list tables failed in $HOST"
    grep 'switchd-' <<<"$t" || true
}

# After a clean exit: nothing of switchd's is left in HOST.
check_clean() {
    local when=$1
    [[ -z "$(uplinks)" ]] || it_fail "$when: uplink(s) left in $HOST: $(uplinks)"
    [[ -z "$(switchd_tables)" ]] || it_fail "$when: table(s) left in $HOST: $(switchd_tables)"
    [[ $(fwd) == 00 ]] || it_fail "$when: forwarding not restored (ipv4/ipv6 = $(fwd), expected 00)"
    [[ ! -e "$STATE_DIR/sysctls" ]] || it_fail "$when: $STATE_DIR/sysctls still there: $(cat "$STATE_DIR/sysctls")"
    it_log "ok: $when: no uplink, no table, forwarding 0/0, no STATEDIR/sysctls"
}

# A running network: the uplink, the table and forwarding on.
check_running() {
    local when=$1
    local out
    out=$(it_has_addr "$HOST" sw-lab "$GW/24") || it_fail "$when: sw-lab lacks $GW/24: $out"
    it_nft_table_exists "$HOST" switchd-lab || it_fail "$when: no table inet switchd-lab"
    [[ $(fwd) == 11 ]] || it_fail "$when: forwarding not on (ipv4/ipv6 = $(fwd))"
    [[ -s "$STATE_DIR/sysctls" ]] || it_fail "$when: no $STATE_DIR/sysctls"
    grep -q 'ip_forward 0' "$STATE_DIR/sysctls" || it_fail "$when: $STATE_DIR/sysctls does not record ip_forward's previous 0: $(cat "$STATE_DIR/sysctls")"
    it_log "ok: $when: sw-lab $GW/24, table inet switchd-lab, forwarding 1/1, sysctls recorded"
}

# The guest gets a lease (its TAP is new after every start) and reaches the gateway and, by NAT, the outside.
check_guest() {
    local when=$1
    it_wait_link "$G" "$T"
    it_udhcpc "$G" "$T" guest
    [[ "$LEASE_ROUTER" == "$GW" ]] || it_fail "$when: router handed out is '$LEASE_ROUTER', expected $GW"
    it_ping "$G" "$GW" 3
    local seen
    seen=$(it_whoami "$G" "http://$OUT_IP:8080/") || it_fail "$when: no HTTP answer from the outside $OUT_IP"
    [[ "$seen" == "$HOST_IP" ]] || it_fail "$when: the outside server saw $seen, expected $HOST_IP (NAT44)"
    it_log "ok: $when: guest $LEASE_IP pings $GW and fetches from $OUT_IP (seen as $seen)"
}

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: shared
    subnet: 10.205.0.0/24
    ports:
      - {tap: $T, netns: $G}
EOF

# 1. First run, 2. clean exit.
it_start_switchd "$IT_TMP/switchd.yaml"
check_running "first run"
check_guest "first run"
IP=$LEASE_IP
it_stop_switchd
check_clean "after SIGTERM"

# 3. Second run, killed.
it_start_switchd "$IT_TMP/switchd.yaml"
check_running "second run"
kill -KILL "$SWITCHD_PID"
rc=0
wait "$SWITCHD_PID" 2>/dev/null || rc=$?
[[ $rc -eq 137 ]] || it_fail "switchd after SIGKILL: exit status $rc, expected 137"
SWITCHD_PID=
it_nft_table_exists "$HOST" switchd-lab || it_fail "after SIGKILL the table is gone: the crash case is not what this test thinks"
[[ $(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward) == 1 ]] || it_fail "after SIGKILL ip_forward is not 1 any more"
[[ -s "$STATE_DIR/sysctls" ]] || it_fail "after SIGKILL $STATE_DIR/sysctls is gone"
it_wait_until 5 "sw-lab to vanish with the process" sh -c "! ip -n $HOST link show sw-lab"
it_log "ok: after SIGKILL: table inet switchd-lab and ip_forward=1 left behind, sw-lab gone"

# 4. Third run: recovery, then everything works.
# A network the crashed run served and the next config no longer has leaves its socket
# directory behind: stand one in (as a crashed run with network `gone` would leave it).
mkdir -p "$RUN_DIR/gone"
"$PY" -c 'import socket, sys
for name in ("dgram.sock", "stream.sock"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1] + "/" + name)' "$RUN_DIR/gone"
# (The log is appended to by every start: only this start's lines count.)
before=$(wc -l <"$SWITCHD_LOG")
it_start_switchd "$IT_TMP/switchd.yaml"
recovered=$(tail -n +"$((before + 1))" "$SWITCHD_LOG" | grep 'cleaned up after an unclean exit' || true)
[[ -n "$recovered" ]] || it_fail "no 'cleaned up after an unclean exit' in the log of the third start"
grep -q 'switchd-lab' <<<"$recovered" || it_fail "the recovery did not mention the table switchd-lab: $recovered"
grep -q 'ip_forward' <<<"$recovered" || it_fail "the recovery did not mention ip_forward: $recovered"
grep -q 'sockets of network gone' <<<"$recovered" || it_fail "the recovery did not mention the leftover sockets of gone: $recovered"
[[ ! -e "$RUN_DIR/gone" ]] || it_fail "the leftover $RUN_DIR/gone is still there: $(ls "$RUN_DIR/gone")"
[[ -S "$RUN_DIR/lab/dgram.sock" ]] || it_fail "lab's own sockets are missing"
it_log "ok: log: $(tr '\n' ';' <<<"$recovered")"
check_running "third run"
tables=$(ip netns exec "$HOST" nft list tables inet | grep -c 'switchd-lab' || true)
[[ "$tables" == 1 ]] || it_fail "third run: $tables tables named switchd-lab"
check_guest "third run"
[[ "$LEASE_IP" == "$IP" ]] || it_fail "the guest got $LEASE_IP after the restarts, expected its earlier $IP (leases persist)"
it_log "ok: the guest kept its address $IP across SIGTERM and SIGKILL"

# 5. Clean exit again.
it_stop_switchd
check_clean "after the final SIGTERM"
it_pass
