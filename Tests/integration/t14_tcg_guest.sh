#!/usr/bin/env bash
# A real Linux guest (issue 4, test d): QEMU with `-accel tcg` boots Debian's cloud kernel
# (fetched with `apt-get download` into a cache outside the repository, see guest/fetch-kernel.sh)
# with a busybox initramfs (guest/build-initramfs.sh: guest/init, guest/udhcpc.script, cached
# per content next to the kernel). Its virtio NIC joins
# switchd through `-netdev dgram`. The guest gets its address with `udhcpc` and pings the other
# port, a namespace on a `tap` port that took its lease as host name `peer`, by the name
# switchd's DNS gives it: peer.lab.internal. The guest prints its verdict on the serial
# console; the test checks it, the DHCP values it got and switchd's lease table.
#
# Environment: SWITCHD_TEST_CACHE (default /var/cache/switchd-test) holds kernel and image;
# IT_GUEST_TIMEOUT (default 120) bounds the guest's run in seconds.
source "$(dirname "$0")/lib.sh"
source "$IT_DIR/guest/guest.sh"

it_require_netns
it_require_cmd qemu-system-x86_64 busybox cpio gzip modinfo apt-get dpkg-deb flock ldd
it_require_switchd

BUSYBOX=$(command -v busybox)
[[ "$(ldd "$BUSYBOX" 2>&1 || true)" == *"not a dynamic executable"* ]] ||
    it_skip "needs a static busybox for the initramfs ($BUSYBOX is dynamic; install busybox-static)"

NET=lab
GW=10.79.0.1
GUEST_MAC=52:54:00:12:34:56
GUEST_NAME=guest1
PEER_NAME=peer
GUEST_TIMEOUT=${IT_GUEST_TIMEOUT:-120}
HOST_RESOLV_SUM=$(sha256sum /etc/resolv.conf 2>/dev/null || true)

# --- the guest image: kernel and initramfs, built once, then reused from the cache ------
guest_image

# --- switchd with one isolated network; the peer on a tap port --------------------------
NS_P=$(it_name p)
TAP_P=$(it_name tp)
it_netns "$NS_P"
it_netns_resolv "$NS_P"
cat >"$IT_TMP/switchd.yaml" <<YAML
networks:
  $NET:
    mode: isolated
    subnet: 10.79.0.0/24
    ports:
      - {tap: $TAP_P, netns: $NS_P}
YAML
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/$NET/dgram.sock"
it_wait_link "$NS_P" "$TAP_P"

it_log "peer: busybox udhcpc -x hostname:$PEER_NAME in $NS_P"
if ! timeout 30 ip netns exec "$NS_P" env RESOLV_CONF="/etc/netns/$NS_P/resolv.conf" \
    "$BUSYBOX" udhcpc -i "$TAP_P" -x "hostname:$PEER_NAME" -s "$IT_DIR/guest/udhcpc.script" \
    -q -n -t 10 >"$IT_TMP/peer-udhcpc.log" 2>&1; then
    cat "$IT_TMP/peer-udhcpc.log" >&2
    it_fail "the peer got no DHCP lease"
fi
PEER_IP=$(sed -n 's/^udhcpc: ip=//p' "$IT_TMP/peer-udhcpc.log")
[[ -n "$PEER_IP" ]] || { cat "$IT_TMP/peer-udhcpc.log" >&2; it_fail "udhcpc script saw no ip for the peer"; }
it_log "ok: peer has $PEER_IP ($(ip -n "$NS_P" -4 -o addr show dev "$TAP_P" | awk '{print $4}'))"

# --- the guest ---------------------------------------------------------------------------
it_log "guest: qemu-system-x86_64 -accel tcg, -netdev dgram to $RUN_DIR/$NET/dgram.sock"
guest_net dgram "$IT_TMP/guest.sock" "$RUN_DIR/$NET/dgram.sock"
guest_start g1 "$GUEST_MAC" "sw.role=ping sw.peer=$PEER_NAME.$NET.internal sw.hostname=$GUEST_NAME"
guest_finish g1 "$GUEST_TIMEOUT"
guest_lines g1 >"$IT_TMP/console.txt"
grep -E '^(guest|udhcpc|SWITCHD-RESULT|SWITCHD-GUEST-RESULT)' "$IT_TMP/console.txt" | sed 's/^/    /' >&2
verdict=$(guest_verdict g1)
[[ "$verdict" == PASS ]] || { guest_tail g1; it_fail "the guest says: $verdict"; }
it_log "ok: the guest got a lease and pinged $PEER_NAME.$NET.internal"

# --- what the guest got, and what switchd remembers --------------------------------------
val() { sed -n "s/^udhcpc: $1=//p" "$IT_TMP/console.txt" | head -n 1; }
GUEST_IP=$(val ip)
[[ "$GUEST_IP" == 10.79.0.* && "$GUEST_IP" != "$GW" && "$GUEST_IP" != "$PEER_IP" ]] ||
    it_fail "guest address '$GUEST_IP' is not a fresh address in 10.79.0.0/24"
[[ "$(val router)" == "$GW" ]] || it_fail "guest router is '$(val router)', expected $GW"
[[ "$(val dns)" == "$GW" ]] || it_fail "guest DNS server is '$(val dns)', expected $GW"
[[ "$(val domain)" == "$NET.internal" ]] || it_fail "guest domain is '$(val domain)', expected $NET.internal"
[[ "$(val mtu)" == 1500 ]] || it_fail "guest MTU option (asked for with -O mtu) is '$(val mtu)', expected 1500"
grep -q "^guest: | 3 packets transmitted, 3 packets received" "$IT_TMP/console.txt" ||
    it_fail "the guest's ping did not get 3 of 3 replies"
grep -q "^guest: | PING $PEER_NAME.$NET.internal ($PEER_IP)" "$IT_TMP/console.txt" ||
    it_fail "the guest did not resolve $PEER_NAME.$NET.internal to $PEER_IP"
it_log "ok: guest $GUEST_IP, router and DNS $GW, domain $NET.internal, MTU 1500, $PEER_NAME.$NET.internal is $PEER_IP"

it_sw leases "$NET" >"$IT_TMP/leases.txt"
sed 's/^/    /' "$IT_TMP/leases.txt" >&2
grep -i "$GUEST_MAC" "$IT_TMP/leases.txt" | grep -F "$GUEST_IP" | grep -q "$GUEST_NAME" ||
    it_fail "switchd leases $NET has no line with $GUEST_MAC, $GUEST_IP and $GUEST_NAME"
grep -F "$PEER_IP" "$IT_TMP/leases.txt" | grep -q "$PEER_NAME" ||
    it_fail "switchd leases $NET has no line with $PEER_IP and $PEER_NAME"
it_log "ok: switchd leases lists $GUEST_NAME and $PEER_NAME"

# The other way round: the guest's DHCP host name is a DNS name too.
ip netns exec "$NS_P" "$BUSYBOX" nslookup "$GUEST_NAME.$NET.internal" "$GW" >"$IT_TMP/nslookup.out" 2>&1 || true
grep -q "^Address: $GUEST_IP\$" "$IT_TMP/nslookup.out" ||
    { cat "$IT_TMP/nslookup.out" >&2; it_fail "$GUEST_NAME.$NET.internal does not resolve to $GUEST_IP from the peer"; }
it_log "ok: the peer resolves $GUEST_NAME.$NET.internal to $GUEST_IP"

[[ "$(sha256sum /etc/resolv.conf 2>/dev/null || true)" == "$HOST_RESOLV_SUM" ]] ||
    it_fail "the host's /etc/resolv.conf changed during the test"
it_pass
