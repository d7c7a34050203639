#!/usr/bin/env bash
# vhost-user ports with real QEMU guests (issue 12). switchd runs one isolated network `lab`; QEMU
# 7.2 TCG guests (guest/build-initramfs.sh's kernel and busybox initramfs with iperf3) join it:
#   va  vhost-user (RUNDIR/lab/vhost-user.sock, reconnect=1), DHCP, host name va, serves iperf3
#   vb  vhost-user, DHCP, host name vb; pings and runs iperf3 both ways (-R) to each of
#         va.lab.internal  guest <-> guest over vhost-user
#         10.79.0.13       vc, a guest on -netdev dgram: the offload guest's TSO super-frames are
#                          segmented for the plain socket port (docs/DESIGN.md §9 "mixed offloads")
#         10.79.0.2        a namespace on a `tap` port running iperf3 -s
#   vc  -netdev dgram, static 10.79.0.13, serves iperf3
# Then switchd is stopped (SIGTERM, exit 0) and started again under the running va: QEMU
# reconnects (reconnect=1), the port comes back, and the namespace pings va and runs iperf3 to it.
# Lifecycle: a guest that powers off or is killed takes its vhost-user port with it.
#
# The guests boot together (TCG, one vCPU each); iperf3 runs are T27_SECONDS (default 3) long.
# Gbit/s figures go to the log (TCG guests are CPU-bound: these are not benchmarks, see
# bench/qemu.sh). T27_NIC=dgram puts va and vb on -netdev dgram instead of vhost-user: the same
# scenario with no vhost-user, which checks the harness itself (guests, image, parsing, restart).
# T27_VHOST_KIND (default vhost-user) is the port kind `status --json` reports for vhost-user.
source "$(dirname "$0")/lib.sh"
source "$IT_DIR/guest/guest.sh"

it_require_netns
it_require_cmd iperf3 ping qemu-system-x86_64
it_require_switchd

NIC=${T27_NIC:-vhost}
VKIND=${T27_VHOST_KIND:-vhost-user}
SECS=${T27_SECONDS:-3}
NET=lab
[[ "$NIC" == vhost || "$NIC" == dgram ]] || it_fail "T27_NIC must be vhost or dgram, not $NIC"

guest_image
grep -qx iperf3 "$GUEST_DIR/features" || it_skip "the guest image has no iperf3 (none on this host)"

NS_P=$(it_name p)
TAP_P=$(it_name tp)
it_netns "$NS_P"
cat >"$IT_TMP/switchd.yaml" <<YAML
networks:
  $NET:
    mode: isolated
    subnet: 10.79.0.0/24
    dhcpRange: 10.79.0.100-10.79.0.199   # static guests use addresses below
    ports:
      - {tap: $TAP_P, netns: $NS_P}
YAML
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/$NET/dgram.sock"
SOCK=$RUN_DIR/$NET/vhost-user.sock
if [[ "$NIC" == vhost ]]; then
    it_wait_until 10 "switchd listens on $SOCK (the vhost-user backend, issue 12)" test -S "$SOCK"
fi
it_tap_ready "$NS_P" "$TAP_P" 10.79.0.2/24
it_bg "$IT_TMP/iperf3-server-p.log" ip netns exec "$NS_P" iperf3 -s
it_wait_until 10 "iperf3 server listening in $NS_P" \
    sh -c "ip netns exec '$NS_P' ss -Hltn 'sport = :5201' | grep -q LISTEN"

# nic NAME: the NIC of a guest that would be on vhost-user.
nic() {
    if [[ "$NIC" == vhost ]]; then
        guest_net vhost "$SOCK"
    else
        guest_net dgram "$IT_TMP/$1.sock" "$RUN_DIR/$NET/dgram.sock"
    fi
}

nic va
guest_start va 52:54:00:27:00:0a "sw.role=serve sw.hostname=va"
guest_net dgram "$IT_TMP/vc.sock" "$RUN_DIR/$NET/dgram.sock"
guest_start vc 52:54:00:27:00:0c "sw.role=serve sw.hostname=vc sw.ip=10.79.0.13/24"
nic vb
guest_start vb 52:54:00:27:00:0b "sw.role=client sw.hostname=vb sw.peer=va.$NET.internal,10.79.0.13,10.79.0.2 sw.dirs=tx,rx sw.seconds=$SECS sw.wait=90"

