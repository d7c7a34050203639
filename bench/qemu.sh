#!/usr/bin/env bash
# bench/qemu.sh: iperf3 TCP with QEMU guests, through switchd's vhost-user ports, through
# switchd's `-netdev dgram` socket ports and through QEMU `-netdev tap` on a Linux bridge.
#
# Paths, set up side by side in the same run, each its own world with the same guests (the
# test guest of Tests/integration/guest/build-initramfs.sh: Debian's cloud kernel, busybox and
# iperf3; QEMU -accel tcg, GUEST_SMP vCPUs, GUEST_MEM MiB in a shared memfd, virtio-net-pci):
#   vhost   switchd (release build, SWITCHD) network `vu`: guests on RUNDIR/vu/vhost-user.sock
#   dgram   the same switchd, network `dg`: guests on -netdev dgram to RUNDIR/dg/dgram.sock
#   tap     QEMU -netdev tap,vhost=off (vnet_hdr on, QEMU's default) on a Linux bridge in a
#           namespace of its own; no switchd
# In each world a namespace joins too (a `tap` port of switchd; a veth on the bridge), and a
# serving guest S runs iperf3 -s for the whole run. Tests, single TCP stream each:
#   ns->guest     iperf3 -c S from the namespace (the guest receives)
#   guest->ns     iperf3 -c S -R from the namespace (the guest sends: TSO on vhost and tap)
#   guest->guest  a client guest booted for the run, iperf3 -c S from it
# BENCH_REPS rounds (default 3), interleaved across paths, BENCH_SECONDS per run (default 10);
# the table has medians, the serving guest's QEMU CPU use on the host during the run, and the
# ratios vhost/dgram and vhost/tap. BENCH_TESTS (default "ns-guest guest-ns guest-guest") picks
# the tests; GUEST_STATS=N makes the serving guests print their CPU and interrupt counters every
# N s to their console (saved as PATH-serve.console). Raw results go to bench/results/qemu-TIMESTAMP/ (git-ignored).
# A path that cannot be set up (e.g. a switchd without the vhost-user backend) is left out with a
# note, and its columns read n/a.
#
#   BENCH_SECONDS=10 BENCH_REPS=3 BENCH_PATHS="vhost dgram tap" GUEST_SMP=1 GUEST_MEM=256 bench/qemu.sh
#
# Needs root. Everything it creates is removed at exit, also on Ctrl-C (Tests/integration/lib.sh).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SWITCHD=${SWITCHD:-.build/release/switchd}
export IT_LOG_LEVEL=${IT_LOG_LEVEL:-info}
SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
PATHS=${BENCH_PATHS:-vhost dgram tap}
TESTS=${BENCH_TESTS:-ns-guest guest-ns guest-guest}
# shellcheck source=../Tests/integration/lib.sh
source "$ROOT/Tests/integration/lib.sh"
# shellcheck source=../Tests/integration/guest/guest.sh
source "$ROOT/Tests/integration/guest/guest.sh"
TEST_NAME=bench

it_require_netns
it_require_cmd iperf3 qemu-system-x86_64
guest_image
grep -qx iperf3 "$GUEST_DIR/features" || it_fail "the guest image has no iperf3 (install iperf3)"
OUT=$ROOT/bench/results/qemu-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
: >"$OUT/runs.tsv"

declare -A NS SUBNET
SUBNET=([vhost]=10.78.21 [dgram]=10.78.22 [tap]=10.78.23)
declare -A TAG
TAG=([vhost]=1 [dgram]=2 [tap]=3)
BR= # the bridge namespace (tap path)

# have PATH: whether the path's software is here.
have() {
    case $1 in
    vhost | dgram) [[ -x "$SWITCHD" ]] || { it_log "no switchd at $SWITCHD (make release): leaving out $1"; return 1; } ;;
    tap) true ;;
    *) it_fail "unknown path $1 (known: vhost dgram tap)" ;;
    esac
}

SWITCHD_UP=
# One switchd for both socket paths: networks vu and dg, each with a tap port to a namespace.
start_switchd() {
    [[ -n "$SWITCHD_UP" ]] && return 0
    local n
    NS[vhost]=$(it_name vn) NS[dgram]=$(it_name dn)
    it_netns "${NS[vhost]}"
    it_netns "${NS[dgram]}"
    cat >"$IT_TMP/switchd.yaml" <<EOF
networks:
  vu:
    mode: isolated
    subnet: ${SUBNET[vhost]}.0/24
    gateway: ${SUBNET[vhost]}.254
    ports:
      - {tap: $(it_name vt), netns: ${NS[vhost]}}
  dg:
    mode: isolated
    subnet: ${SUBNET[dgram]}.0/24
    gateway: ${SUBNET[dgram]}.254
    ports:
      - {tap: $(it_name dt), netns: ${NS[dgram]}}
EOF
    it_start_switchd "$IT_TMP/switchd.yaml"
    it_tap_ready "${NS[vhost]}" "$(it_name vt)" "${SUBNET[vhost]}.2/24"
    it_tap_ready "${NS[dgram]}" "$(it_name dt)" "${SUBNET[dgram]}.2/24"
    SWITCHD_UP=1
}

