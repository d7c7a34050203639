#!/usr/bin/env bash
# Control socket lockout: with the socket opened to everyone (0666), users who hold connections open
# cannot lock root out. One uid is held to 8 connections; the ones beyond are refused with a message
# that `switchd status` run as that user prints (not `write: Broken pipe`), and the refusal is logged at
# most once a second per uid, with a count of the ones held back. Seven uids together get no more than
# 56 of the 64 slots, and root's `switchd status` still works while they hold them. A connection that
# says nothing is closed after about 5 s, and its slot is free again. The users are bare numeric uids
# (setpriv --reuid=65534 ... --clear-groups), with no entry in /etc/passwd: nothing on the host changes.
source "$(dirname "$0")/lib.sh"

it_require_root
it_require_cmd setpriv
it_require_switchd
[[ -x "$PY" ]] || command -v "$PY" >/dev/null || it_skip "needs python3"

as_uid() {  # as_uid UID COMMAND...: run with that uid and gid and no supplementary groups
    local uid=$1
    shift
    setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}

# The users need to reach the client binary, the holder script and the socket.
chmod 0755 "$IT_TMP"
mkdir -p "$IT_TMP/bin"
cp "$IT_DIR/hold_connections.py" "$IT_TMP/bin/"
chmod 0755 "$IT_TMP/bin" "$IT_TMP/bin/hold_connections.py"
CLIENT=$SWITCHD
if ! as_uid 65534 test -x "$CLIENT"; then
    cp "$SWITCHD" "$IT_TMP/bin/switchd"
    CLIENT=$IT_TMP/bin/switchd
fi
HOLD=$IT_TMP/bin/hold_connections.py

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
SOCK=$RUN_DIR/control.sock
chmod 0755 "$RUN_DIR"
chmod 0666 "$SOCK"

# hold UID N [MODE]: run hold_connections.py as UID in the background (killed by PID at exit); sets
# HOLD_PID and HOLD_OUT, and waits for its first line (admitted and refused counts).
hold() {
    local uid=$1 n=$2 mode=${3:-hold}
    HOLD_OUT=$IT_TMP/hold-$uid-$mode.out
    it_bg "$HOLD_OUT" setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$PY" "$HOLD" "$SOCK" "$n" "$mode"
    HOLD_PID=$IT_LAST_PID
    it_wait_until 15 "hold_connections.py as uid $uid reports" grep -q admitted "$HOLD_OUT"
}

# first_line_field FILE EXPR: a Python expression over the first JSON line of FILE (as `j`).
first_line_field() {
    "$PY" -c 'import json,sys; j=json.loads(open(sys.argv[1]).readline()); print(eval(sys.argv[2]))' "$1" "$2"
}

refusals_logged() {  # refusals_logged UID: log lines for refused connections of UID
    grep -c "refused a connection from uid $1 " "$SWITCHD_LOG" || true
}

# --- One uid: 8 connections, no more.
hold 65534 10
HOLDER_65534=$HOLD_PID
[[ "$(first_line_field "$HOLD_OUT" 'j["admitted"], j["refused"]')" == "(8, 2)" ]] ||
    it_fail "uid 65534 opening 10 connections: $(head -n 1 "$HOLD_OUT") (expected 8 admitted, 2 refused)"
[[ "$(first_line_field "$HOLD_OUT" 'j["reasons"]')" == "['too many control connections for uid 65534 (limit 8)']" ]] ||
    it_fail "refusal of the 9th connection of uid 65534: $(head -n 1 "$HOLD_OUT")"
it_log "ok: uid 65534 holds 8 connections; its 9th and 10th were refused: $(head -n 1 "$HOLD_OUT")"

rc=0
out=$(as_uid 65534 "$CLIENT" status --run-dir "$RUN_DIR" 2>&1) || rc=$?
((rc != 0)) || it_fail "status as uid 65534 over its cap succeeded: $out"
[[ "$out" == "switchd: too many control connections for uid 65534 (limit 8)" ]] ||
    it_fail "status as uid 65534 over its cap printed: $out"
it_log "ok: status as uid 65534 over its cap exits $rc and prints: $out"

n=$(refusals_logged 65534)
((n >= 1)) || it_fail "no log line for the refused connections of uid 65534"
grep -q "refused a connection from uid 65534 (pid [0-9]*): too many control connections for uid 65534 (limit 8)" "$SWITCHD_LOG" ||
    it_fail "the log line for uid 65534 does not name the uid and the reason: $(grep 'uid 65534' "$SWITCHD_LOG" | head -n 3)"
it_log "ok: refusals logged: $(grep -m 1 'refused a connection from uid 65534' "$SWITCHD_LOG")"

