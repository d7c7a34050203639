#!/usr/bin/env bash
# DHCPv4 with real clients on `tap` ports: ISC dhclient (host name alpha, through Debian's own
# dhclient-script) and busybox udhcpc (host name beta) each get a lease in dhcpRange with
# router, DNS server and server id = the gateway, interface MTU = the network's mtu, the
# network's domain and lease time, and their host name echoed; their addresses differ;
# `switchd leases` and `status --json` list both with their host names. switchd is stopped
# and started again with the same state dir: the leases are still listed, the TAPs come back
# with the same MACs, and both clients get their old addresses again (udhcpc with a fresh
# DISCOVER, dhclient from its lease file by INIT-REBOOT). A third TAP whose MAC is put under
# `reservations` on the restart gets its reserved address (outside the range).
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd dhclient busybox
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b) NS_C=$(it_name c)
TAP_A=$(it_name ta) TAP_B=$(it_name tb) TAP_C=$(it_name tc)
GW=10.77.0.1 MTU=1400 RANGE_LO=100 RANGE_HI=149 RESERVED=10.77.0.200 DOMAIN=lab.internal
for ns in "$NS_A" "$NS_B" "$NS_C"; do
    it_netns "$ns"
    # dhclient-script writes /etc/resolv.conf: under `ip netns exec` that must be the
    # namespace's own file, never the host's.
    it_netns_resolv "$ns"
done

write_config() { # [reservations block]
    cat >"$IT_TMP/switchd.yaml" <<YAML
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: $MTU
    dhcpRange: 10.77.0.$RANGE_LO-10.77.0.$RANGE_HI
    leaseTime: 3600
${1:-}
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
      - {tap: $TAP_C, netns: $NS_C}
YAML
}

# A TAP as switchd hands it over, with its MTU raised to 1500 so that a client applying the
# DHCP interface-MTU option visibly changes it.
tap_fresh() { # NS TAP
    it_wait_link "$1" "$2"
    it_wait_until 5 "switchd brings $2 up in $1" it_link_is_up "$1" "$2"
    ip -n "$1" link set "$2" mtu 1500
}

