#!/usr/bin/env bash
# Port forwarding into guests (README "Port forwarding"): switchd runs in a "host" namespace with
# a `shared` network `lab` (10.204.0.0/24, fd42:29::/64) and one guest on a `tap` port that takes
# a DHCP lease as host name `web` and a static ULA address; a client namespace ("outside") reaches
# the host over a veth. Checked: TCP over DNAT to the host name (the guest sees the client's own
# address), a port range mapped to other guest ports, UDP over DNAT, IPv6 over DNAT to a literal
# ULA guest address (client's address kept); from the host itself, 127.0.0.1 and ::1 over TCP and
# UDP (the relay: the guest sees the gateway); a forward to a host name without a lease is refused
# at once (DNAT: a reset from the table, relay: a reset) rather than hanging; runtime `forward add`
# works at once, `forward del` makes it refuse; a `host` network's forward from the host's address
# is relayed (host mode forwards no packets); `status --json` lists forwards; after the guest
# takes a new lease (new MAC, new address) the host-name forwards follow within seconds; a reload
# with other forwards replaces them without restarting the network and ends the runtime ones.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd nft busybox curl
it_require_switchd

it_host_world
G=$(it_name g) T=$(it_name t) G2=$(it_name g2) T2=$(it_name t2)
it_netns "$G"
it_netns "$G2"
SUBNET=10.204.0.0/24 GW=10.204.0.1 PREFIX=fd42:29:: GUEST6=fd42:29::10

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: shared
    subnet: $SUBNET
    ipv6Prefix: $PREFIX/64
    ports:
      - {tap: $T, netns: $G}
    portForwards:
      - {proto: tcp, hostAddress: $HOST_IP, hostPort: 8080, guest: web}
      - {proto: tcp, hostAddress: $HOST_IP, hostPort: 9000-9001, guest: web, guestPort: 8080-8081}
      - {proto: udp, hostAddress: $HOST_IP, hostPort: 7001, guest: web, guestPort: 7000}
      - {proto: tcp, hostAddress: $HOST_IP6, hostPort: 8082, guest: $GUEST6, guestPort: 8080}
      - {proto: tcp, hostPort: 8081, guest: web, guestPort: 8080}
      - {proto: udp, hostPort: 7002, guest: web, guestPort: 7000}
      - {proto: tcp, hostAddress: $HOST_IP, hostPort: 8099, guest: ghost, guestPort: 80}
      - {proto: tcp, hostAddress: 127.0.0.1, hostPort: 8098, guest: ghost, guestPort: 80}
  hm:
    mode: host
    subnet: 10.205.0.0/24
    ipv6: false
    ports:
      - {tap: $T2, netns: $G2}
    portForwards:
      - {proto: tcp, hostAddress: $HOST_IP, hostPort: 8180, guest: db, guestPort: 8080}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_nft_table_exists "$HOST" switchd-lab || it_fail "no nftables table inet switchd-lab"

it_wait_link "$G" "$T"
it_udhcpc "$G" "$T" web
IP1=$LEASE_IP
ip -n "$G" addr add "$GUEST6/64" dev "$T" nodad
it_log "guest lease $IP1 (host name web), static $GUEST6"
it_whoami_server "$G" :: 8080
it_whoami_server "$G" :: 8081
it_bg "$IT_TMP/udp-whoami.log" ip netns exec "$G" "$PY" "$IT_DIR/udp_whoami.py" serve :: 7000

# forward_is ID FIELD VALUE [NETWORK]: forward ID of NETWORK (default lab) has FIELD = VALUE in status --json.
forward_is() { it_json_is "[f['$2'] for f in net('${4:-lab}')['forwards'] if f['id']=='$1'][0]" "$3"; }

# The name resolves within the manager's ~1 s lookup period.
it_wait_until 10 "forward tcp:$HOST_IP:8080 resolved to $IP1" forward_is "tcp:$HOST_IP:8080" resolved "$IP1"
it_log "ok: status lists $(it_json "len(net('lab')['forwards'])") forwards; web resolved to $IP1"

seen=$(it_whoami "$OUT" "http://$HOST_IP:8080/") || it_fail "no answer through the DNAT forward $HOST_IP:8080"
[[ "$seen" == "$OUT_IP" ]] || it_fail "the guest saw $seen through DNAT, expected the client's own $OUT_IP"
it_log "ok: TCP $HOST_IP:8080 -> web:8080, guest sees the client $seen"
seen=$(it_whoami "$HOST" "http://$HOST_IP:8080/") || it_fail "the host itself gets no answer through $HOST_IP:8080"
[[ "$seen" == "$HOST_IP" ]] || it_fail "the host's own client through DNAT was seen as $seen, expected $HOST_IP"
it_log "ok: the host's own client on $HOST_IP:8080 (output chain), seen as $seen"

