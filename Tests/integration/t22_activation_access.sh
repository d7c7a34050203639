#!/usr/bin/env bash
# Socket activation, idle exit and access control. `systemd-socket-activate -l RUNDIR/control.sock
# switchd run ... --exit-when-idle 2` starts switchd at the first connection, which is a `port add`;
# `status` and `fdb` work through the adopted socket. With controlGroup set and the socket opened to
# everyone (0666, so that switchd's own credential check is what decides, not the file mode), a user
# outside the group is refused `port add` and `attach` with a clear message but reads `status` and
# `fdb`; a user in the group by a supplementary group may add and delete a port. Garbage, a truncated
# request and a 10 MB request get errors and closed connections; switchd keeps serving. Once the last
# port goes, switchd exits by itself about 2 s later (status 0, the TAP gone), leaving the socket file
# that systemd-socket-activate created.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd systemd-socket-activate setpriv useradd userdel groupadd groupdel
it_require_switchd

NS=$(it_name n)
TAP=$(it_name t) TAP2=$(it_name t2)
it_netns "$NS"

# A group that may change the switch, a member (by supplementary group) and a stranger.
GROUP=${IT_PFX}g MEMBER=${IT_PFX}m STRANGER=${IT_PFX}s
groupadd -r "$GROUP"
it_defer "groupdel '$GROUP'"
for u in "$MEMBER" "$STRANGER"; do
    useradd -M -r -s /usr/sbin/nologin "$u"
    it_defer "userdel '$u'"
done
usermod -a -G "$GROUP" "$MEMBER"
as_user() {  # as_user USER COMMAND...: run with the user's uid, primary and supplementary groups
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}
# The client binary must be reachable by them.
CLIENT=$SWITCHD
if ! as_user "$STRANGER" test -x "$CLIENT"; then
    mkdir -p "$IT_TMP/bin"
    cp "$SWITCHD" "$IT_TMP/bin/switchd"
    CLIENT=$IT_TMP/bin/switchd
fi
chmod 0755 "$IT_TMP"
mkdir -p "$RUN_DIR" "$STATE_DIR"
chmod 0755 "$RUN_DIR"

cat >"$IT_TMP/switchd.yaml" <<EOF2
controlGroup: $GROUP
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
EOF2
SOCK=$RUN_DIR/control.sock
SWITCHD_LOG=$IT_TMP/switchd.log
it_bg "$SWITCHD_LOG" systemd-socket-activate -l "$SOCK" \
    "$SWITCHD" run --config "$IT_TMP/switchd.yaml" --run-dir "$RUN_DIR" --state-dir "$STATE_DIR" \
    --log-level debug --exit-when-idle 2
PID=$IT_LAST_PID
it_wait_socket "$SOCK"
[[ "$(cat /proc/$PID/comm)" != switchd ]] || it_fail "switchd started before the first connection"
it_log "ok: systemd-socket-activate listens on $SOCK"

# The first connection starts switchd; it adopts the socket and adds the port.
id=$(it_sw port add lab --tap "$TAP" --netns "$NS" | tail -n 1 | tr -d '[:space:]') || it_fail "port add through the activated socket failed"
[[ "$(cat /proc/$PID/comm)" == switchd ]] || it_fail "pid $PID is $(cat /proc/$PID/comm), not switchd"
grep -q 'socket activation' "$SWITCHD_LOG" || it_fail "switchd did not log that it serves the passed socket"
it_tap_ready "$NS" "$TAP" 10.77.0.31/24
n=$(it_json "len([p for p in ports('lab') if p['id'] == '$id'])")
[[ "$n" == 1 ]] || it_fail "status through the activated socket does not list port $id"
it_log "ok: port add started switchd (pid $PID) on the passed socket; status lists $id"

# --- Access. Open the socket to everyone: the daemon's check, not the file mode, must decide.
chmod 0666 "$SOCK"
rc=0
out=$(as_user "$STRANGER" "$CLIENT" port add lab --tap "$TAP2" --netns "$NS" --run-dir "$RUN_DIR" 2>&1) || rc=$?
((rc != 0)) || it_fail "a user outside $GROUP added a port: $out"
[[ "$out" == *"permission denied: portAdd needs root or membership of group $GROUP"* ]] ||
    it_fail "refusal of port add said: $out"
