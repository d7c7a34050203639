#!/usr/bin/env bash
# A stream client that sends a bad length prefix (shorter than 14, longer than MTU + 18) is
# disconnected, its port goes away, and the other ports keep forwarding.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd ping
it_require_switchd

it_two_tap_lab 51 52  # MTU: the default, 1500

# Keep traffic flowing while the bad clients come and go.
it_bg "$IT_TMP/bgping.log" ip netns exec "$NS_A" ping -n -i 0.05 10.77.0.52

for len in 5 0 100000 1519; do
    if out=$("$PY" "$IT_DIR/bad_stream_client.py" "$RUN_DIR/lab/stream.sock" "$len" 5 2>&1); then
        it_log "ok: length $len: $out"
    else
        it_fail "stream client with length $len was not disconnected: $out"
    fi
    _it_alive "$SWITCHD_PID" || it_fail "switchd died after a stream length of $len"
done

it_wait_until 10 "the bad stream ports are removed" it_json_is 'len(kind("lab", "stream"))' 0
it_log "ok: no stream port left"

# A good client still gets in after the bad ones (the listener is fine).
"$PY" - "$RUN_DIR/lab/stream.sock" <<'PY' || it_fail "a well-behaved stream client could not connect and send"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = b"\xff" * 6 + b"\x02\x00\x5e\x77\x00\xef" + b"\x88\xb5" + b"\x00" * 46
s.sendall(struct.pack("!I", len(f)) + f)
s.close()
PY

it_ping "$NS_A" 10.77.0.52 5
it_ping "$NS_B" 10.77.0.51 5
replies=$(grep -c 'bytes from' "$IT_TMP/bgping.log" || true)
last=$(sed -n 's/.*icmp_seq=\([0-9]*\).*/\1/p' "$IT_TMP/bgping.log" | tail -n 1)
it_log "ok: taps keep forwarding (background ping: $replies replies up to icmp_seq ${last:-none})"
it_pass
