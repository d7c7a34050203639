#!/usr/bin/env bash
# VXLAN across "hosts" (README "VXLAN: one network across hosts"). Two underlay namespaces UA
# (10.200.0.1) and UB (10.200.0.2) joined by a veth. In UA switchd runs a network with
# `vxlan: {vni: 42, local: 10.200.0.1, remotes: [10.200.0.2]}` and a TAP into client namespace CA;
# in UB a kernel `vxlan` device (vni 42, dstport 4789) sits in a bridge with a veth into client
# namespace CB. Checks: a config whose MTU does not fit the underlay is refused; ping both ways;
# ARP and IPv6 ND resolve across; iperf3 both ways; status shows the vxlan port with traffic and
# a datagram of another VNI as a counted drop; then the same iperf3 with switchd replaced by a
# second kernel vxlan + bridge (the kernel-to-kernel figure, printed beside switchd's); last, two
# switchd instances joined the same way ping each other.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping
it_require_switchd
SECS=${VXLAN_IPERF_SECONDS:-3}

UA=$(it_name ua) UB=$(it_name ub) CA=$(it_name ca) CB=$(it_name cb)
for ns in "$UA" "$UB" "$CA" "$CB"; do it_netns "$ns"; done
ip netns exec "$UA" modprobe vxlan 2>/dev/null || true
ip -n "$UB" link add probevx type vxlan id 1 dstport 4789 local 127.0.0.1 2>/dev/null ||
    it_skip "the kernel has no vxlan support"
ip -n "$UB" link del probevx

# The underlay: one veth, MTU 1500.
U1=$(it_name u1) U2=$(it_name u2)
ip link add "$U1" type veth peer name "$U2"
it_defer "ip link del $U1"
ip link set "$U1" netns "$UA"
ip link set "$U2" netns "$UB"
it_addr "$UA" "$U1" 10.200.0.1/24
it_addr "$UB" "$U2" 10.200.0.2/24
ip -n "$UA" addr add fd00:200::1/64 dev "$U1" nodad
ip -n "$UB" addr add fd00:200::2/64 dev "$U2" nodad
it_ping "$UA" 10.200.0.2 2

# kernel_vtep UNDERLAY_NS LOCAL REMOTE CLIENT_NS CLIENT_CIDR CLIENT_CIDR6 TAG [MTU]: a kernel vxlan
# (vni 42, dstport 4789) and a veth into CLIENT_NS in one bridge, all at MTU (1450), client addressed.
kernel_vtep() {
    local ns=$1 local_ip=$2 remote=$3 client=$4 cidr=$5 cidr6=$6 tag=$7 mtu=${8:-1450}
    local vx=$(it_name "x$tag") br=$(it_name "b$tag") vh=$(it_name "h$tag") vc=$(it_name "c$tag")
    ip -n "$ns" link add "$vx" type vxlan id 42 dstport 4789 local "$local_ip" remote "$remote"
    ip -n "$ns" link add "$br" type bridge
    ip link add "$vh" type veth peer name "$vc"
    it_defer "ip -n $ns link del $vh 2>/dev/null; ip link del $vh 2>/dev/null"
    ip link set "$vh" netns "$ns"
    ip link set "$vc" netns "$client"
    for l in "$vx" "$vh"; do
        ip -n "$ns" link set "$l" mtu "$mtu"
        ip -n "$ns" link set "$l" master "$br"
        ip -n "$ns" link set "$l" up
    done
    ip -n "$ns" link set "$br" mtu "$mtu"
    ip -n "$ns" link set "$br" up
    ip -n "$client" link set "$vc" mtu "$mtu"
    ip -n "$client" addr add "$cidr6" dev "$vc" nodad
    it_addr "$client" "$vc" "$cidr"
    KVTEP_VX=$vx KVTEP_BR=$br KVTEP_VETH=$vh KVTEP_CLIENT_IF=$vc
}

# switchd_config FILE LOCAL REMOTE TAP CLIENT_NS [MTU]: the vxlan network `lab` with one TAP.
switchd_config() {
    cat >"$1" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.78.0.0/24
    mtu: ${6:-1450}
    dhcp: false
    ipv6Prefix: "fd42:0:0:42::/64"
    vxlan: {vni: 42, local: $2, remotes: [$3]}
    ports:
      - {tap: $4, netns: $5}
EOF
}

# --- The config refuses an MTU that does not fit the underlay (1500 + 50 > 1500).
TA=$(it_name ta)
switchd_config "$IT_TMP/too-big.yaml" 10.200.0.1 10.200.0.2 "$TA" "$CA" 1500
if ip netns exec "$UA" "$SWITCHD" run --config "$IT_TMP/too-big.yaml" --run-dir "$IT_TMP/run-refused" \
    >"$IT_TMP/refused.log" 2>&1; then
    it_fail "switchd started with mtu 1500 over a 1500-byte underlay"
fi
grep -q "mtu" "$IT_TMP/refused.log" && grep -q "vxlan.local" "$IT_TMP/refused.log" ||
    { cat "$IT_TMP/refused.log" >&2; it_fail "the refusal does not name mtu and vxlan.local"; }