# --- Rate limit: a burst of 30 refusals within a second or so gets at most 2 lines, then the next
# line (a second later) says how many were held back.
sleep 1.1
before=$(refusals_logged 65534)
as_uid 65534 "$PY" "$HOLD" "$SOCK" 30 probe >"$IT_TMP/burst.out" || it_fail "the burst of connections failed"
[[ "$(first_line_field "$IT_TMP/burst.out" 'j["refused"]')" == 30 ]] || it_fail "burst as uid 65534: $(cat "$IT_TMP/burst.out")"
after=$(refusals_logged 65534)
((after - before >= 1 && after - before <= 2)) ||
    it_fail "30 refusals in a burst made $((after - before)) log lines (expected 1 or 2)"
sleep 1.1
as_uid 65534 "$CLIENT" status --run-dir "$RUN_DIR" >/dev/null 2>&1 && it_fail "status as uid 65534 over its cap succeeded"
grep -Eq "uid 65534 .*\(and [0-9]+ more since the last line for this uid\)|refused [0-9]+ more connections? from uid 65534" "$SWITCHD_LOG" ||
    it_fail "no log line counts the refusals held back: $(grep 'uid 65534' "$SWITCHD_LOG" | tail -n 3)"
it_log "ok: 30 refusals made $((after - before)) log line(s); then: $(grep -E 'more (since|connection)' "$SWITCHD_LOG" | tail -n 1)"

# --- Seven uids fill the unprivileged share (56); the 8 reserved slots stay root's.
for uid in 65533 65532 65531 65530 65529 65528; do
    hold "$uid" 8
    [[ "$(first_line_field "$HOLD_OUT" 'j["admitted"]')" == 8 ]] || it_fail "uid $uid holding 8: $(head -n 1 "$HOLD_OUT")"
done
it_log "ok: uids 65528-65534 hold 56 connections"
rc=0
out=$(as_uid 65527 "$CLIENT" status --run-dir "$RUN_DIR" 2>&1) || rc=$?
((rc != 0)) || it_fail "status as uid 65527 succeeded with 56 unprivileged connections open: $out"
[[ "$out" == "switchd: too many control connections from unprivileged users (limit 56; 8 more are kept for root and controlGroup)" ]] ||
    it_fail "status as uid 65527 printed: $out"
grep -q "refused a connection from uid 65527 " "$SWITCHD_LOG" || it_fail "the refusal of uid 65527 was not logged"
it_log "ok: a new uid is refused: $out"

it_sw status >"$IT_TMP/status-root.txt" 2>&1 || it_fail "root's status failed with 56 connections held: $(cat "$IT_TMP/status-root.txt")"
grep -q lab "$IT_TMP/status-root.txt" || it_fail "root's status does not show network lab: $(cat "$IT_TMP/status-root.txt")"
# Several at once, as a script might: all of them fit in the reserved slots.
pids=()
for i in 1 2 3 4 5 6; do
    it_sw status --json >"$IT_TMP/status-root-$i.json" 2>&1 &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[i]}" || it_fail "root's parallel status $((i + 1)) failed: $(cat "$IT_TMP/status-root-$((i + 1)).json")"
done
it_log "ok: root's status works (once, then 6 at a time) while users hold 56 connections"

# --- Idle timeout: uid 65534's holder goes; a connection that says nothing is closed after about 5 s.
it_kill "$HOLDER_65534"
it_wait_until 10 "uid 65534's slots to come back" as_uid 65534 "$CLIENT" status --run-dir "$RUN_DIR"
hold 65534 3 silent
[[ "$(first_line_field "$HOLD_OUT" 'j["admitted"]')" == 3 ]] || it_fail "uid 65534 opening 3 silent connections: $(head -n 1 "$HOLD_OUT")"
it_wait_until 40 "the silent holder's verdict" sh -c "[ \$(wc -l <'$HOLD_OUT') -ge 2 ]"
verdict=$(sed -n 2p "$HOLD_OUT")
secs=$("$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j.get("seconds", -1))' "$verdict")
"$PY" -c 'import sys; s=float(sys.argv[1]); sys.exit(0 if 4.0 <= s <= 8.0 else 1)' "$secs" ||
    it_fail "idle connections: $verdict (expected all 3 closed after about 5 s)"
it_log "ok: 3 silent connections closed after ${secs} s: $verdict"
# The holders that keep talking are still connected, and the silent ones' slots are free.
_it_alive "$HOLD_PID" && it_fail "the silent holder did not exit"
as_uid 65534 "$CLIENT" status --run-dir "$RUN_DIR" >/dev/null || it_fail "status as uid 65534 after its idle connections closed failed"
it_sw status >/dev/null || it_fail "root's status failed at the end"
it_log "ok: uid 65534 connects again after the idle close"
it_pass