guest_wait va '^SWITCHD-RESULT ready' 90
guest_wait vc '^SWITCHD-RESULT ready' 90
VA_IP=$(guest_field va ready ip)
[[ "$VA_IP" == 10.79.0.1[0-9][0-9] ]] || it_fail "va's DHCP address '$VA_IP' is not in the pool"
it_log "ok: va serves at $VA_IP (DHCP over $NIC), vc at 10.79.0.13 (static, dgram)"
if [[ "$NIC" == vhost ]]; then
    n=$(it_json "len(kind('$NET', '$VKIND'))")
    [[ "$n" == 2 ]] || { it_json "dump(ports('$NET'))" >&2; it_fail "status lists $n $VKIND ports, expected 2 (va, vb)"; }
    it_log "ok: status lists two $VKIND ports"
fi

# --- vb's round: ping and iperf3 both ways to va, vc and the namespace ---------------------
guest_finish vb $((90 + 6 * (SECS + 25)))
guest_show vb
verdict=$(guest_verdict vb)
[[ "$verdict" == PASS ]] || { guest_tail vb; it_fail "vb says: $verdict"; }
declare -A WHAT=([va.$NET.internal]="guest <-> guest ($NIC)" [10.79.0.13]="$NIC guest <-> dgram guest"
    [10.79.0.2]="$NIC guest <-> tap namespace")
runs=0
while read -r line; do
    peer=$(tr ' ' '\n' <<<"$line" | sed -n 's/^peer=//p')
    dir=$(tr ' ' '\n' <<<"$line" | sed -n 's/^dir=//p')
    bps=$(tr ' ' '\n' <<<"$line" | sed -n 's/^bits_per_second=//p')
    [[ -n "$bps" ]] || it_fail "vb: iperf3 to $peer ($dir) has no result: $line"
    awk -v b="$bps" 'BEGIN { exit !(b > 0) }' || it_fail "vb: iperf3 to $peer ($dir) moved nothing: $line"
    it_log "iperf3 ${WHAT[$peer]:-$peer}, vb $([[ $dir == tx ]] && echo sends || echo receives): $(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 1e9 }') Gbit/s"
    runs=$((runs + 1))
done < <(guest_results vb | grep '^SWITCHD-RESULT iperf3 ')
((runs == 6)) || it_fail "vb reported $runs iperf3 results, expected 6 (3 peers, both ways)"
it_log "ok: vb pinged and ran iperf3 both ways with va, vc and the namespace"

if [[ "$NIC" == vhost ]]; then
    it_wait_until 10 "vb's $VKIND port gone after vb powered off" it_json_is "len(kind('$NET', '$VKIND'))" 1
    it_log "ok: vb's port left with its guest"
fi

# --- switchd restarted under the running va ------------------------------------------------
it_ping "$NS_P" "$VA_IP" 2
it_stop_switchd
_it_alive "${GUEST_PID[va]}" || { guest_tail va; it_fail "va's QEMU exited when switchd stopped"; }
it_log "switchd stopped; va's QEMU (pid ${GUEST_PID[va]}) keeps running"
sleep 1 # QEMU notices the closed socket and starts reconnecting (reconnect=1: every second)
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_P" "$TAP_P" 10.79.0.2/24
if [[ "$NIC" == vhost ]]; then
    it_wait_until 20 "va's QEMU reconnects: a $VKIND port in status" it_json_is "len(kind('$NET', '$VKIND'))" 1
    it_log "ok: va reconnected to the restarted switchd"
fi
it_ping "$NS_P" "$VA_IP" 3
it_check "iperf3 namespace -> va ($NIC) completes after the restart" \
    it_iperf_client "$NS_P" "$VA_IP" 2 "$IT_TMP/after-restart.json"
it_log "iperf3 tap namespace -> va after the restart: $(it_iperf_gbps "$IT_TMP/after-restart.json") Gbit/s"
((10#$(it_iperf_received "$IT_TMP/after-restart.json") > 0)) || it_fail "iperf3 after the restart received nothing"
it_log "ok: va forwards again after switchd's restart"

if [[ "$NIC" == vhost ]]; then
    it_kill "${GUEST_PID[va]}"
    it_wait_until 10 "va's $VKIND port gone after its QEMU was killed" it_json_is "len(kind('$NET', '$VKIND'))" 0
    it_log "ok: killing va's QEMU removed its port"
fi
it_json "dump(ports('$NET'))" >"$IT_TMP/ports.json" || true
it_pass