it_log "ok: mtu 1500 refused: $(grep -m1 mtu "$IT_TMP/refused.log")"

# --- switchd (UA) <-> kernel vxlan (UB).
switchd_config "$IT_TMP/a.yaml" 10.200.0.1 10.200.0.2 "$TA" "$CA"
SWITCHD_NETNS=$UA it_start_switchd "$IT_TMP/a.yaml"
it_tap_ready "$CA" "$TA" 10.78.0.11/24
ip -n "$CA" addr add fd42:0:0:42::11/64 dev "$TA" nodad
kernel_vtep "$UB" 10.200.0.2 10.200.0.1 "$CB" 10.78.0.12/24 fd42:0:0:42::12/64 k
KB_VX=$KVTEP_VX KB_BR=$KVTEP_BR KB_VETH=$KVTEP_VETH KB_IF=$KVTEP_CLIENT_IF

it_ping "$CA" 10.78.0.12 3
it_ping "$CB" 10.78.0.11 3
it_ping "$CA" fd42:0:0:42::12 3
it_ping "$CB" fd42:0:0:42::11 3
mac_b=$(it_mac "$CB" "$KB_IF") mac_a=$(it_mac "$CA" "$TA")
ip -n "$CA" neigh show 10.78.0.12 | grep -qi "$mac_b" || it_fail "ARP in $CA did not resolve 10.78.0.12 to $mac_b"
ip -n "$CA" -6 neigh show fd42:0:0:42::12 | grep -qi "$mac_b" || it_fail "ND in $CA did not resolve fd42:0:0:42::12 to $mac_b"
ip -n "$CB" neigh show 10.78.0.11 | grep -qi "$mac_a" || it_fail "ARP in $CB did not resolve 10.78.0.11 to $mac_a"
ip -n "$CB" -6 neigh show fd42:0:0:42::11 | grep -qi "$mac_a" || it_fail "ND in $CB did not resolve fd42:0:0:42::11 to $mac_a"
it_log "ok: ARP and ND resolved across the tunnel both ways"
# The kernel learned switchd's guest behind 10.200.0.1; switchd learned CB's MAC on its VTEP port.
ip -n "$UB" -d link show "$KB_VX" | grep -q "vxlan id 42" || it_fail "no vxlan id 42 device in $UB"
ip netns exec "$UB" bridge fdb show dev "$KB_VX" | grep -qi "$mac_a dst 10.200.0.1" ||
    it_fail "the kernel vxlan did not learn $mac_a behind 10.200.0.1"
[[ $(it_json 'len(kind("lab", "vxlan"))') == 1 ]] || it_fail "status does not list one vxlan port"
[[ $(it_json '[p["id"] for p in kind("lab", "vxlan")][0]') == vxlan-10.200.0.2 ]] || it_fail "the vxlan port is not vxlan-10.200.0.2"
[[ $(it_json "'$mac_b' in kind('lab', 'vxlan')[0]['macs']") == true ]] || { it_json 'dump(ports("lab"))' >&2; it_fail "switchd did not learn $mac_b on its vxlan port"; }
it_log "ok: both ends learned the other's MAC behind the VTEP"

# The outer UDP source ports vary with the flow (hashed from the inner headers) on the wire.
if command -v tcpdump >/dev/null; then
    it_bg "$IT_TMP/tcpdump.log" ip netns exec "$UB" tcpdump -n -i "$U2" -c 40 -w "$IT_TMP/outer.pcap" "udp dst port 4789 and src host 10.200.0.1"
    TCPDUMP_PID=$IT_LAST_PID
    sleep 1
    for p in 1 2 3 4 5 6 7 8; do
        ip netns exec "$CA" "$PY" -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x', ('10.78.0.12', 7000 + $p)) for _ in range(4)]"
    done
    sleep 1
    it_kill "$TCPDUMP_PID"
    ports=$(tcpdump -n -r "$IT_TMP/outer.pcap" 2>/dev/null | sed -n 's/.*10\.200\.0\.1\.\([0-9]*\) > .*/\1/p' | sort -u | wc -l)
    ((ports >= 4)) || it_fail "the outer UDP source ports of 8 flows took only $ports value(s)"
    it_log "ok: 8 inner flows went out from $ports outer UDP source ports"
fi

it_iperf_server "$CB"
it_check "iperf3 ${SECS}s switchd -> kernel" it_iperf_client "$CA" 10.78.0.12 "$SECS" "$IT_TMP/ab.json"
it_iperf_server "$CA"
it_check "iperf3 ${SECS}s kernel -> switchd" it_iperf_client "$CB" 10.78.0.11 "$SECS" "$IT_TMP/ba.json"
sw_ab=$(it_iperf_gbps "$IT_TMP/ab.json") sw_ba=$(it_iperf_gbps "$IT_TMP/ba.json")
it_log "iperf3 over VXLAN, switchd <-> kernel: $sw_ab Gbit/s switchd->kernel, $sw_ba Gbit/s kernel->switchd"
low=$(it_json 'min(rx(kind("lab", "vxlan")[0], "bytes"), tx(kind("lab", "vxlan")[0], "bytes"))')
((low > 1000000)) || it_fail "the vxlan port counted little traffic (min rx/tx bytes $low)"

