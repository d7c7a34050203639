#!/usr/bin/env bash
# `isolated` mode next to the host/shared machinery, and Lima's networks.yaml (docs/DESIGN.md §1, §4, §5).
# (a) An isolated network `iso` (10.204.0.0/24) run by switchd inside a "host" namespace, two
#     guests on `tap` ports. Checked: no uplink appears (the host namespace holds only lo and its
#     veth once the TAPs moved to the guests), no `inet switchd-*` table, status has no uplink
#     (null or absent), forwarding stays off; the guests get leases, ping each other and the
#     gateway (switchd's virtual responder); DNS on the gateway answers gateway.iso.internal and
#     the other guest's name over UDP, while TCP to port 53 is refused at once (dig +tcp fails
#     in < 2 s: the responder is UDP only and resets TCP). switchd then stops cleanly.
# (b) Tests/integration/lima-networks.yaml (a verbatim copy of the shared example, so that a fresh
#     clone has it) started in a fresh namespace with fresh run and state dirs. Checked: exactly
#     the two networks of its `vmnet:` section, `shared` (mode shared, 192.168.107.0/24) and
#     `host` (mode host, 192.168.108.0/24), not the 192.168.105/106 ones of its socket_vmnet
#     `networks:` section; uplinks sw-shared and sw-host hold 192.168.107.1/24 and 192.168.108.1/24;
#     tables inet switchd-shared and inet switchd-host exist; RUNDIR holds directories for
#     `shared` and `host` only (nothing for user-v2 or bridged); SIGTERM exits 0 and leaves no
#     uplink, no table and forwarding back off.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox dig
it_require_switchd

LIMA_YAML=$IT_DIR/lima-networks.yaml
[[ -f "$LIMA_YAML" ]] || it_fail "missing $LIMA_YAML"

# ---------------------------------------------------------------------------------------
# (a) isolated

it_host_world
VH=$(it_name vh)
G1=$(it_name g1) G2=$(it_name g2) T1=$(it_name t1) T2=$(it_name t2)
it_netns "$G1"
it_netns "$G2"
GW=10.204.0.1

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  iso:
    mode: isolated
    subnet: 10.204.0.0/24
    ports:
      - {tap: $T1, netns: $G1}
      - {tap: $T2, netns: $G2}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_link "$G1" "$T1"
it_wait_link "$G2" "$T2"