link_mtu() { ip -n "$1" -o link show "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }

in_range() { # IP
    local last=${1##*.}
    [[ "${1%.*}" == 10.77.0 && "$last" =~ ^[0-9]+$ ]] && ((last >= RANGE_LO && last <= RANGE_HI))
}

expect() { # WHAT SEEN WANTED
    [[ "$2" == "$3" ]] || it_fail "$1: got '$2', expected '$3'"
    it_log "ok: $1 = $3"
}

# --- dhclient (ISC) -------------------------------------------------------------------------

# dhclient -1 forks into the background once bound; kill it by the PID in its pid file.
kill_pidfile() {
    local p
    p=$(cat "$1" 2>/dev/null) || return 0
    [[ "$p" =~ ^[0-9]+$ ]] && it_kill "$p"
    rm -f "$1"
}

A_CONF=$IT_TMP/alpha.conf A_LEASES=$IT_TMP/alpha.leases A_PID=$IT_TMP/alpha.pid
printf '%s\n' 'send host-name "alpha";' \
    'request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu;' \
    'timeout 20;' >"$A_CONF"
it_defer "kill_pidfile '$A_PID'"

run_dhclient() { # LOG
    if ! timeout -k 5 30 ip netns exec "$NS_A" dhclient -1 -v -cf "$A_CONF" -lf "$A_LEASES" -pf "$A_PID" "$TAP_A" >"$1" 2>&1; then
        cat "$1" >&2
        it_fail "dhclient in $NS_A got no lease"
    fi
}

# lease_opt KEY: a value from the last lease in dhclient's lease file (`fixed-address` or an
# option name), without the trailing semicolon.
lease_opt() {
    awk '/^lease *\{/ { b = "" } { b = b $0 "\n" } END { printf "%s", b }' "$A_LEASES" |
        sed -n -e "s/^ *$1 \(.*\);\$/\1/p" -e "s/^ *option $1 \(.*\);\$/\1/p" | tail -n 1
}

check_alpha() { # sets A_IP
    local ip
    ip=$(lease_opt fixed-address)
    in_range "$ip" || { cat "$A_LEASES" >&2; it_fail "dhclient's address '$ip' is not in the range"; }
    expect "dhclient: routers" "$(lease_opt routers)" "$GW"
    expect "dhclient: domain-name-servers" "$(lease_opt domain-name-servers)" "$GW"
    expect "dhclient: dhcp-server-identifier" "$(lease_opt dhcp-server-identifier)" "$GW"
    expect "dhclient: subnet-mask" "$(lease_opt subnet-mask)" 255.255.255.0
    expect "dhclient: interface-mtu" "$(lease_opt interface-mtu)" "$MTU"
    expect "dhclient: domain-name" "$(lease_opt domain-name)" "\"$DOMAIN\""
    expect "dhclient: host-name (echoed)" "$(lease_opt host-name)" '"alpha"'
    # What dhclient-script made of it: address, default route, MTU, resolv.conf.
    ip -n "$NS_A" -4 -o addr show dev "$TAP_A" | grep -q " $ip/24 " ||
        it_fail "dhclient-script did not put $ip/24 on $TAP_A: $(ip -n "$NS_A" -4 -o addr show dev "$TAP_A")"
    ip -n "$NS_A" route show default | grep -q "via $GW dev $TAP_A" ||
        it_fail "no default route via $GW in $NS_A: $(ip -n "$NS_A" route show)"
    expect "$TAP_A MTU after dhclient" "$(link_mtu "$NS_A" "$TAP_A")" "$MTU"
    grep -qx "nameserver $GW" "/etc/netns/$NS_A/resolv.conf" && grep -qx "search $DOMAIN" "/etc/netns/$NS_A/resolv.conf" ||
        it_fail "resolv.conf of $NS_A: $(cat "/etc/netns/$NS_A/resolv.conf")"
    it_log "ok: dhclient bound $ip; address, default route, MTU and resolv.conf applied"
    A_IP=$ip
}

# --- udhcpc (busybox) -----------------------------------------------------------------------

run_udhcpc() { # NS TAP HOSTNAME OUT
    if ! UDHCPC_OUT=$4 timeout -k 5 30 ip netns exec "$1" busybox udhcpc -i "$2" -x "hostname:$3" -O mtu \
        -q -n -t 5 -T 1 -s "$IT_DIR/udhcpc_script.sh" >"$4.log" 2>&1 || [[ ! -s "$4.bound" ]]; then
        cat "$4.log" >&2
        it_fail "udhcpc ($3) in $1 got no lease"
    fi
}

uvar() { sed -n "s/^$2=//p" "$1.bound"; }

check_beta() { # OUT; sets B_IP
    local out=$1 ip
    ip=$(uvar "$out" ip)
    in_range "$ip" || { cat "$out.bound" >&2; it_fail "udhcpc's address '$ip' is not in the range"; }
    expect "udhcpc: router" "$(uvar "$out" router)" "$GW"
    expect "udhcpc: dns" "$(uvar "$out" dns)" "$GW"
    expect "udhcpc: serverid" "$(uvar "$out" serverid)" "$GW"
    expect "udhcpc: subnet" "$(uvar "$out" subnet)" 255.255.255.0
    expect "udhcpc: mtu" "$(uvar "$out" mtu)" "$MTU"
    expect "udhcpc: domain" "$(uvar "$out" domain)" "$DOMAIN"
    expect "udhcpc: hostname (echoed)" "$(uvar "$out" hostname)" beta
    expect "udhcpc: lease" "$(uvar "$out" lease)" 3600
    expect "$TAP_B MTU after udhcpc" "$(link_mtu "$NS_B" "$TAP_B")" "$MTU"
    B_IP=$ip
}

# leases_lines: `switchd leases lab --json` as sorted "mac ip hostname" lines (every lease
# must expire in the future).
leases_lines() {
    local js
    js=$(it_sw leases lab --json) || it_fail "switchd leases lab --json failed"
    printf '%s' "$js" | "$PY" -c 'import json, sys, time
for l in sorted(json.load(sys.stdin), key=lambda l: tuple(int(x) for x in l["ip"].split("."))):
    assert l["expires"] > time.time(), l
    print(l["mac"].lower(), l["ip"], l.get("hostname", "-"))'
}

# --- first run -----------------------------------------------------------------------------

write_config
it_start_switchd "$IT_TMP/switchd.yaml"
for t in "$NS_A $TAP_A" "$NS_B $TAP_B" "$NS_C $TAP_C"; do
    # shellcheck disable=SC2086
    tap_fresh $t
done
MAC_A=$(it_mac "$NS_A" "$TAP_A") MAC_B=$(it_mac "$NS_B" "$TAP_B") MAC_C=$(it_mac "$NS_C" "$TAP_C")
it_log "TAP MACs: $MAC_A $MAC_B $MAC_C"

run_dhclient "$IT_TMP/alpha-1.log"
check_alpha
run_udhcpc "$NS_B" "$TAP_B" beta "$IT_TMP/beta-1"
check_beta "$IT_TMP/beta-1"
[[ "$A_IP" != "$B_IP" ]] || it_fail "both clients got $A_IP"
it_log "ok: alpha has $A_IP, beta has $B_IP"
A_IP1=$A_IP B_IP1=$B_IP
it_ping "$NS_A" "$B_IP" 2

want=$(printf '%s\n' "$MAC_A $A_IP alpha" "$MAC_B $B_IP beta" | sort -t. -k4,4n)
got=$(leases_lines)
[[ "$got" == "$want" ]] || it_fail "switchd leases lab: got
$got
expected
$want"
it_log "ok: switchd leases lists alpha and beta"
table=$(it_sw leases lab)
for w in "$A_IP" alpha "$B_IP" beta; do
    grep -q -- "$w" <<<"$table" || it_fail "the leases table lacks $w: $table"
done
it_json_is "' '.join(sorted(l['ip'] + '=' + l.get('hostname', '') for l in net('lab')['leases']))" \
    "$(printf '%s\n' "$A_IP=alpha" "$B_IP=beta" | sort | xargs)" ||
    it_fail "status --json leases: $(it_json "net('lab')['leases']")"
it_log "ok: status --json lists the same leases"

# --- restart with the same state dir ----------------------------------------------------------

kill_pidfile "$A_PID"
it_stop_switchd 10
[[ -s "$STATE_DIR/lab/leases" ]] || it_fail "no lease file at $STATE_DIR/lab/leases"
write_config "    reservations:
      \"$MAC_C\": $RESERVED"
it_start_switchd "$IT_TMP/switchd.yaml"
got=$(leases_lines)
[[ "$got" == "$want" ]] || it_fail "after the restart switchd leases lab shows
$got
expected
$want"
it_log "ok: the leases survived the restart"
for t in "$NS_A $TAP_A" "$NS_B $TAP_B" "$NS_C $TAP_C"; do
    # shellcheck disable=SC2086
    tap_fresh $t
done
expect "$TAP_A MAC after the restart" "$(it_mac "$NS_A" "$TAP_A")" "$MAC_A"
expect "$TAP_B MAC after the restart" "$(it_mac "$NS_B" "$TAP_B")" "$MAC_B"
expect "$TAP_C MAC after the restart" "$(it_mac "$NS_C" "$TAP_C")" "$MAC_C"

# beta first: a server that forgot its leases and hands out the lowest free address would
# give it alpha's old one.
run_udhcpc "$NS_B" "$TAP_B" beta "$IT_TMP/beta-2"
check_beta "$IT_TMP/beta-2"
expect "beta's address after the restart (fresh DISCOVER)" "$B_IP" "$B_IP1"
run_dhclient "$IT_TMP/alpha-2.log"
check_alpha
expect "alpha's address after the restart (INIT-REBOOT from its lease file)" "$A_IP" "$A_IP1"
if grep -q DHCPNAK "$IT_TMP/alpha-2.log"; then
    cat "$IT_TMP/alpha-2.log" >&2
    it_fail "dhclient was NAKed on the way"
fi

run_udhcpc "$NS_C" "$TAP_C" gamma "$IT_TMP/gamma"
expect "the reserved client's address" "$(uvar "$IT_TMP/gamma" ip)" "$RESERVED"
expect "the reserved client's router" "$(uvar "$IT_TMP/gamma" router)" "$GW"
it_ping "$NS_C" "$A_IP" 2
n=$(leases_lines | awk '{print $2}' | sort -u | wc -l)
[[ "$n" == 3 ]] || it_fail "expected 3 distinct leased addresses, have: $(leases_lines)"
it_log "ok: 3 distinct addresses: $(leases_lines | tr '\n' ';')"
it_pass