for p in 9000 9001; do
    seen=$(it_whoami "$OUT" "http://$HOST_IP:$p/") || it_fail "no answer through the range forward at $HOST_IP:$p"
    [[ "$seen" == "$OUT_IP" ]] || it_fail "range port $p: guest saw $seen"
done
it_log "ok: TCP range $HOST_IP:9000-9001 -> web:8080-8081"

seen=$(ip netns exec "$OUT" "$PY" "$IT_DIR/udp_whoami.py" ask "$HOST_IP" 7001) || it_fail "no UDP answer through $HOST_IP:7001"
[[ "$seen" == "$OUT_IP" ]] || it_fail "the guest saw UDP from $seen, expected $OUT_IP"
it_log "ok: UDP $HOST_IP:7001 -> web:7000, guest sees $seen"

it_wait_until 15 "an IPv6 default route in the guest (RA)" sh -c "ip -n $G -6 route show default | grep -q via"
seen=$(it_whoami "$OUT" "http://[$HOST_IP6]:8082/") || it_fail "no answer through the IPv6 forward [$HOST_IP6]:8082"
[[ "$seen" == "$OUT_IP6" ]] || it_fail "the guest saw $seen over IPv6, expected $OUT_IP6"
it_log "ok: TCP [$HOST_IP6]:8082 -> [$GUEST6]:8080, guest sees $seen"

# The host itself, on loopback: the relay (the guest sees the gateway).
seen=$(it_whoami "$HOST" "http://127.0.0.1:8081/") || it_fail "no answer through 127.0.0.1:8081"
[[ "$seen" == "$GW" ]] || it_fail "through 127.0.0.1 the guest saw $seen, expected the gateway $GW"
seen=$(it_whoami "$HOST" "http://[::1]:8081/") || it_fail "no answer through [::1]:8081"
[[ "$seen" == "$GW" ]] || it_fail "through ::1 the guest saw $seen, expected the gateway $GW"
it_log "ok: TCP 127.0.0.1:8081 and [::1]:8081 -> web:8080 (relay, seen as $seen)"
for a in 127.0.0.1 ::1; do
    seen=$(ip netns exec "$HOST" "$PY" "$IT_DIR/udp_whoami.py" ask "$a" 7002) || it_fail "no UDP answer through $a:7002"
    [[ "$seen" == "$GW" ]] || it_fail "UDP through $a: guest saw $seen, expected $GW"
done
it_log "ok: UDP 127.0.0.1:7002 and [::1]:7002 -> web:7000 (relay)"

# A host-mode network never forwards packets: its forward from the host's address is relayed.
it_wait_link "$G2" "$T2"
it_udhcpc "$G2" "$T2" db
it_whoami_server "$G2" 0.0.0.0 8080
it_wait_until 10 "forward tcp:$HOST_IP:8180 resolved to $LEASE_IP" forward_is "tcp:$HOST_IP:8180" resolved "$LEASE_IP" hm
seen=$(it_whoami "$OUT" "http://$HOST_IP:8180/") || it_fail "no answer through the host-mode forward $HOST_IP:8180"
[[ "$seen" == 10.205.0.1 ]] || it_fail "through the host-mode relay the guest saw $seen, expected the gateway 10.205.0.1"
it_log "ok: host mode: TCP $HOST_IP:8180 -> db:8080 (relay, seen as $seen)"

# Bulk through the relay, guest to host (iperf3 -R: one control and one data connection).
it_iperf_server "$G" 5201
it_sw forward add lab --proto tcp --host-address 127.0.0.1 --host-port 15201 --guest web --guest-port 5201 >/dev/null
it_iperf_client "$HOST" 127.0.0.1 2 "$IT_TMP/iperf-relay.json" -p 15201 -R || it_fail "iperf3 through the relay failed"
(($(it_iperf_received "$IT_TMP/iperf-relay.json") > 0)) || it_fail "iperf3 through the relay moved nothing: $(head -c 600 "$IT_TMP/iperf-relay.json")"
it_log "ok: iperf3 -R through the relay: $(it_iperf_gbps "$IT_TMP/iperf-relay.json") Gbit/s"

# No lease for "ghost": refused at once, not a timeout.
for url in "http://$HOST_IP:8099/" "http://127.0.0.1:8098/"; do
    client=$OUT
    [[ $url == *127.0.0.1* ]] && client=$HOST
    t0=$(date +%s%N)
    if out=$(it_whoami "$client" "$url" 5 2>&1); then it_fail "$url answered ($out) though ghost has no lease"; fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    ((ms < 2000)) || it_fail "$url failed only after $ms ms (a timeout, not a refusal)"
    it_log "ok: $url to a guest without a lease refused in $ms ms ($(tail -n 1 <<<"$out"))"