# nic PATH NAME TAPSUFFIX: the next guest's NIC on PATH (tap: QEMU creates TAP it_name TAPSUFFIX
# in the bridge namespace; attach_tap puts it on the bridge once it exists).
nic() {
    local p=$1 name=$2
    GUEST_PREFIX=()
    case $p in
    vhost) guest_net vhost "$RUN_DIR/vu/vhost-user.sock" ;;
    dgram) guest_net dgram "$IT_TMP/$name.sock" "$RUN_DIR/dg/dgram.sock" ;;
    tap)
        guest_net tap "$(it_name "$3")"
        GUEST_PREFIX=(ip netns exec "$BR")
        ;;
    esac
}

attach_tap() {
    local tap
    tap=$(it_name "$1")
    it_wait_link "$BR" "$tap"
    ip -n "$BR" link set "$tap" master br0 up
}

setup_vhost() {
    start_switchd
    if ! it_wait_until_quiet 10 test -S "$RUN_DIR/vu/vhost-user.sock"; then
        it_log "switchd does not listen on $RUN_DIR/vu/vhost-user.sock (no vhost-user backend in this build): leaving out vhost"
        return 1
    fi
}

setup_dgram() { start_switchd; }

setup_tap() {
    BR=$(it_name br)
    NS[tap]=$(it_name tn)
    it_netns "$BR"
    it_netns "${NS[tap]}"
    ip -n "$BR" link add br0 type bridge
    ip -n "$BR" link set br0 up
    ip link add veth0 netns "${NS[tap]}" type veth peer name pn netns "$BR"
    ip -n "$BR" link set pn master br0 up
    it_addr "${NS[tap]}" veth0 "${SUBNET[tap]}.2/24"
}

# it_wait_until without failing the run: 0 once COMMAND succeeds, 1 after TIMEOUT s.
it_wait_until_quiet() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) > deadline)) && return 1
        sleep 0.1
    done
}

# cpu_ticks PID: user+system clock ticks of a process so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

ready=()
for p in $PATHS; do
    have "$p" || continue
    "setup_$p" || continue
    nic "$p" "s$p" ts
    guest_start "s$p" "52:54:00:be:0${TAG[$p]}:01" "sw.role=serve sw.hostname=s$p sw.ip=${SUBNET[$p]}.11/24${GUEST_STATS:+ sw.stats=$GUEST_STATS}"
    [[ "$p" == tap ]] && attach_tap ts
    ready+=("$p")
done
((${#ready[@]} > 0)) || it_fail "no path could be set up"
for p in "${ready[@]}"; do
    guest_wait "s$p" '^SWITCHD-RESULT ready' 120
    it_ping "${NS[$p]}" "${SUBNET[$p]}.11" 2
done

# record PATH TEST REP GBPS RETRANSMITS GUEST_CPU% QEMU_CPU%
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/runs.tsv"; }

# ns_run PATH TEST REP [-R]: iperf3 from the namespace to the serving guest.
ns_run() {
    local p=$1 t=$2 r=$3 f=$OUT/$1-$2-r$3.json pid=${GUEST_PID[s$1]} t0 t1
    shift 3
    t0=$(cpu_ticks "$pid")
    if it_iperf_client "${NS[$p]}" "${SUBNET[$p]}.11" "$SECS" "$f" "$@"; then
        t1=$(cpu_ticks "$pid")
        read -r g rt gc < <("$PY" -c 'import json,sys
e=json.load(open(sys.argv[1]))["end"]
print("%.3f %d %.1f" % (e["sum_received"]["bits_per_second"]/1e9, e["sum_sent"].get("retransmits",0), e["cpu_utilization_percent"]["remote_total"]))' "$f")
        record "$p" "$t" "$r" "$g" "$rt" "$gc" "$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * d / hz / s }')"
        it_log "$p $t run $r: $g Gbit/s"
    else
        it_log "warning: $p $t run $r failed"
    fi
}

# gg_run PATH REP: a client guest boots, runs iperf3 -c S for SECS, powers off. The serving
# guest's QEMU CPU is sampled from the client's `guest: iperf3 -c` console line to its result.
gg_run() {
    local p=$1 r=$2 name=c$1$2 pid=${GUEST_PID[s$1]} line t0 t1 n0 n1 qc=-
    # A fresh MAC and address per round: the last round's port may still hold them for a moment
    # (port security binds both to a port until it goes).
    nic "$p" "$name" "tc$r"
    guest_start "$name" "52:54:00:be:0${TAG[$p]}:$(printf '%02x' $((16 + r)))" \
        "sw.role=client sw.hostname=$name sw.ip=${SUBNET[$p]}.$((20 + r))/24 sw.peer=${SUBNET[$p]}.11 sw.count=1 sw.wait=30 sw.seconds=$SECS"
    [[ "$p" == tap ]] && attach_tap "tc$r"
    guest_wait "$name" '^(guest: iperf3 -c|SWITCHD-GUEST-RESULT)' 120
    t0=$(cpu_ticks "$pid") n0=$(date +%s%N)
    guest_wait "$name" '^(SWITCHD-RESULT iperf3|SWITCHD-GUEST-RESULT)' $((SECS + 60))
    t1=$(cpu_ticks "$pid") n1=$(date +%s%N)
    guest_finish "$name" 30
    guest_lines "$name" >"$OUT/$p-guest-guest-r$r.console"
    line=$(guest_results "$name" | grep '^SWITCHD-RESULT iperf3 ' | head -n 1)
    if [[ "$line" == *bits_per_second=* ]]; then
        local -A kv=()
        local w g
        for w in $line; do [[ "$w" == *=* ]] && kv[${w%%=*}]=${w#*=}; done
        g=$(awk -v b="${kv[bits_per_second]}" 'BEGIN { printf "%.3f", b / 1e9 }')
        qc=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v ns=$((n1 - n0)) 'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')
        # The guest CPU column: the client guest's own iperf3 figure (cpu_local).
        record "$p" guest-guest "$r" "$g" "${kv[retransmits]}" "${kv[cpu_local]}" "$qc"
        it_log "$p guest-guest run $r: $g Gbit/s"
    else
        it_log "warning: $p guest-guest run $r: $(guest_verdict "$name") ${line:-no iperf3 result}"
    fi
}

it_log "paths: ${ready[*]}; ${SECS}s per run, $REPS rounds; guests: TCG, $GUEST_SMP vCPU, $GUEST_MEM MiB; net.unix.max_dgram_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen); raw results in $OUT"
for ((r = 1; r <= REPS; r++)); do
    for p in "${ready[@]}"; do
        for t in $TESTS; do
            case $t in
            ns-guest) ns_run "$p" ns-guest "$r" ;;
            guest-ns) ns_run "$p" guest-ns "$r" -R ;;
            guest-guest) gg_run "$p" "$r" ;;
            *) it_fail "unknown test $t (known: ns-guest guest-ns guest-guest)" ;;
            esac
        done
    done
