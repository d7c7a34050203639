#!/usr/bin/env bash
# Router advertisements and NDP with the kernel's own SLAAC: a namespace with accept_ra=2 and
# autoconf on, on a `tap` port of a network with `ipv6Prefix: fd42:1:2:3::/64` and mtu 1400,
# configures a (non-tentative) global address in that prefix and the IPv6 MTU 1400 from the
# RA, and no default route (router lifetime 0 in isolated mode). `rdisc6` shows the prefix
# (on-link, autonomous), MTU 1400, RDNSS PREFIX::1 and router lifetime 0. The gateway's ULA
# PREFIX::1 and its link-local (the RA's source) answer ping after the neighbour cache was
# flushed, so both are resolved by NDP to the RA's source link-layer address. A second
# network without ipv6Prefix reports a ULA /64 in `status --json` and SLAAC lands in it.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd rdisc6 ping
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b)
TAP_A=$(it_name ta) TAP_B=$(it_name tb)
PREFIX=fd42:1:2:3 MTU=1400
for ns in "$NS_A" "$NS_B"; do
    it_netns "$ns"
    it_netns_resolv "$ns"
    # Interfaces that arrive in the namespace take these defaults.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=2 net.ipv6.conf.all.accept_ra=2 \
        net.ipv6.conf.default.autoconf=1 net.ipv6.conf.default.disable_ipv6=0
done

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: $MTU
    ipv6Prefix: $PREFIX::/64
    ports:
      - {tap: $TAP_A, netns: $NS_A}
  other:
    mode: isolated
    subnet: 10.78.0.0/24
    ports:
      - {tap: $TAP_B, netns: $NS_B}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
got=$(it_json "net('lab').get('ipv6Prefix')")
[[ "$got" == "$PREFIX::/64" ]] || it_fail "status --json: lab's ipv6Prefix is '$got', expected $PREFIX::/64"
OTHER=$(it_json "net('other').get('ipv6Prefix')")
[[ "$OTHER" =~ ^fd[0-9a-f]{2}:[0-9a-f:]+::/64$ ]] || it_fail "status --json: other's ipv6Prefix '$OTHER' is not a ULA /64"
it_log "ok: status --json: lab $PREFIX::/64, other (derived) $OTHER"

# Take the TAP down, raise its MTU to 1500 (so that the RA's MTU option visibly applies), make
# sure it accepts RAs, and up again: the kernel solicits a router as it comes up.
tap_prepare() { # NS TAP
    it_wait_link "$1" "$2"
    it_wait_until 5 "switchd brings $2 up in $1" it_link_is_up "$1" "$2"
    ip -n "$1" link set "$2" down
    ip -n "$1" link set "$2" mtu 1500
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.accept_ra=2" "net.ipv6.conf.$2.autoconf=1"
    ip -n "$1" link set "$2" up
}

# slaac_addr NS TAP PREFIX64: the interface's usable global address in PREFIX64 (the first
# four groups, e.g. fd42:1:2:3), if any.
slaac_addr() {
    ip -n "$1" -6 -o addr show dev "$2" scope global 2>/dev/null |
        grep -v -e tentative -e dadfailed | awk '{print $4}' | grep "^$3:" | head -n 1 | grep .
}

