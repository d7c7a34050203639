#!/usr/bin/env bash
# A `link` port on a `shared` network: the joined interface lives in switchd's namespace next to
# the uplink, which holds the gateway address. switchd sets the interface's arp_ignore to 8 while
# it is joined (restored on port del), so the host's kernel never answers the guest's ARP for the
# gateway from that interface: the guest's neighbour entry for the gateway is the uplink's MAC,
# and its DNS query to the gateway is answered. (QEMU's `-netdev tap` joins this way; a veth
# stands in for its TAP here.)
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox dig dnsmasq
it_require_switchd

it_host_world
G=$(it_name g) VL=$(it_name vl) VG=$(it_name vg)
it_netns "$G"
ip link add "$VL" type veth peer name "$VG"
it_defer "ip link del $VL"
ip link set "$VL" netns "$HOST"
ip link set "$VG" netns "$G"
ip -n "$G" link set "$VG" up
before=$(ip netns exec "$HOST" cat /proc/sys/net/ipv4/conf/"$VL"/arp_ignore)

it_bg "$IT_TMP/dnsmasq.log" ip netns exec "$OUT" dnsmasq --conf-file=/dev/null --no-daemon \
    --listen-address "$OUT_IP" --bind-interfaces --no-resolv --no-hosts --address=/outside.example/192.0.2.55
cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: shared
    subnet: 10.204.0.0/24
    upstreamDNS: [$OUT_IP]
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
GW=10.204.0.1
UPLINK_MAC=$(it_mac "$HOST" sw-lab)
id=$(it_sw port add lab --link "$VL") || it_fail "port add --link $VL failed"
joined=$(ip netns exec "$HOST" cat /proc/sys/net/ipv4/conf/"$VL"/arp_ignore)
[[ "$joined" == 8 ]] || it_fail "arp_ignore on $VL is $joined while joined, expected 8"
it_log "ok: $VL joined as port $id, arp_ignore $before -> 8"

it_udhcpc "$G" "$VG" gamma
it_ping "$G" "$GW" 3
mac=$(ip -n "$G" neigh show "$GW" | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p')
[[ "$mac" == "$UPLINK_MAC" ]] || it_fail "the guest's neighbour entry for $GW is '$mac', expected the uplink's $UPLINK_MAC"
it_log "ok: $GW is at $mac (the uplink), leased $LEASE_IP"
got=$(ip netns exec "$G" dig +time=3 +tries=1 +short @"$GW" outside.example A 2>&1)
[[ "$got" == 192.0.2.55 ]] || it_fail "dig @$GW outside.example: '$got'"
it_log "ok: DNS through the gateway from the link port"

it_sw port del lab "$id" >/dev/null
it_wait_until 5 "arp_ignore on $VL restored to $before" \
    sh -c "[ \"\$(ip netns exec $HOST cat /proc/sys/net/ipv4/conf/$VL/arp_ignore)\" = $before ]"
it_log "ok: port deleted, arp_ignore back to $before"
it_pass
