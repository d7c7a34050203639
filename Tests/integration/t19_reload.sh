#!/usr/bin/env bash
# Reload by SIGHUP (docs/DESIGN.md §6, issue 5 "Reload"). switchd runs in a "host" namespace with an
# isolated network `alpha` (10.206.0.0/24, two guests on `tap` ports) and a ping between the two
# guests every 0.1 s for the whole test. Then:
# 1. The file gains a `shared` network `beta` (10.207.0.0/24, a tap port for a third guest);
#    SIGHUP: beta shows in status, its uplink sw-beta and table inet switchd-beta exist, IPv4
#    forwarding goes on, and the third guest gets a lease from beta's gateway.
# 2. The file breaks (`mtu: big`); SIGHUP: the log says `not reloaded`, alpha and beta keep running
#    (beta's guest still pings its gateway).
# 3. The file loses beta; SIGHUP: beta leaves status, RUNDIR/beta, sw-beta, table inet switchd-beta
#    and beta's TAP in the third guest's namespace are gone, and since alpha is isolated
#    (no network needs it any more) IPv4 and IPv6 forwarding are back to 0.
# Across all of it, alpha is never restarted: its port ids stay the same and each port's rx
# counter keeps growing (a restart would give new ports with counters from zero), and the ping
# loses nothing. The ping is stopped with SIGINT, so the one echo request in flight at that instant
# may have no reply yet; that one is allowed (it is the last sequence number, after the last
# reload), any other gap in the icmp_seq sequence is a loss. At least 50 requests are sent.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox
it_require_switchd

it_host_world
A=$(it_name a) B=$(it_name b) C=$(it_name c)
TA=$(it_name ta) TB=$(it_name tb) TC=$(it_name tc)
it_netns "$A"
it_netns "$B"
it_netns "$C"
CFG=$IT_TMP/switchd.yaml

fwd() { echo "$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)"; }
[[ $(fwd) == 00 ]] || it_fail "a fresh namespace should forward nothing (ipv4/ipv6 = $(fwd))"

ALPHA="  alpha:
    mode: isolated
    subnet: 10.206.0.0/24
    ports:
      - {tap: $TA, netns: $A}
      - {tap: $TB, netns: $B}"
BETA="  beta:
    mode: shared
    subnet: 10.207.0.0/24
    ports:
      - {tap: $TC, netns: $C}"

# write_config TEXT: replace the config file whole (switchd never sees half a file).
write_config() {
    printf 'networks:\n%s\n' "$1" >"$CFG.new"
    mv "$CFG.new" "$CFG"
}

# reload: SIGHUP, then wait for the log line saying this reload finished (reloading or not reloaded).
reload() {
    local before
    before=$(grep -c 'SIGHUP' "$SWITCHD_LOG" || true)
    kill -HUP "$SWITCHD_PID"
    it_wait_until 10 "switchd to log the SIGHUP" sh -c "[ \$(grep -c 'SIGHUP' '$SWITCHD_LOG') -gt $before ]"
    RELOAD_LOG=$(grep 'SIGHUP' "$SWITCHD_LOG" | tail -n +"$((before + 1))")
}

# alpha_ports: {port id: rx packets} of alpha, as JSON.
alpha_ports() { it_json "{p['id']: rx(p) for p in ports('alpha')}"; }

# check_alpha WHEN: alpha has the same port ids as at the start, each with more rx packets than last time.
check_alpha() {
    local when=$1 now
    now=$(alpha_ports)
    "$PY" -c 'import json, sys
first, last, now = (json.loads(a) for a in sys.argv[1:4])
if sorted(now) != sorted(first):
    sys.exit("port ids changed: %s -> %s" % (sorted(first), sorted(now)))
grew = [i for i in now if now[i] > last[i]]
if len(grew) != len(now):
    sys.exit("rx counters did not all grow (reset or stalled): %s -> %s" % (last, now))' "$ALPHA_FIRST" "$ALPHA_LAST" "$now" ||
        it_fail "$when: alpha was disturbed (see above)"
    it_log "ok: $when: alpha kept its ports, rx growing: $now"
    ALPHA_LAST=$now
}

write_config "$ALPHA"
it_start_switchd "$CFG"
it_tap_ready "$A" "$TA" 10.206.0.11/24
it_tap_ready "$B" "$TB" 10.206.0.12/24
it_ping "$A" 10.206.0.12 2
[[ $(it_json "len(ports('alpha'))") == 2 ]] || it_fail "alpha has $(it_json "len(ports('alpha'))") ports, expected 2"

# The ping that must not lose anything.
PING_OUT=$IT_TMP/ping-alpha.out
it_bg "$PING_OUT" ip netns exec "$A" ping -n -i 0.1 -W 1 10.206.0.12
PING_PID=$IT_LAST_PID
it_wait_until 5 "the continuous ping to get replies" grep -q 'icmp_seq=3 ' "$PING_OUT"
ALPHA_FIRST=$(alpha_ports)
ALPHA_LAST=$ALPHA_FIRST
it_log "ok: ping running (pid $PING_PID); alpha ports: $ALPHA_FIRST"