done
forward_is "tcp:$HOST_IP:8099" state unresolved || it_fail "status does not show the ghost forward as unresolved"

# Runtime add and del.
ids=$(it_sw forward add lab --proto tcp --host-address "$HOST_IP" --host-port 8090 --guest web --guest-port 8080)
[[ "$ids" == "tcp:$HOST_IP:8090" ]] || it_fail "forward add printed '$ids'"
it_wait_until 5 "runtime forward $HOST_IP:8090 answers" it_whoami "$OUT" "http://$HOST_IP:8090/" 1
list=$(it_sw forward list lab)
grep -q "tcp:$HOST_IP:8090 .*runtime" <<<"$list" || it_fail "forward list lacks the runtime forward: $list"
if out=$(it_sw forward add lab --proto tcp --host-address "$HOST_IP" --host-port 8089-8091 --guest web 2>&1); then
    it_fail "an overlapping forward was accepted: $out"
fi
[[ "$out" == *"overlap"*"tcp:$HOST_IP:8090"* ]] || it_fail "the overlap error does not name the forward: $out"
it_log "ok: runtime forward add works; an overlapping one is refused: $out"
it_sw forward del lab "tcp:$HOST_IP:8090" >/dev/null
t0=$(date +%s%N)
if out=$(it_whoami "$OUT" "http://$HOST_IP:8090/" 5 2>&1); then it_fail "the deleted forward still answers: $out"; fi
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || it_fail "after forward del, $HOST_IP:8090 failed only after $ms ms"
it_log "ok: forward del: $HOST_IP:8090 refused in $ms ms"

# The guest takes a new lease with a new MAC: the name's forwards follow.
ip -n "$G" link set "$T" address 02:29:00:00:00:02
it_udhcpc "$G" "$T" web
IP2=$LEASE_IP
[[ "$IP2" != "$IP1" ]] || it_fail "the new MAC got the same address $IP1; cannot test the move"
it_wait_until 10 "forward tcp:$HOST_IP:8080 follows web to $IP2" forward_is "tcp:$HOST_IP:8080" resolved "$IP2"
seen=$(it_whoami "$OUT" "http://$HOST_IP:8080/") || it_fail "no answer through $HOST_IP:8080 after the lease moved"
[[ "$seen" == "$OUT_IP" ]] || it_fail "after the move the guest saw $seen"
it_whoami "$HOST" "http://127.0.0.1:8081/" >/dev/null || it_fail "no answer through 127.0.0.1:8081 after the lease moved"
table=$(ip netns exec "$HOST" nft list table inet switchd-lab)
grep -q "dnat ip to $IP2" <<<"$table" || it_fail "the table has no DNAT to $IP2: $table"
it_log "ok: web moved $IP1 -> $IP2; DNAT and relay follow"

# Reload with other forwards: they change without restarting the network (the guest's port and
# lease stay); runtime forwards end; a kept relay forward keeps working.
sed -i -e "s/hostPort: 9000-9001, guest: web, guestPort: 8080-8081/hostPort: 8070, guest: web, guestPort: 8080/" "$IT_TMP/switchd.yaml"
ports_before=$(it_json "[p['id'] for p in net('lab')['ports']]")
kill -HUP "$SWITCHD_PID"
it_wait_until 10 "the reload drops the runtime forward" sh -c "! '$SWITCHD' forward list lab --run-dir '$RUN_DIR' | grep -q 15201"
list=$(it_sw forward list lab)
grep -q "tcp:$HOST_IP:8070 " <<<"$list" || it_fail "after the reload, no forward $HOST_IP:8070: $list"
grep -q "9000-9001" <<<"$list" && it_fail "after the reload, the range forward is still there: $list"
[[ $(it_json "[p['id'] for p in net('lab')['ports']]") == "$ports_before" ]] || it_fail "the reload restarted the network's ports"
seen=$(it_whoami "$OUT" "http://$HOST_IP:8070/") || it_fail "no answer through the reloaded forward $HOST_IP:8070"
[[ "$seen" == "$OUT_IP" ]] || it_fail "through the reloaded forward the guest saw $seen"
if out=$(it_whoami "$OUT" "http://$HOST_IP:9000/" 5 2>&1); then it_fail "the removed range forward still answers: $out"; fi
it_whoami "$HOST" "http://127.0.0.1:8081/" >/dev/null || it_fail "the kept relay forward 127.0.0.1:8081 stopped after the reload"
it_log "ok: reload replaced the forwards in place (8070 added, 9000-9001 and the runtime ones gone)"

it_stop_switchd
if it_nft_table_exists "$HOST" switchd-lab; then it_fail "table inet switchd-lab left behind"; fi
it_pass
