# Tests/integration/guest/guest.sh: TCG test guests for the integration tests and bench/qemu.sh.
# Source it after lib.sh. A guest is the Debian cloud kernel plus the busybox initramfs of
# guest/build-initramfs.sh; it runs the scenario its kernel command line names (guest/init) and
# reports on its serial console, which goes to $IT_TMP/NAME.console.
#
#   guest_image                         build or reuse the image (GUEST_DIR); skip if impossible
#   guest_net vhost SOCK                the next guest's NIC: vhost-user client of SOCK, reconnect=1
#   guest_net dgram LOCAL REMOTE        ... -netdev dgram, unix LOCAL (its own) to REMOTE
#   guest_net tap IFNAME                ... -netdev tap (vnet_hdr on, the default), vhost=off
#   guest_start NAME MAC 'sw.role=...'  start QEMU (killed at exit); GUEST_PREFIX=(ip netns exec NS)
#                                       runs it elsewhere, GUEST_DEV_OPTS=,host_mtu=9000 adds to -device
#                                       of every guest, VHOST_NIC_OPTS / TAP_NIC_OPTS to vhost / tap NICs only
#   guest_wait NAME REGEX [TIMEOUT]     until a console line matches (fails if QEMU exits first)
#   guest_finish NAME [TIMEOUT]         until the guest's verdict line, then until QEMU exits
#   guest_verdict NAME                  the verdict after `SWITCHD-GUEST-RESULT: `
#   guest_field NAME 'WHAT' KEY         KEY=... of the first `SWITCHD-RESULT WHAT ...` line
#   guest_results NAME                  every `SWITCHD-RESULT` line
#   guest_show NAME                     log the guest's result lines; guest_tail NAME on failure
#
# Every guest runs with `-accel tcg` (KVM is not used: it hangs on the hosts this runs on) and its
# memory in a shared memfd (`-object memory-backend-memfd,share=on -numa node,memdev=mem`), which
# vhost-user needs and the other NICs do not mind, so that every kind runs the same guest.
# Environment: SWITCHD_TEST_CACHE (default /var/cache/switchd-test) holds kernel and image;
# GUEST_MEM (MiB, default 256), GUEST_SMP (vCPUs, default 1).

GUEST_CACHE=${SWITCHD_TEST_CACHE:-/var/cache/switchd-test}
GUEST_MEM=${GUEST_MEM:-256}
GUEST_SMP=${GUEST_SMP:-1}
GUEST_PREFIX=()
GUEST_DEV_OPTS=
GUEST_NET=()
GUEST_NIC_OPTS=
declare -A GUEST_PID=()

guest_image() {
    local rc=0 log=$IT_TMP/guest-image.log
    it_require_cmd qemu-system-x86_64
    GUEST_DIR=$("$IT_DIR/guest/build-initramfs.sh" "$GUEST_CACHE" 2>"$log") || rc=$?
    sed 's/^/    /' "$log" >&2
    case $rc in
    0) ;;
    2) it_skip "$(tail -n 1 "$log" | sed 's/^[a-z-]*\.sh: //')" ;;
    *) it_fail "guest/build-initramfs.sh failed (exit $rc)" ;;
    esac
    it_log "guest image: $GUEST_DIR (kernel $(cat "$GUEST_DIR/version"), features: $(paste -sd' ' "$GUEST_DIR/features"))"
}

guest_net() {
    case $1 in
    # vectors=0: QEMU 7.2 without KVM crashes (SIGSEGV in msix_set_vector_notifiers, from
    # vhost_net_start) when a vhost-user NIC has MSI-X; INTx works (README "QEMU with vhost-user").
    vhost) GUEST_NET=(-chardev "socket,id=c0,path=$2,reconnect=1" -netdev vhost-user,id=n0,chardev=c0)
        GUEST_NIC_OPTS=,vectors=0${VHOST_NIC_OPTS:-} ;;
    dgram) GUEST_NET=(-netdev "dgram,id=n0,local.type=unix,local.path=$2,remote.type=unix,remote.path=$3") ;;
    tap) GUEST_NET=(-netdev "tap,id=n0,ifname=$2,script=no,downscript=no,vhost=off")
        GUEST_NIC_OPTS=${TAP_NIC_OPTS:-} ;;
    *) it_fail "guest_net: unknown kind $1" ;;
    esac
}

