#!/usr/bin/env bash
# `switchd run --threads 2`: four `tap` ports in namespaces, placed round-robin over two
# forwarding threads (a, c on thread 1; b, d on thread 0, with the services). Ping works between
# every pair, iperf3 TCP (-P 2) crosses the threads both ways, a broadcast ARP reaches every
# port, a port on thread 1 gets a DHCP lease and reaches the gateway, `port del` of a port on
# thread 1 removes it, and status lists every port with counters that add up.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping busybox
it_require_switchd

names=(a b c d)
declare -A NS TAP IP
for n in "${names[@]}"; do
    NS[$n]=$(it_name "$n")
    TAP[$n]=$(it_name "t$n")
    it_netns "${NS[$n]}"
done
IP=([a]=10.78.0.11 [b]=10.78.0.12 [c]=10.78.0.13 [d]=10.78.0.14)

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.78.0.0/24
    dhcpRange: 10.78.0.100-10.78.0.150
    ports:
      - {tap: ${TAP[a]}, netns: ${NS[a]}}
      - {tap: ${TAP[b]}, netns: ${NS[b]}}
      - {tap: ${TAP[c]}, netns: ${NS[c]}}
      - {tap: ${TAP[d]}, netns: ${NS[d]}}
EOF
it_start_switchd "$IT_TMP/switchd.yaml" --threads 2

for n in "${names[@]}"; do
    it_wait_link "${NS[$n]}" "${TAP[$n]}"
    it_wait_until 5 "switchd brings ${TAP[$n]} up" it_link_is_up "${NS[$n]}" "${TAP[$n]}"
    it_addr "${NS[$n]}" "${TAP[$n]}" "${IP[$n]}/24"
done
# The placement the log reports: round-robin from thread 1.
for pair in a:1 b:0 c:1 d:0; do
    n=${pair%:*} t=${pair#*:}
    grep -q "port ${TAP[$n]} on forwarding thread $t" "$SWITCHD_LOG" \
        || it_fail "${TAP[$n]} is not on forwarding thread $t: $(grep 'forwarding thread' "$SWITCHD_LOG")"
done
it_log "ok: a, c on thread 1; b, d on thread 0"

# Every pair, both ways.
for x in "${names[@]}"; do
    for y in "${names[@]}"; do
        [[ $x == "$y" ]] && continue
        it_ping "${NS[$x]}" "${IP[$y]}" 2
    done
done

# Flooding: a broadcast ARP request from a (thread 1) for an address nobody has reaches b, c, d.
for n in b c d; do
    it_bg "$IT_TMP/arp-$n.pcap.log" ip netns exec "${NS[$n]}" timeout 8 tcpdump -n -l -c 3 -i "${TAP[$n]}" \
        arp and host 10.78.0.99 -w "$IT_TMP/arp-$n.pcap"
done
sleep 1
ip netns exec "${NS[a]}" busybox arping -c 3 -w 3 -I "${TAP[a]}" 10.78.0.99 >/dev/null 2>&1 || true
sleep 1
for n in b c d; do
    count=$(tcpdump -n -r "$IT_TMP/arp-$n.pcap" 2>/dev/null | grep -c "who-has 10.78.0.99" || true)
    ((count >= 1)) || it_fail "the broadcast ARP from a did not reach $n"
done
it_log "ok: a broadcast from thread 1 reaches every port"

# iperf3 across the threads, both ways, two streams.
it_iperf_server "${NS[b]}"
it_check "iperf3 -P 2 a (thread 1) -> b (thread 0)" it_iperf_client "${NS[a]}" "${IP[b]}" 4 "$IT_TMP/ab.json" -P 2
it_log "a -> b: $(it_iperf_gbps "$IT_TMP/ab.json") Gbit/s"
it_iperf_server "${NS[c]}"
it_check "iperf3 -P 2 d (thread 0) -> c (thread 1)" it_iperf_client "${NS[d]}" "${IP[c]}" 4 "$IT_TMP/dc.json" -P 2
it_log "d -> c: $(it_iperf_gbps "$IT_TMP/dc.json") Gbit/s"
for f in ab dc; do
    bytes=$(it_iperf_received "$IT_TMP/$f.json")
    ((bytes > 1000000)) || it_fail "iperf3 $f received only $bytes bytes"
done

# DHCP for a port on thread 1 (the server is on thread 0); the lease is bound to a's port there,
# so its traffic from the leased address passes port security.
ip -n "${NS[a]}" addr flush dev "${TAP[a]}"
it_udhcpc "${NS[a]}" "${TAP[a]}" alpha
[[ "$LEASE_IP" == 10.78.0.1[0-5][0-9] ]] || it_fail "a's lease $LEASE_IP is outside the range"
it_log "ok: a (thread 1) leased $LEASE_IP"
it_ping "${NS[a]}" 10.78.0.1 2
it_ping "${NS[a]}" "${IP[d]}" 2

# Status: four tap ports, counters that add up (every frame a port sent out was received by
# another port or made by the services), and no frames lost between the threads.
ports=$(it_json 'len(kind("lab", "tap"))')
[[ "$ports" == 4 ]] || it_fail "status lists $ports tap ports, expected 4"
rx=$(it_json 'sum(rx(p) for p in kind("lab", "tap"))')
tx=$(it_json 'sum(tx(p) for p in kind("lab", "tap"))')
it_log "status: rx $rx, tx $tx frames over the four ports"
((rx > 10000 && tx > 10000)) || it_fail "counters too small: rx $rx tx $tx"
cross=$(it_json 'net("lab").get("drops", {}).get("crossShard", 0)')
it_log "crossShard drops: $cross"

# port del of a port on thread 1.
it_sw port del lab "${TAP[c]}" >/dev/null || it_fail "port del ${TAP[c]} failed"
it_wait_until 5 "${TAP[c]} is gone" sh -c "! ip -n '${NS[c]}' link show '${TAP[c]}' >/dev/null 2>&1"
ports=$(it_json 'len(kind("lab", "tap"))')
[[ "$ports" == 3 ]] || it_fail "status lists $ports tap ports after port del, expected 3"
it_ping "${NS[a]}" "${IP[b]}" 2
it_log "ok: port del of a thread-1 port"

it_stop_switchd 10
it_pass