# 1. Add beta.
write_config "$ALPHA
$BETA"
reload
grep -q 'reloading' <<<"$RELOAD_LOG" || it_fail "SIGHUP with beta added: log says '$RELOAD_LOG'"
it_wait_until 10 "beta in status" it_json_is "'beta' in [n['name'] for n in nets()]" true
it_wait_link "$HOST" sw-beta
it_wait_until 5 "table inet switchd-beta" it_nft_table_exists "$HOST" switchd-beta
[[ $(it_json "net('beta')['mode']") == shared ]] || it_fail "beta's mode: $(it_json "net('beta')['mode']")"
[[ $(it_json "net('beta')['uplink']") == sw-beta ]] || it_fail "beta's uplink: $(it_json "net('beta')['uplink']")"
out=$(it_has_addr "$HOST" sw-beta 10.207.0.1/24) || it_fail "sw-beta lacks 10.207.0.1/24: $out"
[[ $(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward) == 1 ]] || it_fail "beta (shared) did not turn IPv4 forwarding on"
it_log "ok: beta added: in status, sw-beta 10.207.0.1/24, table inet switchd-beta, ip_forward=1"
it_wait_link "$C" "$TC"
it_udhcpc "$C" "$TC" gamma
[[ "$LEASE_ROUTER" == 10.207.0.1 ]] || it_fail "beta's router is '$LEASE_ROUTER', expected 10.207.0.1"
[[ "$LEASE_IP" == 10.207.0.* ]] || it_fail "beta's lease is $LEASE_IP, not in 10.207.0.0/24"
it_log "ok: the third guest got $LEASE_IP from beta"
it_ping "$C" 10.207.0.1 2
check_alpha "after adding beta"

# 2. A broken file changes nothing.
write_config "$(sed 's/^    subnet: 10.206.0.0\/24$/&\n    mtu: big/' <<<"$ALPHA")
$BETA"
grep -q 'mtu: big' "$CFG" || it_fail "test bug: the broken config has no 'mtu: big'"
reload
grep -q 'not reloaded' <<<"$RELOAD_LOG" || it_fail "SIGHUP with a broken file: log says '$RELOAD_LOG'"
it_log "ok: broken file: $(grep 'not reloaded' <<<"$RELOAD_LOG" | head -n 1)"
sleep 0.5 # (nothing should happen; give it the time to do it wrong)
names=$(it_json "[n['name'] for n in nets()]")
[[ "$names" == '["alpha", "beta"]' ]] || it_fail "networks after a broken reload: $names"
ip -n "$HOST" link show sw-beta >/dev/null 2>&1 || it_fail "sw-beta vanished after a broken reload"
it_nft_table_exists "$HOST" switchd-beta || it_fail "table inet switchd-beta vanished after a broken reload"
it_ping "$C" 10.207.0.1 2
check_alpha "after the broken reload"

# 3. Remove beta.
write_config "$ALPHA"
reload
grep -q 'reloading' <<<"$RELOAD_LOG" || it_fail "SIGHUP with beta removed: log says '$RELOAD_LOG'"
it_wait_until 10 "beta gone from status" it_json_is "[n['name'] for n in nets()]" '["alpha"]'
it_wait_until 5 "RUNDIR/beta gone" test ! -e "$RUN_DIR/beta"
it_wait_until 5 "sw-beta gone" sh -c "! ip -n $HOST link show sw-beta"
it_wait_until 5 "table inet switchd-beta gone" sh -c "! ip netns exec $HOST nft list table inet switchd-beta"
it_wait_until 5 "beta's TAP $TC gone from $C" sh -c "! ip -n $C link show $TC"
[[ $(fwd) == 00 ]] || it_fail "forwarding not restored after beta (the only shared network) left: ipv4/ipv6 = $(fwd)"
[[ -d "$RUN_DIR/alpha" ]] || it_fail "RUNDIR/alpha vanished"
it_log "ok: beta removed: not in status, no RUNDIR/beta, no sw-beta, no table, its TAP gone, forwarding 0/0"
check_alpha "after removing beta"

# The ping: at least 50 requests, and nothing lost.
it_wait_until 30 "60 ping replies" sh -c "[ \$(grep -c 'icmp_seq=' '$PING_OUT') -ge 60 ]"
_it_alive "$PING_PID" || it_fail "the continuous ping died: $(tail -n 3 "$PING_OUT")"
kill -INT "$PING_PID"
wait "$PING_PID" || true
summary=$(grep 'packets transmitted' "$PING_OUT") || it_fail "no ping summary: $(tail -n 3 "$PING_OUT")"
"$PY" -c 'import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
sent, got = int(m.group(1)), int(m.group(2))
seqs = [int(s) for s in re.findall(r"icmp_seq=(\d+) ttl=", text)]
if sent < 50:
    sys.exit("only %d echo requests sent" % sent)
if len(seqs) != len(set(seqs)):
    sys.exit("duplicate replies")
missing = sorted(set(range(1, sent + 1)) - set(seqs))
if got != len(seqs):
    sys.exit("summary says %d received, %d replies printed" % (got, len(seqs)))
# Only the request in flight when SIGINT came (the last one) may lack its reply.
if missing not in ([], [sent]):
    sys.exit("%d of %d lost, icmp_seq %s" % (len(missing), sent, missing[:20]))' "$PING_OUT" ||
    it_fail "the ping between alpha's guests lost packets across the reloads: $summary"
it_log "ok: ping across three reloads: $summary"
it_pass
