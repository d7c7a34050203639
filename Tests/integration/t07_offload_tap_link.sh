#!/usr/bin/env bash
# TSO super-frames end to end: namespaces a and b on offloading `tap` ports, namespace c
# behind a veth whose host-side end is a `link` port. iperf3 a -> b completes and b's port
# counts super-frames forwarded whole and nothing segmented; iperf3 c -> a (veth, AF_PACKET
# with PACKET_VNET_HDR) completes and a's port counts super-frames. The link interface has
# IPv6 off while it is joined and back to its previous value after switchd exits.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b) NS_C=$(it_name c)
TAP_A=$(it_name ta) TAP_B=$(it_name tb)
VETH_H=$(it_name vh) VETH_C=$(it_name vc)
it_netns "$NS_A"
it_netns "$NS_B"
it_netns "$NS_C"

# c's veth: the host end stays here (switchd's namespace) and becomes the link port.
ip link add "$VETH_H" type veth peer name "$VETH_C" netns "$NS_C"
it_defer "ip link del '$VETH_H'"
V6=/proc/sys/net/ipv6/conf/$VETH_H/disable_ipv6
[[ -e "$V6" ]] || it_skip "no IPv6 sysctls for $VETH_H (IPv6 disabled on this host?)"
echo 0 >"$V6"
it_addr "$NS_C" "$VETH_C" 10.77.0.73/24

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: 1500
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
      - {link: $VETH_H}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.71/24
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.72/24

it_wait_until 10 "a link port for $VETH_H in status" \
    it_json_is "len([p for p in kind('lab', 'link') if p.get('peer') == '$VETH_H'])" 1
it_wait_until 5 "switchd brings $VETH_H up" sh -c "ip -o link show '$VETH_H' | grep -q '[<,]UP[,>]'"
[[ $(cat "$V6") == 1 ]] || it_fail "IPv6 still on for $VETH_H while it is a link port ($V6 = $(cat "$V6"))"
it_log "ok: $VETH_H is up with IPv6 off while joined"

it_ping "$NS_A" 10.77.0.72 2
it_ping "$NS_C" 10.77.0.71 2
it_ping "$NS_C" 10.77.0.72 1

# Port selectors by peer name (tap peers are TAP@NETNS).
P_A="[p for p in kind('lab', 'tap') if p.get('peer', '').split('@')[0] == '$TAP_A'][0]"
P_B="[p for p in kind('lab', 'tap') if p.get('peer', '').split('@')[0] == '$TAP_B'][0]"
P_L="[p for p in kind('lab', 'link') if p.get('peer') == '$VETH_H'][0]"
it_json "$P_A['id'], $P_B['id'], $P_L['id']" >/dev/null ||
    { it_status >&2; it_fail "status does not list both tap ports and the link port by peer"; }

# 1. tap -> tap: super-frames pass whole.
it_iperf_server "$NS_B"
it_check "iperf3 TCP 5 s $NS_A -> $NS_B (tap -> tap) completes" \
    it_iperf_client "$NS_A" 10.77.0.72 5 "$IT_TMP/iperf-ab.json"
bytes=$(it_iperf_received "$IT_TMP/iperf-ab.json")
it_log "iperf3 a -> b: $bytes bytes, $(it_iperf_gbps "$IT_TMP/iperf-ab.json") Gbit/s"
((bytes > 0)) || it_fail "iperf3 a -> b received no bytes"
it_json 'dump(ports("lab"))' >"$IT_TMP/ports-ab.json"
sf_b=$(it_json "$P_B.get('superFrames', -1)")
seg_b=$(it_json "$P_B.get('segmented', -1)")
drops_b=$(it_json "drops($P_B)")
it_log "b's port: superFrames $sf_b, segmented $seg_b, drops $drops_b"
((sf_b > 0)) || { cat "$IT_TMP/ports-ab.json" >&2; it_fail "b's tap port forwarded no super-frames (superFrames $sf_b)"; }
((seg_b == 0)) || { cat "$IT_TMP/ports-ab.json" >&2; it_fail "b's tap port segmented $seg_b super-frames in software (expected 0)"; }
it_log "ok: tap -> tap carried super-frames whole"

# 2. link (veth) -> tap.
sf_a0=$(it_json "$P_A.get('superFrames', -1)")
rx_l0=$(it_json "rx($P_L, 'bytes')")
it_iperf_server "$NS_A"
it_check "iperf3 TCP 5 s $NS_C -> $NS_A (link -> tap) completes" \
    it_iperf_client "$NS_C" 10.77.0.71 5 "$IT_TMP/iperf-ca.json"
bytes=$(it_iperf_received "$IT_TMP/iperf-ca.json")
it_log "iperf3 c -> a: $bytes bytes, $(it_iperf_gbps "$IT_TMP/iperf-ca.json") Gbit/s"
((bytes > 0)) || it_fail "iperf3 c -> a received no bytes"
it_json 'dump(ports("lab"))' >"$IT_TMP/ports-ca.json"
sf_a=$(it_json "$P_A.get('superFrames', -1)")
seg_a=$(it_json "$P_A.get('segmented', -1)")
rx_l=$(it_json "rx($P_L, 'bytes')")
it_log "a's port: superFrames $sf_a (was $sf_a0), segmented $seg_a; link port rx bytes $rx_l0 -> $rx_l"
((sf_a > sf_a0)) || { cat "$IT_TMP/ports-ca.json" >&2; it_fail "a's tap port forwarded no super-frames from the link port ($sf_a0 -> $sf_a)"; }
((rx_l - rx_l0 >= bytes / 2)) || { cat "$IT_TMP/ports-ca.json" >&2; it_fail "link port rx bytes rose only $((rx_l - rx_l0)) for $bytes iperf3 bytes"; }
it_log "ok: link -> tap carried super-frames whole"

# switchd exits: the link interface gets its IPv6 back.
it_stop_switchd 10
v=$(cat "$V6")
[[ "$v" == 0 ]] || it_fail "IPv6 on $VETH_H not restored after switchd exit ($V6 = $v, expected 0)"
ip link show "$VETH_H" >/dev/null 2>&1 || it_fail "switchd deleted $VETH_H, which it did not create"
it_log "ok: $VETH_H kept, IPv6 restored (disable_ipv6 = 0)"
it_pass
