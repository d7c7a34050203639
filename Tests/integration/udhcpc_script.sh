#!/bin/sh
# Tests/integration/udhcpc_script.sh: the event script the integration tests give busybox
# udhcpc (`udhcpc -s`). It records udhcpc's variables for each event in "$UDHCPC_OUT.EVENT"
# (one NAME=VALUE a line; the environment passes UDHCPC_OUT through `ip netns exec`) and, like
# a minimal default.script, applies the address, MTU and default route so that the client can talk on it.
out=${UDHCPC_OUT:?UDHCPC_OUT is not set}
event=$1
{
    echo "event=$event"
    for v in interface ip subnet mask broadcast router dns domain mtu hostname lease serverid message; do
        eval "echo \"$v=\${$v:-}\""
    done
} >"$out.$event.tmp" && mv "$out.$event.tmp" "$out.$event"
case $event in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound | renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-$subnet}" dev "$interface"
    [ -n "${mtu:-}" ] && ip link set "$interface" mtu "$mtu"
    # The first router becomes the default route (shared mode reaches the outside through it).
    [ -n "${router:-}" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
