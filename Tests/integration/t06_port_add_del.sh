#!/usr/bin/env bash
# Ports at run time: `switchd port add NET --tap NAME --netns NS` prints an id, the TAP
# appears in NS and forwards; `switchd port del NET ID` removes the port and the TAP.
source "$(dirname "$0")/lib.sh"

it_require_netns
it_require_cmd ping
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
    ports:
      - {tap: $TAP_A, netns: $NS_A}
EOF
it_start_switchd "$IT_TMP/switchd.yaml"
it_tap_ready "$NS_A" "$TAP_A" 10.77.0.61/24

id=$(it_sw port add lab --tap "$TAP_B" --netns "$NS_B") || it_fail "switchd port add failed: $id"
id=$(echo "$id" | tail -n 1 | tr -d '[:space:]')
[[ -n "$id" ]] || it_fail "switchd port add printed no port id"
it_log "ok: port add printed id $id"
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.62/24
it_ping "$NS_A" 10.77.0.62 3
it_ping "$NS_B" 10.77.0.61 3
n=$(it_json "len([p for p in ports('lab') if p.get('id') == '$id'])")
[[ "$n" == 1 ]] || { it_status >&2; it_fail "status does not list port $id"; }

out=$(it_sw port del lab "$id" 2>&1) || it_fail "switchd port del lab $id failed: $out"
it_wait_until 10 "$TAP_B gone from $NS_B after port del" sh -c "! ip -n '$NS_B' link show '$TAP_B'"
it_wait_until 5 "port $id gone from status" it_json_is "len([p for p in ports('lab') if p.get('id') == '$id'])" 0
it_log "ok: port del removed the port and its TAP"

# Deleting it again is an error with a non-zero exit status.
if out=$(it_sw port del lab "$id" 2>&1); then
    it_fail "a second port del of $id succeeded: $out"
fi
it_log "ok: deleting an unknown port fails: $out"

# The remaining port still works, and a port can be added back under the same name.
id2=$(it_sw port add lab --tap "$TAP_B" --netns "$NS_B" | tail -n 1 | tr -d '[:space:]')
it_tap_ready "$NS_B" "$TAP_B" 10.77.0.62/24
it_ping "$NS_A" 10.77.0.62 2
it_log "ok: re-added as $id2"
it_pass