# A datagram for another VNI (and one that is no VXLAN at all) are counted drops, not crashes.
ip netns exec "$UB" "$PY" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.200.0.2", 0))
inner = bytes.fromhex("ffffffffffff020000000099") + b"\x08\x06" + bytes(28)
s.sendto(bytes([0x08, 0, 0, 0, 0, 0, 43, 0]) + inner, ("10.200.0.1", 4789))   # VNI 43
s.sendto(b"\x01\x02", ("10.200.0.1", 4789))                                   # garbage
EOF
it_wait_until 5 "status counts the wrong VNI" it_json_is 'net("lab")["drops"].get("vxlanWrongVni", 0)' 1
it_wait_until 5 "status counts the malformed datagram" it_json_is 'net("lab")["drops"].get("vxlanMalformed", 0)' 1
it_ping "$CA" 10.78.0.12 2
it_log "ok: wrong VNI and garbage counted (drops.vxlanWrongVni, drops.vxlanMalformed), traffic still flows"

# --- Kernel <-> kernel, same underlay, same clients: the reference figure.
it_stop_switchd 10
kernel_vtep "$UA" 10.200.0.1 10.200.0.2 "$CA" 10.78.0.11/24 fd42:0:0:42::11/64 a
it_ping "$CA" 10.78.0.12 3
it_iperf_server "$CB"
it_check "iperf3 ${SECS}s kernel -> kernel" it_iperf_client "$CA" 10.78.0.12 "$SECS" "$IT_TMP/kk.json"
it_iperf_server "$CA"
it_check "iperf3 ${SECS}s kernel -> kernel, reverse" it_iperf_client "$CB" 10.78.0.11 "$SECS" "$IT_TMP/kk2.json"
kk=$(it_iperf_gbps "$IT_TMP/kk.json") kk2=$(it_iperf_gbps "$IT_TMP/kk2.json")
it_log "RESULT vxlan iperf3 (${SECS}s, 1 TCP stream, MTU 1450 over a veth): switchd->kernel $sw_ab Gbit/s," \
    "kernel->switchd $sw_ba Gbit/s; kernel->kernel $kk and $kk2 Gbit/s (A->B, B->A)"
ip -n "$UA" link del "$KVTEP_VX"
ip -n "$UA" link del "$KVTEP_BR"
ip -n "$UA" link del "$KVTEP_VETH"

# --- switchd <-> switchd.
ip -n "$UB" link del "$KB_VX"
ip -n "$UB" link del "$KB_BR"
ip -n "$UB" link del "$KB_VETH"
SWITCHD_NETNS=$UA it_start_switchd "$IT_TMP/a.yaml"
it_tap_ready "$CA" "$TA" 10.78.0.11/24
TB=$(it_name tb)
switchd_config "$IT_TMP/b.yaml" 10.200.0.2 10.200.0.1 "$TB" "$CB"
mkdir -p "$IT_TMP/run-b" "$IT_TMP/state-b"
it_bg "$IT_TMP/switchd-b.log" ip netns exec "$UB" "$SWITCHD" run --config "$IT_TMP/b.yaml" \
    --run-dir "$IT_TMP/run-b" --state-dir "$IT_TMP/state-b" --log-level debug
SWITCHD_B_PID=$IT_LAST_PID
it_wait_until 20 "the second switchd answers status" "$SWITCHD" status --json --run-dir "$IT_TMP/run-b"
it_tap_ready "$CB" "$TB" 10.78.0.12/24
it_ping "$CA" 10.78.0.12 3
it_ping "$CB" 10.78.0.11 3
it_log "ok: two switchd instances joined over VXLAN"
it_kill "$SWITCHD_B_PID"
it_stop_switchd 10

# --- An IPv6 underlay: switchd (UA, fd00:200::1) <-> kernel vxlan (UB, fd00:200::2), MTU 1500 - 70.
switchd_config "$IT_TMP/a6.yaml" '"fd00:200::1"' '"fd00:200::2"' "$TA" "$CA" 1430
SWITCHD_NETNS=$UA it_start_switchd "$IT_TMP/a6.yaml"
it_tap_ready "$CA" "$TA" 10.78.0.11/24
ip -n "$CB" link del "$TB" 2>/dev/null || true
kernel_vtep "$UB" fd00:200::2 fd00:200::1 "$CB" 10.78.0.12/24 fd42:0:0:42::12/64 6 1430
it_ping "$CA" 10.78.0.12 3
it_ping "$CB" 10.78.0.11 3
[[ $(it_json '[p["id"] for p in kind("lab", "vxlan")][0]') == vxlan-fd00:200::2 ]] || it_fail "no port vxlan-fd00:200::2"
it_log "ok: switchd and the kernel joined over an IPv6 underlay"
it_stop_switchd 10
it_pass