done
[[ -n "$SWITCHD_UP" ]] && { it_status >"$OUT/switchd-status.json" || true; }
for p in "${ready[@]}"; do guest_lines "s$p" >"$OUT/$p-serve.console" || true; done

"$PY" - "$OUT" "$PATHS" "$GUEST_SMP" "$(nproc)" <<'PY' | tee "$OUT/table.txt"
import statistics, sys
out, paths, smp, ncpu = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
tests = ["ns-guest", "guest-ns", "guest-guest"]
runs = {}
for line in open(out + "/runs.tsv"):
    p, t, r, g, rt, gc, qc = line.rstrip("\n").split("\t")
    runs.setdefault((p, t), []).append((float(g), int(float(rt or 0)), float(gc or 0), None if qc == "-" else float(qc)))
med = {}
print()
print("%-6s %-12s %7s %12s %5s %10s %10s" % ("path", "test", "Gbit/s", "retransmits", "runs", "guest CPU%", "QEMU CPU%"))
for p in paths:
    for t in tests:
        v = runs.get((p, t))
        if not v:
            print("%-6s %-12s %7s" % (p, t, "n/a"))
            continue
        g = statistics.median(x[0] for x in v)
        med[(p, t)] = g
        q = [x[3] for x in v if x[3] is not None]
        print("%-6s %-12s %7.2f %12d %5d %10.0f %10s" % (p, t, g, statistics.median(x[1] for x in v), len(v),
              statistics.median(x[2] for x in v), "%.0f" % statistics.median(q) if q else "-"))
print()
print("%-12s %10s %10s %12s" % ("ratio", *tests))
for other in ("dgram", "tap"):
    cells = []
    for t in tests:
        a, b = med.get(("vhost", t)), med.get((other, t))
        cells.append("%.2f" % (a / b) if a is not None and b else "n/a")
    print("%-12s %10s %10s %12s" % ("vhost/" + other, *cells))
print()
qs = [x[3] for v in runs.values() for x in v if x[3] is not None]
print("The guests are CPU-bound under TCG (-accel tcg, %s vCPU each, no KVM; %s host CPUs): the serving" % (smp, ncpu))
print("guest's QEMU used %s of a host CPU during the runs ('QEMU CPU%%', 100 = one CPU; 'guest CPU%%' is" %
      ("%.0f-%.0f %%" % (min(qs), max(qs)) if qs else "?"))
print("iperf3's figure inside the serving guest for ns tests, inside the client guest for guest-guest).")
print("The rates measure the emulated guests as much as the switch; compare paths within one run only.")
print("A row well below 100 in 'QEMU CPU%' is limited elsewhere: on dgram, one datagram per frame of at")
print("most the MTU and net.unix.max_dgram_qlen (in the log) bound the rate before the guest's CPU does.")
PY
echo "raw results: $OUT"
