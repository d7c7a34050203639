#!/usr/bin/env bash
# `switchd capture` on two namespaces joined by tap ports of an isolated network, while iperf3 and
# ping run between them:
#   1. --filter icmp -w FILE --count 10: tcpdump reads exactly 10 packets back, all ICMP;
#   2. -w - --count 5 | tcpdump -r -: five ICMP lines;
#   3. -w FIFO into a live tcpdump: lines appear while the capture runs (flushed per batch), and
#      SIGINT ends the capture with its summary and exit status 0;
#   4. a reader that never reads: iperf3 still completes at a normal rate, `status` answers within
#      1 s and shows the capture; when the reader is killed the client reports the frames lost,
#      the daemon logs the end and `status` shows no capture left;
#   5. a bad filter expression is an error naming libpcap's message.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd iperf3 ping tcpdump timeout
it_require_switchd

it_two_tap_lab 11 12
capture() { "$SWITCHD" capture "$@" --run-dir "$RUN_DIR"; }

# Traffic the captures run against: ping 10/s, and iperf3 (restarted per phase).
it_bg "$IT_TMP/ping.log" ip netns exec "$NS_A" ping -n -i 0.1 10.77.0.12
PING_PID=$IT_LAST_PID

# iperf_bg SECONDS OUT.json: an iperf3 client NS_A -> NS_B in the background (server one-shot).
iperf_bg() {
    it_iperf_server "$NS_B"
    it_bg "$2.err" sh -c "exec ip netns exec '$NS_A' iperf3 -c 10.77.0.12 -t $1 -J >'$2'"
    IPERF_PID=$IT_LAST_PID
}

# --- 1: a file with exactly 10 ICMP packets ---------------------------------------------------
iperf_bg 6 "$IT_TMP/iperf1.json"
sleep 1
timeout 30 "$SWITCHD" capture lab --filter icmp -w "$IT_TMP/icmp.pcap" --count 10 --run-dir "$RUN_DIR" \
    2>"$IT_TMP/capture1.err" || { cat "$IT_TMP/capture1.err" >&2; it_fail "capture --count 10 failed"; }
wait "$IPERF_PID" || it_fail "iperf3 during the first capture failed"
icmp=$(tcpdump -r "$IT_TMP/icmp.pcap" -n icmp 2>/dev/null | wc -l)
other=$(tcpdump -r "$IT_TMP/icmp.pcap" -n 'not icmp' 2>/dev/null | wc -l)
[[ $icmp -eq 10 && $other -eq 0 ]] || {
    tcpdump -r "$IT_TMP/icmp.pcap" -n >&2
    it_fail "capture file holds $icmp ICMP and $other other packets, expected 10 and 0"
}
grep -q '^10 frames captured, 0 lost$' "$IT_TMP/capture1.err" ||
    { cat "$IT_TMP/capture1.err" >&2; it_fail "capture did not report 10 frames captured, 0 lost"; }
it_log "ok: --filter icmp --count 10 during iperf3 wrote exactly 10 ICMP packets"
(($(it_iperf_received "$IT_TMP/iperf1.json") > 0)) || it_fail "iperf3 received nothing during the first capture"

# --- 2: streaming into tcpdump -r - -------------------------------------------------------------
timeout 30 "$SWITCHD" capture lab --filter icmp -w - --count 5 --run-dir "$RUN_DIR" 2>"$IT_TMP/capture2.err" |
    tcpdump -r - -n >"$IT_TMP/stream.txt" 2>/dev/null || it_fail "capture -w - | tcpdump -r - failed"
lines=$(wc -l <"$IT_TMP/stream.txt")
icmp=$(grep -c ' ICMP echo ' "$IT_TMP/stream.txt" || true)
[[ $lines -eq 5 && $icmp -eq 5 ]] || { cat "$IT_TMP/stream.txt" >&2; it_fail "tcpdump -r - printed $lines lines ($icmp ICMP echo), expected 5"; }
it_log "ok: -w - --count 5 | tcpdump -r - printed 5 ICMP echo lines"

# --- 3: live through a FIFO, ended by SIGINT -----------------------------------------------------
mkfifo "$IT_TMP/live.fifo"
it_bg "$IT_TMP/live.txt" tcpdump -l -n -r "$IT_TMP/live.fifo"
it_bg "$IT_TMP/capture3.err" "$SWITCHD" capture lab --filter 'icmp[icmptype] = icmp-echo' -w "$IT_TMP/live.fifo" \
    --run-dir "$RUN_DIR"
LIVE_PID=$IT_LAST_PID
it_wait_until 10 "tcpdump prints echo requests while the capture runs" \
    sh -c "[ \$(grep -c 'ICMP echo request' '$IT_TMP/live.txt') -ge 3 ]"