# First four groups of a ::/64 prefix in full (fd42:1:2:3::/64 -> fd42:1:2:3).
p64() { "$PY" -c 'import ipaddress, sys
n = ipaddress.ip_network(sys.argv[1])
print(":".join("%x" % int(g, 16) for g in n.network_address.exploded.split(":")[:4]))' "$1"; }

tap_prepare "$NS_A" "$TAP_A"
tap_prepare "$NS_B" "$TAP_B"
t0=$(date +%s)
it_wait_until 20 "SLAAC address in $PREFIX::/64 on $TAP_A" slaac_addr "$NS_A" "$TAP_A" "$PREFIX"
ADDR=$(slaac_addr "$NS_A" "$TAP_A" "$PREFIX")
it_log "ok: SLAAC configured $ADDR on $TAP_A after $(($(date +%s) - t0))s"
[[ "$ADDR" == */64 ]] || it_fail "SLAAC address $ADDR is not a /64"
OTHER64=$(p64 "$OTHER")
it_wait_until 20 "SLAAC address in $OTHER on $TAP_B" slaac_addr "$NS_B" "$TAP_B" "$OTHER64"
it_log "ok: SLAAC configured $(slaac_addr "$NS_B" "$TAP_B" "$OTHER64") on $TAP_B (derived prefix)"

v6mtu=$(ip netns exec "$NS_A" sysctl -n "net.ipv6.conf.$TAP_A.mtu")
[[ "$v6mtu" == "$MTU" ]] || it_fail "the RA's MTU was not applied: net.ipv6.conf.$TAP_A.mtu = $v6mtu, expected $MTU"
it_log "ok: the kernel took IPv6 MTU $MTU from the RA"
if ip -n "$NS_A" -6 route show default | grep -q .; then
    it_fail "a default route from an RA with router lifetime 0: $(ip -n "$NS_A" -6 route show default)"
fi
ip -n "$NS_A" -6 route show "$PREFIX::/64" | grep -q "dev $TAP_A" ||
    it_fail "no on-link route for $PREFIX::/64: $(ip -n "$NS_A" -6 route show)"
it_log "ok: on-link route for the prefix, no default route"

# rdisc6: a solicited RA, option by option.
if ! timeout -k 2 10 ip netns exec "$NS_A" rdisc6 -1 -n -w 2000 -r 3 "$TAP_A" >"$IT_TMP/rdisc6.out" 2>&1; then
    cat "$IT_TMP/rdisc6.out" >&2
    it_fail "rdisc6 got no router advertisement on $TAP_A"
fi
cat "$IT_TMP/rdisc6.out" >&2
field() { sed -n "s/^ *$1 *: *//p" "$IT_TMP/rdisc6.out" | head -n 1; }
[[ "$(field Prefix)" == "$PREFIX::/64" ]] || it_fail "rdisc6: prefix '$(field Prefix)', expected $PREFIX::/64"
[[ "$(field On-link)" == Yes ]] || it_fail "rdisc6: the prefix is not on-link"
[[ "$(field 'Autonomous address conf\.')" == Yes ]] || it_fail "rdisc6: the prefix is not for SLAAC"
[[ "$(field MTU)" =~ ^$MTU\ bytes ]] || it_fail "rdisc6: MTU '$(field MTU)', expected $MTU"
[[ "$(field 'Recursive DNS server')" == "$PREFIX::1" ]] ||
    it_fail "rdisc6: RDNSS '$(field 'Recursive DNS server')', expected $PREFIX::1"
[[ "$(field 'Router lifetime')" =~ ^0\  ]] || it_fail "rdisc6: router lifetime '$(field 'Router lifetime')', expected 0"
GW_MAC=$(field 'Source link-layer address' | tr 'A-F' 'a-f')
GW_LL=$(sed -n 's/^ *from \(fe80:[0-9a-f:]*\).*/\1/p' "$IT_TMP/rdisc6.out" | head -n 1)
[[ "$GW_MAC" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || it_fail "rdisc6: no source link-layer address"
[[ -n "$GW_LL" ]] || it_fail "rdisc6: the RA's source is not a link-local address"
it_log "ok: rdisc6: prefix $PREFIX::/64, MTU $MTU, RDNSS $PREFIX::1, router lifetime 0, from $GW_LL ($GW_MAC)"

# The gateway's ULA and link-local answer echo requests, each resolved afresh by NDP.
ping_gw() { # ADDR [ADDR%IF]
    local target=$1 dest=${2:-$1} nb
    ip -n "$NS_A" neigh flush dev "$TAP_A"
    it_ping "$NS_A" "$dest" 3
    nb=$(ip -n "$NS_A" -6 neigh show "$target" dev "$TAP_A")
    [[ "$nb" == *"lladdr $GW_MAC "* ]] || it_fail "neighbour entry for $target is '$nb', expected lladdr $GW_MAC"
    it_log "ok: NDP resolved $target to $GW_MAC"
}
ping_gw "$PREFIX::1"
ping_gw "$GW_LL" "$GW_LL%$TAP_A"
it_pass
