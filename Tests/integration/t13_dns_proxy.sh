#!/usr/bin/env bash
# The DNS proxy on the gateway, with dig in a namespace on a `tap` port: a dnsmasq on a
# loopback address of the host namespace (switchd's own) is the network's only upstreamDNS,
# with a static record. A busybox udhcpc client (host name gamma) takes a lease. Then, asking
# the gateway: upstream.example A is 192.0.2.77 (and dnsmasq logged the query), gamma.lab.internal
# is gamma's address, the PTR of that address is gamma.lab.internal., gateway.lab.internal is
# the gateway (AAAA: PREFIX::1), an unknown name under lab.internal is NXDOMAIN, and none of
# these local names is forwarded upstream. With dnsmasq killed, a forwarded name gets SERVFAIL
# within a few seconds while the local names still answer, and `dig +tcp` is refused at once
# (RST), not after a timeout.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd dig dnsmasq busybox
it_require_switchd

NS=$(it_name g) TAP=$(it_name tg)
GW=10.77.0.1 DOMAIN=lab.internal
it_netns "$NS"
it_netns_resolv "$NS"

# A loopback address of our own for the upstream (127.0.0.0/8 is all local on lo).
for ((i = 0; i < 20; i++)); do
    UP=127.77.$((($$ + i * 7) / 250 % 250 + 1)).$((($$ + i * 7) % 250 + 2))
    ss -Hlnu "src $UP" | grep -q . || break
done
it_bg "$IT_TMP/dnsmasq.log" dnsmasq --conf-file=/dev/null --no-daemon --log-queries --port 53 \
    --listen-address "$UP" --bind-interfaces --no-resolv --no-hosts \
    --address=/upstream.example/192.0.2.77 --pid-file="$IT_TMP/dnsmasq.pid"
DNSMASQ=$IT_LAST_PID
it_wait_until 10 "dnsmasq answers on $UP" \
    sh -c "dig +short +time=1 +tries=1 @$UP upstream.example A | grep -qx 192.0.2.77"
it_log "ok: upstream dnsmasq on $UP (pid $DNSMASQ)"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    upstreamDNS: [$UP]
    ports:
      - {tap: $TAP, netns: $NS}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_link "$NS" "$TAP"
it_wait_until 5 "switchd brings $TAP up in $NS" it_link_is_up "$NS" "$TAP"

if ! UDHCPC_OUT=$IT_TMP/gamma timeout -k 5 30 ip netns exec "$NS" busybox udhcpc -i "$TAP" -x hostname:gamma \
    -q -n -t 5 -T 1 -s "$IT_DIR/udhcpc_script.sh" >"$IT_TMP/gamma.log" 2>&1 || [[ ! -s "$IT_TMP/gamma.bound" ]]; then
    cat "$IT_TMP/gamma.log" >&2
    it_fail "udhcpc (gamma) got no lease"
fi
IP=$(sed -n 's/^ip=//p' "$IT_TMP/gamma.bound")
DNS=$(sed -n 's/^dns=//p' "$IT_TMP/gamma.bound")
[[ "$IP" =~ ^10\.77\.0\.[0-9]+$ ]] || it_fail "udhcpc reported address '$IP'"
[[ "$DNS" == "$GW" ]] || it_fail "the DNS server handed out is '$DNS', expected $GW"
it_log "ok: gamma leased $IP, DNS server $DNS"

# q ARGS...: dig through the gateway from the namespace; the answer section, one line each.
q() { ip netns exec "$NS" dig +time=3 +tries=1 +short @"$GW" "$@" 2>&1; }
# status ARGS...: the rcode of that query (NOERROR, NXDOMAIN, SERVFAIL, ...).
rcode() {
    ip netns exec "$NS" dig @"$GW" "$@" 2>&1 | sed -n 's/.*->>HEADER<<-.* status: \([A-Z]*\),.*/\1/p'
}
expect_q() { # WANTED ARGS...
    local want=$1 got
    shift
    got=$(q "$@")
    [[ "$got" == "$want" ]] || it_fail "dig @$GW $*: got '$got', expected '$want'"
    it_log "ok: dig @$GW $* -> $want"
}

expect_q 192.0.2.77 upstream.example A
grep -q 'query\[A\] upstream.example' "$IT_TMP/dnsmasq.log" ||
    it_fail "dnsmasq did not see the forwarded query: $(cat "$IT_TMP/dnsmasq.log")"
it_log "ok: the query went to the upstream dnsmasq"
expect_q "$IP" "gamma.$DOMAIN" A
expect_q "$IP" "GAMMA.${DOMAIN^^}" A
expect_q "gamma.$DOMAIN." -x "$IP"
expect_q "$GW" "gateway.$DOMAIN" A
n0=$(grep -c 'query\[' "$IT_TMP/dnsmasq.log" || true)
GW6=$(it_json "net('lab')['ipv6Prefix'].split('/')[0] + '1'")
expect_q "$GW6" "gateway.$DOMAIN" AAAA
rc=$(rcode +time=3 +tries=1 "nosuch.$DOMAIN" A)
[[ "$rc" == NXDOMAIN ]] || it_fail "dig @$GW nosuch.$DOMAIN: status '$rc', expected NXDOMAIN"
it_log "ok: dig @$GW nosuch.$DOMAIN -> NXDOMAIN"
n1=$(grep -c 'query\[' "$IT_TMP/dnsmasq.log" || true)
((n1 == n0)) || it_fail "names under $DOMAIN were forwarded upstream: $(tail -n 4 "$IT_TMP/dnsmasq.log")"

# Upstream down: SERVFAIL for forwarded names, local names still answered.
it_kill "$DNSMASQ"
t0=$(date +%s%N)
rc=$(rcode +time=5 +tries=1 other.example A)
ms=$((($(date +%s%N) - t0) / 1000000))
[[ "$rc" == SERVFAIL ]] || it_fail "with the upstream down, other.example got '$rc' after ${ms} ms, expected SERVFAIL"
((ms < 5000)) || it_fail "SERVFAIL took ${ms} ms"
it_log "ok: upstream down: other.example -> SERVFAIL in ${ms} ms"
expect_q "$IP" "gamma.$DOMAIN" A

# TCP to port 53 of the gateway is reset: dig gives up at once, not after its 5 s timeout.
t0=$(date +%s%N)
out=$(ip netns exec "$NS" dig +tcp +time=5 +tries=1 @"$GW" upstream.example A 2>&1) && tcp_rc=0 || tcp_rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q 'status: NOERROR' <<<"$out" && it_fail "dig +tcp got an answer: $out"
((tcp_rc != 0)) || it_fail "dig +tcp exited 0: $out"
((ms < 2000)) || it_fail "dig +tcp took ${ms} ms to fail (no RST?): $out"
it_log "ok: dig +tcp failed after ${ms} ms (exit $tcp_rc): $(grep -m1 -i 'refused\|error\|timed out' <<<"$out" || echo "$out" | tail -n 1)"
it_pass