_it_alive "$LIVE_PID" || it_fail "the capture ended before it was interrupted"
it_check "status shows the running capture" it_json_is 'net("lab").get("captures")' 1
kill -INT "$LIVE_PID"
rc=0
timeout 10 tail --pid="$LIVE_PID" -f /dev/null || it_fail "capture still running 10 s after SIGINT"
wait "$LIVE_PID" || rc=$?
[[ $rc -eq 0 ]] || { cat "$IT_TMP/capture3.err" >&2; it_fail "capture exited $rc after SIGINT"; }
grep -Eq '^[0-9]+ frames captured, 0 lost$' "$IT_TMP/capture3.err" ||
    { cat "$IT_TMP/capture3.err" >&2; it_fail "no summary after SIGINT"; }
grep -q 'ICMP echo reply' "$IT_TMP/live.txt" && it_fail "the filter let an echo reply through"
it_wait_until 5 "status shows no capture after SIGINT" it_json_is 'net("lab").get("captures")' None
it_log "ok: live capture through a FIFO; SIGINT ended it ($(head -1 "$IT_TMP/capture3.err"))"

# --- 4: a reader that never reads ------------------------------------------------------------------
it_iperf_server "$NS_B"
it_check "iperf3 5 s without capture" it_iperf_client "$NS_A" 10.77.0.12 5 "$IT_TMP/iperf-base.json"
base=$(it_iperf_gbps "$IT_TMP/iperf-base.json")
mkfifo "$IT_TMP/stall.fifo"
it_bg "$IT_TMP/sleeper.log" sh -c "exec sleep 120 <'$IT_TMP/stall.fifo'"
SLEEPER_PID=$IT_LAST_PID
it_bg "$IT_TMP/capture4.err" "$SWITCHD" capture lab -w "$IT_TMP/stall.fifo" --run-dir "$RUN_DIR"
STALLED_PID=$IT_LAST_PID
it_wait_until 5 "status shows the stalled capture" it_json_is 'net("lab").get("captures")' 1
iperf_bg 6 "$IT_TMP/iperf-stalled.json"
sleep 1
slowest=0
for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    timeout 1 "$SWITCHD" status --json --run-dir "$RUN_DIR" >"$IT_TMP/status-$i.json" ||
        it_fail "status did not answer within 1 s while a stalled capture and iperf3 run"
    ms=$((($(date +%s%N) - t0) / 1000000))
    ((ms > slowest)) && slowest=$ms
    sleep 0.5
done
wait "$IPERF_PID" || it_fail "iperf3 with a stalled capture failed"
stalled=$(it_iperf_gbps "$IT_TMP/iperf-stalled.json")
it_log "iperf3: $base Gbit/s without capture, $stalled Gbit/s with a stalled one; status took at most ${slowest} ms"
awk -v s="$stalled" -v b="$base" 'BEGIN { exit !(s >= 0.5 * b) }' ||
    it_fail "iperf3 with a stalled capture ran at $stalled Gbit/s, under half of $base"
_it_alive "$STALLED_PID" || it_fail "the stalled capture client exited early"
it_kill "$SLEEPER_PID"
timeout 10 tail --pid="$STALLED_PID" -f /dev/null || {
    cat "$IT_TMP/capture4.err" >&2
    ps -o pid,stat,wchan:32,cmd -p "$STALLED_PID" >&2 || true
    it_fail "capture client still running 10 s after its reader died"
}
wait "$STALLED_PID" || true
lost=$(sed -n 's/^[0-9]* frames captured, \([0-9]*\) lost (the reader was too slow)$/\1/p' "$IT_TMP/capture4.err")
[[ -n "$lost" && "$lost" -gt 0 ]] || { cat "$IT_TMP/capture4.err" >&2; it_fail "the stalled capture reported no lost frames"; }
it_wait_until 5 "status shows no capture left" it_json_is 'net("lab").get("captures")' None
grep -Eq 'capture [0-9] finished, .*[0-9]+ lost' "$SWITCHD_LOG" || it_fail "the daemon did not log the capture's end"
it_log "ok: a stalled capture lost $lost frames, never traffic; gone from status after its reader died"

# --- 5: errors --------------------------------------------------------------------------------------
if out=$(capture lab --filter 'icmp and and' -w /dev/null 2>&1); then it_fail "a bad filter was accepted"; fi
[[ "$out" == *'bad filter "icmp and and": '*syntax* ]] || it_fail "bad filter message: $out"
if out=$(capture lab --port nosuch -w /dev/null 2>&1); then it_fail "an unknown port was accepted"; fi
[[ "$out" == *"network lab has no port nosuch"* ]] || it_fail "unknown port message: $out"
it_log "ok: bad filter and unknown port refused with clear messages"

it_kill "$PING_PID"
it_pass
