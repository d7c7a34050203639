#!/usr/bin/env bash
# Two namespaces on switchd `tap` ports: the TAPs arrive up in their namespaces, ping works
# both ways, a 5 s iperf3 TCP run completes with data received, status counts the traffic,
# and SIGTERM removes the sockets and TAPs.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping
it_require_switchd

NS_A=$(it_name a) NS_B=$(it_name b)
TAP_A=$(it_name ta) TAP_B=$(it_name tb)
it_netns "$NS_A"
it_netns "$NS_B"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: 1500
    queueFrames: 256
    ports:
      - {tap: $TAP_A, netns: $NS_A}
      - {tap: $TAP_B, netns: $NS_B}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/lab/dgram.sock"
it_wait_socket "$RUN_DIR/lab/stream.sock"

it_wait_link "$NS_A" "$TAP_A"
it_wait_link "$NS_B" "$TAP_B"
it_wait_until 5 "switchd brings $TAP_A up in $NS_A" it_link_is_up "$NS_A" "$TAP_A"
it_wait_until 5 "switchd brings $TAP_B up in $NS_B" it_link_is_up "$NS_B" "$TAP_B"
it_addr "$NS_A" "$TAP_A" 10.77.0.11/24
it_addr "$NS_B" "$TAP_B" 10.77.0.12/24

it_ping "$NS_A" 10.77.0.12 3
it_ping "$NS_B" 10.77.0.11 3

it_iperf_server "$NS_B"
it_check "iperf3 TCP 5 s $NS_A -> $NS_B completes" \
    it_iperf_client "$NS_A" 10.77.0.12 5 "$IT_TMP/iperf.json"
bytes=$(it_iperf_received "$IT_TMP/iperf.json")
it_log "iperf3: $bytes bytes received, $(it_iperf_gbps "$IT_TMP/iperf.json") Gbit/s"
((bytes > 0)) || it_fail "iperf3 received no bytes"

# The two TAP ports carried that: each received and sent well over a megabyte.
it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
taps=$(it_json 'len(kind("lab", "tap"))')
[[ "$taps" == 2 ]] || { cat "$IT_TMP/ports.json" >&2; it_fail "status lists $taps tap ports, expected 2"; }
low=$(it_json 'min(min(rx(p, "bytes"), tx(p, "bytes")) for p in kind("lab", "tap"))')
((low > 1000000)) || { cat "$IT_TMP/ports.json" >&2; it_fail "tap port rx/tx bytes too small after iperf3: min $low"; }
it_log "ok: status counts the flow on both tap ports (min rx/tx bytes $low)"

# Clean shutdown: sockets and TAPs go away.
it_stop_switchd 10
for f in control.sock lab/dgram.sock lab/stream.sock; do
    [[ ! -e "$RUN_DIR/$f" ]] || it_fail "$RUN_DIR/$f still exists after SIGTERM"
done
ip -n "$NS_A" link show "$TAP_A" >/dev/null 2>&1 && it_fail "$TAP_A still exists in $NS_A after SIGTERM"
ip -n "$NS_B" link show "$TAP_B" >/dev/null 2>&1 && it_fail "$TAP_B still exists in $NS_B after SIGTERM"
it_log "ok: sockets and TAPs removed on SIGTERM"
it_pass