guest_start() {
    local name=$1 mac=$2 append=$3
    [[ -n "${GUEST_DIR:-}" ]] || it_fail "guest_start before guest_image"
    ((${#GUEST_NET[@]} > 0)) || it_fail "guest_start $name without guest_net"
    : >"$IT_TMP/$name.console"
    it_bg "$IT_TMP/$name.qemu.log" ${GUEST_PREFIX[@]+"${GUEST_PREFIX[@]}"} \
        qemu-system-x86_64 -accel tcg -smp "$GUEST_SMP" -nodefaults -display none -no-reboot \
        -object "memory-backend-memfd,id=mem,size=${GUEST_MEM}M,share=on" -numa node,memdev=mem -m "$GUEST_MEM" \
        -serial "file:$IT_TMP/$name.console" \
        -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.gz" \
        -append "console=ttyS0 quiet panic=-1 $append" \
        "${GUEST_NET[@]}" -device "virtio-net-pci,netdev=n0,mrg_rxbuf=on,mac=$mac$GUEST_NIC_OPTS$GUEST_DEV_OPTS"
    GUEST_PID[$name]=$IT_LAST_PID
    GUEST_NET=()
    GUEST_NIC_OPTS=
    it_log "guest $name (pid $IT_LAST_PID, mac $mac): $append"
}

# The console without carriage returns.
guest_lines() { tr -d '\r' <"$IT_TMP/$1.console"; }

guest_tail() {
    local name=$1
    echo "[$TEST_NAME] --- guest $name console (last ${GUEST_TAIL_LINES:-40} lines) ---" >&2
    guest_lines "$name" | tail -n "${GUEST_TAIL_LINES:-40}" >&2
    echo "[$TEST_NAME] --- guest $name qemu stderr ---" >&2
    cat "$IT_TMP/$name.qemu.log" >&2
}

guest_wait() {
    local name=$1 re=$2 timeout=${3:-${IT_GUEST_TIMEOUT:-120}} pid=${GUEST_PID[$1]} deadline
    deadline=$(($(date +%s) + timeout))
    until guest_lines "$name" | grep -qE "$re"; do
        if ! _it_alive "$pid"; then
            sleep 0.2 # the last console bytes
            guest_lines "$name" | grep -qE "$re" && return 0
            guest_tail "$name"
            it_fail "guest $name: QEMU exited before its console showed /$re/"
        fi
        if (($(date +%s) > deadline)); then
            guest_tail "$name"
            it_fail "guest $name: no console line /$re/ within ${timeout}s"
        fi
        sleep 0.2
    done
}

guest_finish() {
    local name=$1
    guest_wait "$name" '^SWITCHD-GUEST-RESULT:' "${2:-${IT_GUEST_TIMEOUT:-120}}"
    it_wait_until 15 "guest $name: QEMU exits after the guest powers off" sh -c "! kill -0 ${GUEST_PID[$name]}"
    wait "${GUEST_PID[$name]}" 2>/dev/null || true
}

guest_verdict() { guest_lines "$1" | sed -n 's/^SWITCHD-GUEST-RESULT: //p' | head -n 1; }

guest_results() { guest_lines "$1" | grep '^SWITCHD-RESULT ' || true; }

guest_field() {
    guest_lines "$1" | grep "^SWITCHD-RESULT $2 " | head -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

guest_show() {
    guest_lines "$1" | grep -E '^(udhcpc|SWITCHD-RESULT|SWITCHD-GUEST-RESULT)' | grep -v '^udhcpc: \(lease\|serverid\|subnet\|event\)' |
        sed "s/^/    $1: /" >&2 || true
}
