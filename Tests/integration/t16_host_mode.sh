#!/usr/bin/env bash
# `host` mode (docs/DESIGN.md §1, §4): switchd runs in a "host" namespace that reaches an "outside" one
# over a veth; one guest sits on a `tap` port of network `lab` (10.203.0.0/24). Checked: the
# uplink sw-lab holds the gateway's IPv4 address and table inet switchd-lab exists; the guest
# gets a DHCP lease whose router is the gateway (as vmnet does); it pings the gateway (the
# host's uplink address, answered by the host's own stack) and fetches from an HTTP server
# listening on that address in the host namespace, which sees the guest's own address (no
# NAT); it cannot reach the outside namespace: an HTTP fetch over IPv4 fails fast (< 2 s, a
# reset, not a timeout) and ping fails, while the host namespace itself fetches from the same
# server; IPv4 and IPv6 forwarding in the host namespace stay 0. IPv6: the guest gets a SLAAC
# address in the network's prefix (and pings the gateway's ULA address) but no IPv6 default
# route (router lifetime 0), so an IPv6 fetch from the outside fails at once too.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox
it_require_switchd

it_host_world
G=$(it_name g) T=$(it_name t)
it_netns "$G"
SUBNET=10.203.0.0/24 GW=10.203.0.1

it_whoami_server "$OUT" :: 8080

fwd4=$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)
fwd6=$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)
[[ "$fwd4$fwd6" == 00 ]] || it_fail "a fresh namespace should forward nothing (ip_forward=$fwd4, ipv6 forwarding=$fwd6)"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: host
    subnet: $SUBNET
    ports:
      - {tap: $T, netns: $G}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"

out=$(it_has_addr "$HOST" sw-lab "$GW/24") || it_fail "sw-lab lacks $GW/24: $out"
[[ $(it_json "net('lab')['mode']") == host ]] || it_fail "status mode is '$(it_json "net('lab')['mode']")', expected host"
[[ $(it_json "net('lab')['uplink']") == sw-lab ]] || it_fail "status does not name the uplink sw-lab"
it_nft_table_exists "$HOST" switchd-lab || it_fail "no nftables table inet switchd-lab in $HOST"
it_log "ok: uplink sw-lab $GW/24, table inet switchd-lab"

# The server on the gateway address can only bind once switchd has put the address on sw-lab.
it_whoami_server "$HOST" "$GW" 8080

it_wait_link "$G" "$T"
it_udhcpc "$G" "$T" guest
IP=$LEASE_IP
[[ "$LEASE_ROUTER" == "$GW" ]] || it_fail "router handed out is '$LEASE_ROUTER', expected $GW (as vmnet)"
it_log "ok: lease $IP, router $GW"

it_ping "$G" "$GW" 3

seen=$(it_whoami "$G" "http://$GW:8080/") || it_fail "no HTTP answer from the host's server on $GW:8080"
[[ "$seen" == "$IP" ]] || it_fail "the host's server saw $seen, expected the guest's own $IP (no NAT in host mode)"
it_log "ok: HTTP to the host on $GW, seen as $seen (no NAT)"

# Beyond the host: must fail, and fast (the table rejects; without it the SYN would be dropped
# silently and the client would wait for its timeout).
t0=$(date +%s%N)
if out=$(it_whoami "$G" "http://$OUT_IP:8080/" 5 2>&1); then
    it_fail "the guest reached the outside server at $OUT_IP (answer '$out'); host mode must not forward"
fi
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || it_fail "the fetch from $OUT_IP failed only after ${ms} ms (a timeout, not a reset): $(tail -n 1 <<<"$out")"
it_log "ok: HTTP to the outside $OUT_IP fails fast (${ms} ms: $(tail -n 1 <<<"$out"))"

if out=$(ip netns exec "$G" ping -n -c 2 -i 0.2 -W 1 "$OUT_IP" 2>&1); then
    it_fail "the guest pings the outside $OUT_IP: $out"
fi
it_log "ok: ping to the outside $OUT_IP fails ($(grep -m1 -E 'transmitted|unreachable|prohibited' <<<"$out" || true))"

seen=$(it_whoami "$HOST" "http://$OUT_IP:8080/") || it_fail "the host namespace cannot fetch from $OUT_IP"
[[ "$seen" == "$HOST_IP" ]] || it_fail "the outside server saw $seen from the host, expected $HOST_IP"
it_log "ok: the host itself fetches from the outside (seen as $seen)"

fwd4=$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)
fwd6=$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)
[[ "$fwd4" == 0 ]] || it_fail "host mode turned IPv4 forwarding on (ip_forward=$fwd4)"
[[ "$fwd6" == 0 ]] || it_fail "host mode turned IPv6 forwarding on (all.forwarding=$fwd6)"
it_log "ok: forwarding sysctls untouched (ip_forward=0, ipv6 forwarding=0)"

# IPv6: SLAAC address from the RA, but router lifetime 0, so no default route. Both come from
# the same RA, so once the address is there the route would be too if the lifetime were not 0.
PREFIX=$(it_json "net('lab')['ipv6Prefix']")
GW6=${PREFIX%/64}1
out=$(it_has_addr "$HOST" sw-lab "$GW6/64") || it_fail "sw-lab lacks $GW6/64: $out"
it_wait_until 15 "a SLAAC address in $PREFIX on $T" \
    sh -c "ip -n $G -6 -o addr show dev $T scope global | grep -v tentative | grep -q 'inet6 ${PREFIX%::/64}:'"
it_log "ok: SLAAC address $(ip -n "$G" -6 -o addr show dev "$T" scope global | awk '{print $4}' | head -n 1)"
sleep 1 # a second RA (answering the solicitation) could not change the verdict, but give it the chance
routes=$(ip -n "$G" -6 route show default)
[[ -z "$routes" ]] || it_fail "the guest has an IPv6 default route in host mode (RA lifetime must be 0): $routes"
it_log "ok: no IPv6 default route (router lifetime 0)"
it_ping "$G" "$GW6" 3

t0=$(date +%s%N)
if out=$(it_whoami "$G" "http://[$OUT_IP6]:8080/" 5 2>&1); then
    it_fail "the guest reached the outside server at $OUT_IP6 over IPv6 (answer '$out')"
fi
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || it_fail "the IPv6 fetch from $OUT_IP6 failed only after ${ms} ms"
it_log "ok: HTTP to the outside $OUT_IP6 fails fast (${ms} ms)"
it_pass