it_log "ok: $STRANGER refused port add: $out"
rc=0
out=$(as_user "$STRANGER" "$CLIENT" attach lab --run-dir "$RUN_DIR" -- true 2>&1) || rc=$?
((rc == 1)) || it_fail "attach by a user outside $GROUP exited $rc: $out"
[[ "$out" == *"permission denied: attach needs root or membership of group $GROUP"* ]] || it_fail "refusal of attach said: $out"
it_log "ok: $STRANGER refused attach: $out"
as_user "$STRANGER" "$CLIENT" status --run-dir "$RUN_DIR" >"$IT_TMP/status-stranger.txt" ||
    it_fail "status as $STRANGER failed"
grep -q "$id" "$IT_TMP/status-stranger.txt" || it_fail "status as $STRANGER does not show port $id"
as_user "$STRANGER" "$CLIENT" fdb lab --run-dir "$RUN_DIR" >/dev/null || it_fail "fdb as $STRANGER failed"
it_log "ok: $STRANGER reads status and fdb"
id2=$(as_user "$MEMBER" "$CLIENT" port add lab --tap "$TAP2" --netns "$NS" --run-dir "$RUN_DIR" 2>&1) ||
    it_fail "a member of $GROUP (supplementary) was refused port add: $id2"
id2=$(echo "$id2" | tail -n 1 | tr -d '[:space:]')
out=$(as_user "$MEMBER" "$CLIENT" port del lab "$id2" --run-dir "$RUN_DIR" 2>&1) || it_fail "member port del failed: $out"
it_log "ok: $MEMBER (in $GROUP by a supplementary group) added and deleted port $id2"

# --- Bad input: each gets an error reply and its connection closed; the daemon keeps serving.
"$PY" - "$SOCK" <<'PY' || it_fail "bad control messages were not answered as expected"
import socket, sys
path = sys.argv[1]

def exchange(data, half_close=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed on us after its reply: read that
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return got.decode(errors="replace").splitlines()

cases = [
    ("garbage", b"\x00\x01\xffgarbage\n{\"op\":\"status\"}\n", "malformed request: not valid JSON"),
    ("truncated", b"{\"op\":\"sta", "malformed request: not valid JSON"),
    ("10 MB", b"{\"op\":\"status\",\"pad\":\"" + b"x" * (10 << 20), "request longer than 65536 bytes"),
]
ok = True
for name, data, expected in cases:
    lines = exchange(data, half_close=(name != "10 MB"))
    good = len(lines) == 1 and expected in lines[0] and '"ok":false' in lines[0]
    print("%s: %s -> %s" % ("ok" if good else "BAD", name, lines[:2]), file=sys.stderr)
    ok = ok and good
sys.exit(0 if ok else 1)
PY
it_sw status --json >/dev/null || it_fail "status does not answer after bad input"
it_log "ok: garbage, truncated and 10 MB requests got errors and closed connections"

# --- Idle exit: the last port goes, switchd exits about 2 s later.
t0=$(date +%s%N)
it_sw port del lab "$id" >/dev/null || it_fail "port del $id failed"
deadline=$((t0 + 10 * 1000000000))
while _it_alive "$PID"; do
    (($(date +%s%N) < deadline)) || it_fail "switchd still running 10 s after its last port went"
    sleep 0.05
done
t1=$(date +%s%N)
rc=0
wait "$PID" || rc=$?
ms=$(((t1 - t0) / 1000000))
[[ $rc -eq 0 ]] || it_fail "switchd exited with status $rc when idle"
((ms >= 1500 && ms <= 6000)) || it_fail "switchd exited ${ms} ms after its last port went (expected about 2 s)"
it_log "ok: switchd exited (status 0) ${ms} ms after its last port went"
grep -q 'exit-when-idle' "$SWITCHD_LOG" || it_fail "switchd did not log why it exited"
ip -n "$NS" link show "$TAP" >/dev/null 2>&1 && it_fail "$TAP still exists after switchd exited"
[[ -S "$SOCK" ]] || it_fail "switchd removed the socket file it did not create"
it_log "ok: the TAP went with switchd; the socket file systemd-socket-activate made is still there"
it_pass
