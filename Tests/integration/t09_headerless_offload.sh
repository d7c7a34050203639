#!/usr/bin/env bash
# Header-less offload peers (krunkit `offloading=on`, vfkit `VFKT`): a peer on
# dgram-offload.sock and a peer connected to dgram.sock that sent `VFKT` send TCPv4
# super-frames with only the pseudo-header sum in the checksum field; a plain dgram.sock peer
# gets MTU-size segments with valid checksums that reassemble the payload, the VFKT peer gets
# its frames from dgram.sock, and the two offload peers exchange super-frames with complete
# checksums (headerless_peers.py does the frame-level checks). `status` shows the segmenting
# on the plain port and `headerless` offloads on the two others.
source "$(dirname "$0")/lib.sh"

it_require_switchd
"$PY" -c 'import scapy.all' >/dev/null 2>&1 || it_skip "needs scapy for $PY (python3-scapy)"

cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  lab:
    mode: isolated
    subnet: 10.77.0.0/24
    mtu: 1500
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_wait_socket "$RUN_DIR/lab/dgram.sock"
it_wait_socket "$RUN_DIR/lab/dgram-offload.sock"

it_bg "$IT_TMP/peers.log" "$PY" "$IT_DIR/headerless_peers.py" "$RUN_DIR/lab" "$IT_TMP"
PEERS=$IT_LAST_PID
it_wait_until 30 "the peers script finishes its checks" grep -qE '^PEERS-(OK|FAIL)' "$IT_TMP/peers.log"
sed "s/^/[$TEST_NAME]   peers: /" "$IT_TMP/peers.log" >&2
grep -q '^PEERS-OK' "$IT_TMP/peers.log" || it_fail "$(grep -m1 '^PEERS-FAIL' "$IT_TMP/peers.log")"
_it_alive "$PEERS" || it_fail "the peers script exited before the status checks"

it_json 'dump(ports("lab"))' >"$IT_TMP/ports.json"
port_at() { echo "[p for p in kind('lab', 'dgram') if p.get('peer') == '$IT_TMP/$1.sock']"; }
n=$(it_json "len($(port_at p1)) + len($(port_at p2)) + len($(port_at p3))")
[[ "$n" == 3 ]] || { cat "$IT_TMP/ports.json" >&2; it_fail "status lists $n of the 3 dgram peers by their paths"; }
seg2=$(it_json "$(port_at p2)[0].get('segmented', -1)")
sf2=$(it_json "$(port_at p2)[0].get('superFrames', -1)")
it_log "plain p2's port: segmented $seg2, superFrames $sf2"
((seg2 >= 2)) || { cat "$IT_TMP/ports.json" >&2; it_fail "p2's port shows $seg2 segmented super-frames, expected >= 2 (from p1 and p3)"; }
((sf2 == 0)) || { cat "$IT_TMP/ports.json" >&2; it_fail "p2 (plain dgram) was sent $sf2 super-frames whole"; }
for p in p1 p3; do
    off=$(it_json "$(port_at $p)[0].get('offloads', [])")
    it_log "$p's port: offloads $off, segmented $(it_json "$(port_at $p)[0].get('segmented', -1)"), superFrames $(it_json "$(port_at $p)[0].get('superFrames', -1)")"
    [[ "$off" == *headerless* ]] || { cat "$IT_TMP/ports.json" >&2; it_fail "$p's port does not list the headerless offload: $off"; }
done
off2=$(it_json "$(port_at p2)[0].get('offloads', [])")
[[ "$off2" != *headerless* ]] || it_fail "plain p2's port lists headerless offloads: $off2"
it_log "ok: status shows segmenting for the plain peer and headerless offloads for the others"
it_pass
