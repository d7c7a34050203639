#!/usr/bin/env bash
# `shared` mode (docs/DESIGN.md §1): switchd runs in a "host" namespace that reaches an "outside" one
# over a veth; two guests sit on `tap` ports. Checked: the uplink sw-lab holds the gateway's
# IPv4 and ULA addresses; the nftables table inet switchd-lab exists and IPv4/IPv6 forwarding
# went on; each guest gets a DHCP lease with the gateway as router; a guest pings the gateway and
# the host's other address; it fetches from an HTTP server in the outside namespace over IPv4 and
# (after SLAAC from our RA, default route included) over IPv6, and the server sees the host's
# addresses (NAT44 and NAT66); the two guests reach each other directly (TTL 64: no router in
# between); `dig` and `dig +tcp` to the gateway (IPv4 and IPv6) resolve a name that only the
# outside namespace's dnsmasq knows.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox dig dnsmasq
it_require_switchd

it_host_world
G1=$(it_name g1) G2=$(it_name g2) T1=$(it_name t1) T2=$(it_name t2)
it_netns "$G1"
it_netns "$G2"
SUBNET=10.202.0.0/24 GW=10.202.0.1

it_bg "$IT_TMP/dnsmasq.log" ip netns exec "$OUT" dnsmasq --conf-file=/dev/null --no-daemon --log-queries \
    --listen-address "$OUT_IP" --bind-interfaces --no-resolv --no-hosts --address=/outside.example/192.0.2.55
it_wait_until 10 "dnsmasq in $OUT" sh -c "ip netns exec $HOST dig +short +time=1 +tries=1 @$OUT_IP outside.example | grep -qx 192.0.2.55"
it_whoami_server "$OUT" :: 8080

fwd4=$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)
fwd6=$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)
[[ "$fwd4$fwd6" == 00 ]] || it_fail "a fresh namespace should forward nothing (ip_forward=$fwd4, ipv6 forwarding=$fwd6)"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: shared
    subnet: $SUBNET
    upstreamDNS: [$OUT_IP]
    ports:
      - {tap: $T1, netns: $G1}
      - {tap: $T2, netns: $G2}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"

# The uplink and the host-side state.
out=$(it_has_addr "$HOST" sw-lab "$GW/24") || it_fail "sw-lab lacks $GW/24: $out"
PREFIX=$(it_json "net('lab')['ipv6Prefix']")
GW6=${PREFIX%/64}1
out=$(it_has_addr "$HOST" sw-lab "$GW6/64") || it_fail "sw-lab lacks $GW6/64: $out"
[[ $(it_json "net('lab')['uplink']") == sw-lab ]] || it_fail "status does not name the uplink"
it_nft_table_exists "$HOST" switchd-lab || it_fail "no nftables table inet switchd-lab in $HOST"
[[ $(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward) == 1 ]] || it_fail "IPv4 forwarding is off"
[[ $(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding) == 1 ]] || it_fail "IPv6 forwarding is off"
it_log "ok: uplink sw-lab $GW/24 $GW6/64, table inet switchd-lab, forwarding on"

it_wait_link "$G1" "$T1"
it_wait_link "$G2" "$T2"
it_udhcpc "$G1" "$T1" alpha
IP1=$LEASE_IP
[[ "$LEASE_ROUTER" == "$GW" ]] || it_fail "router handed out is '$LEASE_ROUTER', expected $GW"
it_udhcpc "$G2" "$T2" beta
IP2=$LEASE_IP
it_log "ok: leases $IP1 and $IP2, router $GW"

it_ping "$G1" "$GW" 3
it_ping "$G1" "$HOST_IP" 3
it_log "ok: $G1 pings the gateway $GW and the host's $HOST_IP"

seen=$(it_whoami "$G1" "http://$OUT_IP:8080/") || it_fail "no HTTP answer from $OUT_IP over IPv4"
[[ "$seen" == "$HOST_IP" ]] || it_fail "the outside server saw $seen, expected the host's $HOST_IP (NAT44)"
it_log "ok: IPv4 to the outside, seen as $seen (NAT44)"

ttl=$(ip netns exec "$G1" ping -c 1 -W 2 "$IP2" | sed -n 's/.*ttl=\([0-9]*\).*/\1/p')
[[ "$ttl" == 64 ]] || it_fail "guest to guest: ttl '$ttl', expected 64 (direct, not routed)"
it_log "ok: $IP1 -> $IP2 directly (ttl 64)"

# IPv6: SLAAC from switchd's RA (router lifetime > 0 in shared mode gives a default route).
it_wait_until 15 "a SLAAC address in $PREFIX on $T1" \
    sh -c "ip -n $G1 -6 -o addr show dev $T1 scope global | grep -v tentative | grep -q 'inet6 ${PREFIX%::/64}'"
it_wait_until 10 "an IPv6 default route in $G1" sh -c "ip -n $G1 -6 route show default | grep -q via"
seen=$(it_whoami "$G1" "http://[$OUT_IP6]:8080/") || it_fail "no HTTP answer from $OUT_IP6 over IPv6"
[[ "$seen" == "$HOST_IP6" ]] || it_fail "the outside server saw $seen, expected the host's $HOST_IP6 (NAT66)"
it_log "ok: IPv6 to the outside, seen as $seen (NAT66)"

for server in "$GW" "$GW6"; do
    for transport in +notcp +tcp; do
        got=$(ip netns exec "$G1" dig $transport +time=3 +tries=1 +short @"$server" outside.example A 2>&1)
        [[ "$got" == 192.0.2.55 ]] || it_fail "dig $transport @$server outside.example: '$got'"
        it_log "ok: dig $transport @$server outside.example -> $got"
    done
done
got=$(ip netns exec "$G1" dig +tcp +time=3 +tries=1 +short @"$GW" "beta.lab.internal" A 2>&1)
[[ "$got" == "$IP2" ]] || it_fail "dig +tcp beta.lab.internal: '$got', expected $IP2"
it_log "ok: dig +tcp beta.lab.internal -> $got (local name over TCP)"
it_pass