links=$(ip -n "$HOST" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
[[ "$links" == "lo $VH " ]] || it_fail "the host namespace has interfaces besides lo and $VH: $links"
it_log "ok: no uplink in $HOST (links: $links)"
tables=$(ip netns exec "$HOST" nft list tables 2>&1)
if grep -q 'switchd-' <<<"$tables"; then it_fail "an isolated network created an nftables table: $tables"; fi
it_log "ok: no switchd table in $HOST"
[[ $(it_json "net('iso').get('uplink') is None") == true ]] || it_fail "status names an uplink: $(it_json "net('iso').get('uplink')")"
[[ $(it_json "net('iso')['mode']") == isolated ]] || it_fail "status mode is not isolated"
it_log "ok: status: mode isolated, no uplink"
fwd=$(ip netns exec "$HOST" sysctl -n net.ipv4.ip_forward)$(ip netns exec "$HOST" sysctl -n net.ipv6.conf.all.forwarding)
[[ "$fwd" == 00 ]] || it_fail "forwarding sysctls changed by an isolated network: ipv4/ipv6 = $fwd"

it_udhcpc "$G1" "$T1" one
IP1=$LEASE_IP
[[ "$LEASE_ROUTER" == "$GW" ]] || it_fail "router handed out is '$LEASE_ROUTER', expected $GW"
it_udhcpc "$G2" "$T2" two
IP2=$LEASE_IP
it_log "ok: leases $IP1 and $IP2"

it_ping "$G1" "$IP2" 3
it_ping "$G2" "$IP1" 3
it_ping "$G1" "$GW" 3
it_ping "$G2" "$GW" 3

got=$(ip netns exec "$G1" dig +notcp +time=2 +tries=1 +short @"$GW" gateway.iso.internal A 2>&1)
[[ "$got" == "$GW" ]] || it_fail "dig @$GW gateway.iso.internal: '$got', expected $GW"
it_log "ok: dig (UDP) gateway.iso.internal -> $got"
got=$(ip netns exec "$G1" dig +notcp +time=2 +tries=1 +short @"$GW" two.iso.internal A 2>&1)
[[ "$got" == "$IP2" ]] || it_fail "dig @$GW two.iso.internal: '$got', expected $IP2"
it_log "ok: dig (UDP) two.iso.internal -> $got"

t0=$(date +%s%N)
rc=0
got=$(ip netns exec "$G1" dig +tcp +time=5 +tries=1 +short @"$GW" gateway.iso.internal A 2>&1) || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [[ $rc -eq 0 ]] && grep -qx "$GW" <<<"$got"; then
    it_fail "dig +tcp @$GW answered ('$got'); the isolated responder is UDP only"
fi
((ms < 2000)) || it_fail "dig +tcp @$GW failed only after ${ms} ms (a timeout, not a reset): $got"
it_log "ok: dig +tcp @$GW refused in ${ms} ms ($(head -n 1 <<<"$got"))"

it_stop_switchd
[[ $(ip -n "$HOST" -o link show | wc -l) == 2 ]] || it_fail "interfaces left in $HOST: $(ip -n "$HOST" -o link show)"

# ---------------------------------------------------------------------------------------
# (b) Lima's networks.yaml, in a fresh namespace with fresh run and state dirs

LIMA=$(it_name l)
it_netns "$LIMA"
it_netns_resolv "$LIMA"
SWITCHD_NETNS=$LIMA
RUN_DIR=$IT_TMP/run-lima STATE_DIR=$IT_TMP/state-lima
it_start_switchd "$LIMA_YAML"

names=$(it_json "sorted(n['name'] for n in nets())")
[[ "$names" == '["host", "shared"]' ]] || it_fail "networks in status: $names, expected host and shared"
for want in "shared shared 192.168.107.0/24 192.168.107.1" "host host 192.168.108.0/24 192.168.108.1"; do
    read -r name mode subnet gw <<<"$want"
    got="$(it_json "net('$name')['mode']") $(it_json "net('$name')['subnet']") $(it_json "net('$name')['gateway']") $(it_json "net('$name')['uplink']")"
    [[ "$got" == "$mode $subnet $gw sw-$name" ]] || it_fail "network $name: mode/subnet/gateway/uplink '$got', expected '$mode $subnet $gw sw-$name'"
    out=$(it_has_addr "$LIMA" "sw-$name" "$gw/24") || it_fail "sw-$name lacks $gw/24: $out"
    it_nft_table_exists "$LIMA" "switchd-$name" || it_fail "no table inet switchd-$name: $(ip netns exec "$LIMA" nft list tables)"
    it_wait_socket "$RUN_DIR/$name/dgram.sock"
    it_log "ok: network $name: mode $mode, $subnet, uplink sw-$name $gw/24, table inet switchd-$name, sockets"
done
dirs=$(find "$RUN_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tr '\n' ' ')
[[ "$dirs" == "host shared " ]] || it_fail "RUNDIR has directories '$dirs', expected only host and shared"
entries=$(ls -A "$RUN_DIR" | tr '\n' ' ')
if grep -qE 'user-v2|bridged' <<<"$entries"; then it_fail "RUNDIR has entries of Lima's other sections: $entries"; fi
it_log "ok: RUNDIR: $entries(nothing for user-v2 or bridged)"
[[ $(ip netns exec "$LIMA" sysctl -n net.ipv4.ip_forward) == 1 ]] || it_fail "network shared did not turn IPv4 forwarding on"

it_stop_switchd
left=$(ip -n "$LIMA" -o link show | awk -F': ' '{print $2}' | grep '^sw-' || true)
[[ -z "$left" ]] || it_fail "uplinks left after SIGTERM: $left"
tables=$(ip netns exec "$LIMA" nft list tables 2>&1)
if grep -q 'switchd-' <<<"$tables"; then it_fail "tables left after SIGTERM: $tables"; fi
fwd=$(ip netns exec "$LIMA" sysctl -n net.ipv4.ip_forward)$(ip netns exec "$LIMA" sysctl -n net.ipv6.conf.all.forwarding)
[[ "$fwd" == 00 ]] || it_fail "forwarding not restored after SIGTERM: ipv4/ipv6 = $fwd"
it_log "ok: after SIGTERM no uplink, no table, forwarding off"
it_pass
