#!/usr/bin/env bash
# bench/pps.sh: small frames per second through switchd and its peers (docs/DESIGN.md §9
# "Small packets"; issue 13 part 2).
#
# Worlds, set up side by side as bench/iperf.sh names them (bench/worlds.sh), each a pair of
# namespaces A (sender) and B (receiver) joined through one switch:
#   switchd  two `tap` ports of a switchd release build (SWITCHD, default .build/release/switchd),
#            one world per value of SWITCHD_THREADS (default "1 2"), named switchd-tN: N > 1
#            passes `run --threads N`, and is left out (with a log line) when the binary's
#            `run --help` does not list --threads
#   bridge   the Linux bridge, veth pairs
#   ovs      Open vSwitch's userspace datapath (datapath_type=netdev), veth pairs
#   vde      vde_switch, one vde_plug2tap per namespace
# The generator: trafgen in A, one process (-P 1), unpaced, on A's interface, with --no-sock-mem
# and -Q as bench/flood.sh runs it (it leaves socket memory sysctls and IRQ affinities alone).
# Frames are 60 bytes (64 on a wire): destination B's interface MAC, source A's interface MAC,
# the local experimental EtherType 0x88b5 (B's stack drops it as having no handler, no reply),
# zero padding. So the switch forwards them as known unicast, not flooding: before every run
# A pings B, and B's reply teaches the switch B's MAC on B's port (and refreshes it well
# inside any ageing time); A's MAC is learned from the ping and the frames themselves.
#
# A run: trafgen starts, 1 s of warm-up, then BENCH_SECONDS (default 5) of counting, then
# trafgen stops. Counted from interface counters (/sys/class/net/IF/statistics, in each
# namespace): offered = tx_packets + tx_dropped of A's interface (what trafgen handed the
# interface: a TAP counts tx when the switch reads a frame and tx_dropped when its queue is
# full; a veth counts tx when the peer took it and tx_dropped when the peer's backlog was full),
# delivered = rx_packets of B's interface. BENCH_REPS (default 3) runs per world, interleaved
# across worlds. Also the switch's own CPU use during the counted window (utime+stime of its
# processes; 100 = one core; the bridge has none of its own, it forwards in softirq).
#
# The table: median delivered and offered kpps and the drop % per world, the ratio of each
# world's delivered kpps to the best userspace peer (max of vde and ovs) and to the bridge, the
# load average before and after. trafgen spins on one of the machine's cores the whole run: on
# a 2-core machine the switch, the receiving stack and the rest share the other one.
#
# PPS_PIN=1 (the default on a machine with 2 or more cores): trafgen runs on CPU 0 and every
# switch's processes (all their threads) on the other CPUs, so the generator and the switch never
# share a core and the scheduler cannot move them mid-run (on the 2-core test VM runs still
# spread widely: compare within one run). The bridge forwards in trafgen's context on CPU 0
# either way. PPS_PIN=0: no pinning.
#
# PPS_PROFILE=1: afterwards, a perf profile of switchd at its 1-thread limit: trafgen floods
# the switchd-t1 world again and `perf record -g -p PID` samples switchd for PPS_PROFILE_SECONDS
# (default 5); PPS_PROFILE_WORLDS (default switchd-t1) may name more switchd worlds, each
# profiled the same way, e.g. "switchd-t1 switchd-t2"; the reports (`perf report --no-children --sort dso,sym`, a children view of the
# kernel paths, and a kernel/user split by category) go next to the table. Needs perf
# (linux-perf, scripts/deps.sh).
#
#   BENCH_SECONDS=5 BENCH_REPS=3 BENCH_WORLDS="switchd bridge ovs vde" SWITCHD_THREADS="1 2" \
#       PPS_PROFILE=1 bench/pps.sh
#
# Needs root and trafgen (netsniff-ng). Everything it creates (namespaces, interfaces,
# processes, temp files) is removed at exit, also on Ctrl-C (Tests/integration/lib.sh);
# processes are stopped by PID. Results in bench/results/pps-TIMESTAMP/ (git-ignored).
# Other load on the machine shows in the figures: compare worlds within one run.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SWITCHD=${SWITCHD:-.build/release/switchd}
export IT_LOG_LEVEL=${IT_LOG_LEVEL:-info}
SECS=${BENCH_SECONDS:-5}
REPS=${BENCH_REPS:-3}
WORLDS=${BENCH_WORLDS:-switchd bridge ovs vde}
THREADS=${SWITCHD_THREADS:-1 2}
PROFILE=${PPS_PROFILE:-0}
PROFILE_SECS=${PPS_PROFILE_SECONDS:-5}
NCPU=$(nproc)
PIN=${PPS_PIN:-$((NCPU >= 2 ? 1 : 0))}
PROFILE_WORLDS=${PPS_PROFILE_WORLDS:-switchd-t1}
MTU=1500
# shellcheck source=../Tests/integration/lib.sh
source "$ROOT/Tests/integration/lib.sh"
# shellcheck source=worlds.sh
source "$ROOT/bench/worlds.sh"
TEST_NAME=pps

it_require_netns
it_require_cmd trafgen
[[ "$PROFILE" != 1 ]] || it_require_cmd perf
OUT=$ROOT/bench/results/pps-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# The worlds to build: switchd expands to one per thread count.
declare -A SETUP
worlds=()
for w in $WORLDS; do
    case $w in
    switchd)
        [[ -x "$SWITCHD" ]] || { it_log "no switchd at $SWITCHD (make release): leaving out switchd"; continue; }
        for n in $THREADS; do
            if ((n > 1)); then
                # (the help text in a variable: grep -q in a pipe could cut switchd off mid-write)
                help=$("$SWITCHD" run --help 2>&1 || true)
                if [[ "$help" != *--threads* ]]; then
                    it_log "$SWITCHD run --help does not list --threads: leaving out switchd-t$n"
                    continue
                fi
                SETUP[switchd-t$n]="world_switchd switchd-t$n $((10 + n)) --threads $n"
            else
                SETUP[switchd-t$n]="world_switchd switchd-t$n $((10 + n))"
            fi
            worlds+=("switchd-t$n")
        done
        ;;
    bridge | ovs | vde)
        have "$w" || continue
        SETUP[$w]="setup_$w"
        worlds+=("$w")
        ;;
    *) it_fail "unknown world $w (known: switchd bridge ovs vde)" ;;
    esac
done
((${#worlds[@]} > 0)) || it_fail "no world could be set up"

declare -A SRC_MAC DST_MAC
for w in "${worlds[@]}"; do
    ${SETUP[$w]}
    it_ping "${CLIENT_NS[$w]}" "${SERVER_IP[$w]}" 2
    SRC_MAC[$w]=$(it_mac "${CLIENT_NS[$w]}" "${CLIENT_IF[$w]}")
    if [[ "$PIN" == 1 ]]; then
        for p in ${SWITCH_PIDS[$w]:-}; do taskset -a -p -c "1-$((NCPU - 1))" "$p" >/dev/null; done
    fi
    DST_MAC[$w]=$(it_mac "${SERVER_NS[$w]}" "${SERVER_IF[$w]}")
done

# frame W: trafgen's packet config, 60 bytes from A's MAC to B's.
frame() {
    local w=$1 d s
    d=$(sed 's/\([0-9a-f][0-9a-f]\)/0x\1/g; s/:/, /g' <<<"${DST_MAC[$w]}")
    s=$(sed 's/\([0-9a-f][0-9a-f]\)/0x\1/g; s/:/, /g' <<<"${SRC_MAC[$w]}")
    echo "{ $d, $s, c16(0x88b5), fill(0x00, 46) }"
}

# The generator of the world being measured. `ip netns exec` execs, so $! is trafgen's own PID;
# the forks it makes are its children, and all are stopped by PID.
TG_PID=
start_gen() {
    local w=$1
    local pin=()
    [[ "$PIN" != 1 ]] || pin=(taskset -c 0)
    ip netns exec "${CLIENT_NS[$w]}" "${pin[@]}" trafgen -o "${CLIENT_IF[$w]}" -P 1 --no-sock-mem -Q "$(frame "$w")" \
        </dev/null >>"$OUT/trafgen-$w.log" 2>&1 &
    TG_PID=$!
}
stop_gen() {
    local p
    [[ -n "$TG_PID" ]] || return 0
    for p in $(ps -o pid= --ppid "$TG_PID" 2>/dev/null); do it_kill "$p"; done
    it_kill "$TG_PID"
    TG_PID=
}
it_defer stop_gen

# cpu_ticks PID...: their utime + stime so far (fields 14, 15 of /proc/PID/stat, all threads;
# the comm field of these processes has no spaces). idle_ticks: the whole machine's idle + iowait.
cpu_ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
}
idle_ticks() { awk '/^cpu / {print $5 + $6}' /proc/stat; }

# counters W: "offered delivered switch_ticks idle_ticks" now (A's tx + tx_dropped, B's rx, the
# switch's CPU time, the machine's idle time).
counters() {
    local w=$1 a=/sys/class/net/${CLIENT_IF[$1]}/statistics b=/sys/class/net/${SERVER_IF[$1]}/statistics
    local tx txd rx
    read -r tx txd < <(ip netns exec "${CLIENT_NS[$w]}" cat "$a/tx_packets" "$a/tx_dropped" | paste -sd' ')
    rx=$(ip netns exec "${SERVER_NS[$w]}" cat "$b/rx_packets")
    # shellcheck disable=SC2086
    echo "$((tx + txd)) $rx $(cpu_ticks ${SWITCH_PIDS[$w]:-}) $(idle_ticks)"
}

HZ=$(getconf CLK_TCK)
echo "$(loadavg)" >"$OUT/load-before"
it_log "worlds: ${worlds[*]}; ${SECS}s per run, $REPS runs; pinned: $PIN; load before: $(loadavg); raw results in $OUT"
echo "# world run seconds offered delivered switch_ticks idle_ticks (HZ=$HZ) load1" >"$OUT/runs.txt"
for ((r = 1; r <= REPS; r++)); do
    for w in "${worlds[@]}"; do
        ip netns exec "${CLIENT_NS[$w]}" ping -n -q -c 1 -W 1 "${SERVER_IP[$w]}" >/dev/null ||
            it_log "warning: $w: no ping reply before run $r"
        start_gen "$w"
        sleep 1
        read -r o0 d0 c0 i0 < <(counters "$w")
        t0=$(date +%s.%N)
        sleep "$SECS"
        read -r o1 d1 c1 i1 < <(counters "$w")
        t1=$(date +%s.%N)
        stop_gen
        line="$w $r $(awk "BEGIN { print $t1 - $t0 }") $((o1 - o0)) $((d1 - d0)) $((c1 - c0)) $((i1 - i0)) $(cut -d' ' -f1 /proc/loadavg)"
        echo "$line" >>"$OUT/runs.txt"
        # shellcheck disable=SC2086
        set -- $line
        it_log "$w run $r: $(awk -v s="$3" -v o="$4" -v d="$5" \
            'BEGIN { printf "offered %.0f kpps, delivered %.0f kpps", o / s / 1e3, d / s / 1e3 }'), load $8"
    done
done
echo "$(loadavg)" >"$OUT/load-after"
# The check that switchd forwarded rather than flooded: its table has B's MAC on B's port.
# And its counters: where the frames it did not deliver were dropped.
for w in "${worlds[@]}"; do
    [[ -n "${SWITCHD_RUN[$w]:-}" ]] || continue
    { echo "B's MAC: ${DST_MAC[$w]}, A's MAC: ${SRC_MAC[$w]}"
      "$SWITCHD" fdb bench --run-dir "${SWITCHD_RUN[$w]}"; } >"$OUT/fdb-$w.txt" 2>&1 || true
    "$SWITCHD" status --json --run-dir "${SWITCHD_RUN[$w]}" >"$OUT/status-$w.json" 2>/dev/null || true
done

# The perf profile of switchd at its 1-thread limit. Besides the samples: the CPU time switchd
# and trafgen (with its forks) took in the window, and the whole machine's idle time, so the
# report can say whether switchd had a core to itself.
profiled=()
for w in $PROFILE_WORLDS; do
    [[ "$PROFILE" == 1 ]] || break
    if [[ "$w" != switchd-t* || -z "${SETUP[$w]:-}" ]]; then
        it_log "PPS_PROFILE=1 but no switchd world $w here: no profile of it"
    else
        pid=${SWITCH_PIDS[$w]}
        ip netns exec "${CLIENT_NS[$w]}" ping -n -q -c 1 -W 1 "${SERVER_IP[$w]}" >/dev/null || true
        start_gen "$w"
        sleep 1
        tg=("$TG_PID" $(ps -o pid= --ppid "$TG_PID" 2>/dev/null))
        read -r o0 d0 c0 _ < <(counters "$w")
        g0=$(cpu_ticks "${tg[@]}") i0=$(idle_ticks) t0=$(date +%s.%N)
        it_log "profiling switchd (pid $pid) for ${PROFILE_SECS}s; load $(loadavg)"
        perf record -g -p "$pid" -o "$OUT/perf-$w.data" -- sleep "$PROFILE_SECS" >"$OUT/perf-record.log" 2>&1 ||
            it_log "warning: perf record failed (see $OUT/perf-record.log)"
        read -r o1 d1 c1 _ < <(counters "$w")
        g1=$(cpu_ticks "${tg[@]}") i1=$(idle_ticks) t1=$(date +%s.%N)
        stop_gen
        # seconds offered delivered switchd_ticks trafgen_ticks machine_idle_ticks load1
        echo "$(awk "BEGIN { print $t1 - $t0 }") $((o1 - o0)) $((d1 - d0)) $((c1 - c0)) $((g1 - g0)) $((i1 - i0)) $(cut -d' ' -f1 /proc/loadavg)" \
            >"$OUT/profile-run-$w.txt"
        for v in "--no-children --sort dso,sym -g none --percent-limit 0.3:self" \
            "--children --sort sym -g none --percent-limit 0:children" \
            "--no-children --sort dso,sym -G --percent-limit 3:callgraph" \
            "--no-children --sort dso -g none:dso"; do
            # shellcheck disable=SC2086
            perf report -i "$OUT/perf-$w.data" ${v%%:*} --stdio >"$OUT/perf-$w-${v##*:}.txt" 2>/dev/null || true
        done
        profiled+=("$w")
    fi
done

# The table.
"$PY" - "$OUT" "$HZ" "${profiled[*]}" "${worlds[@]}" <<'PY' | tee "$OUT/table.txt"
import os, statistics, sys
out, hz, profiled, worlds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
runs = {}
for line in open(os.path.join(out, "runs.txt")):
    if line.startswith("#"):
        continue
    w, r, secs, off, dlv, ticks, idle, load = line.split()
    secs = float(secs)
    cpu = int(ticks) / hz / secs * 100
    # µs of the switch's CPU per delivered frame: its cost, whatever share of a core it got
    us = int(ticks) / hz * 1e6 / int(dlv) if int(dlv) else 0
    runs.setdefault(w, []).append((int(off) / secs / 1e3, int(dlv) / secs / 1e3, cpu, us,
                                   int(idle) / hz / secs / os.cpu_count() * 100, float(load)))
med = {w: [statistics.median(x[i] for x in v) for i in range(6)] for w, v in runs.items()}
peers = [med[p][1] for p in ("vde", "ovs") if p in med]
best = max(peers) if peers else None
bridge = med["bridge"][1] if "bridge" in med else None
print()
print("%-11s %9s %8s %6s %7s %8s %6s %10s %8s %4s  %s" % ("world", "delivered", "offered", "drop%", "sw cpu%",
      "us/frame", "idle%", "/userspace", "/bridge", "runs", "delivered kpps per run"))
for w in worlds:
    if w not in med:
        print("%-11s %10s" % (w, "failed"))
        continue
    off, dlv, cpu, us, idle, _ = med[w]
    drop = max(0.0, 100 * (1 - dlv / off)) if off else 0  # the counters are read a moment apart
    rb = "%.2f" % (dlv / best) if best else "n/a"
    rbr = "%.2f" % (dlv / bridge) if bridge else "n/a"
    cpus = "%.0f" % cpu if w != "bridge" else "-"
    uss = "%.2f" % us if w != "bridge" else "-"
    print("%-11s %9.0f %8.0f %6.1f %7s %8s %6.0f %10s %8s %4d  %s" % (w, dlv, off, drop, cpus, uss, idle, rb, rbr, len(runs[w]),
          " ".join("%.0f" % x[1] for x in runs[w])))
print()
print("kpps are medians of 60-byte frames (64 on a wire); offered = A's tx + tx_dropped, delivered = B's rx;")
print("/userspace = delivered / best of vde and ovs (%s kpps), /bridge = delivered / the Linux bridge;"
      % ("%.0f" % best if best else "n/a"))
print("sw cpu% = the switch's own processes (100 = one core), us/frame = their CPU time per delivered frame;")
print("idle%% = the whole machine's idle time in the window. Load average before: %s, after: %s."
      % (open(os.path.join(out, "load-before")).read().strip(), open(os.path.join(out, "load-after")).read().strip()))
print("trafgen spins on one of the machine's %d cores for the whole run: the switch, B's receiving stack" % os.cpu_count())
print("and everything else share what is left.")
# Paired ratios: each round runs every world once, minutes apart at most, so the ratio of a world
# to the best peer within a round cancels the machine's drift between rounds.
peer_worlds = [p for p in ("vde", "ovs") if p in runs]
if peer_worlds:
    rounds = min(len(runs[p]) for p in peer_worlds)
    for w in worlds:
        if w in peer_worlds or w == "bridge" or w not in runs:
            continue
        ratios = [runs[w][r][1] / max(runs[p][r][1] for p in peer_worlds)
                  for r in range(min(rounds, len(runs[w]))) if max(runs[p][r][1] for p in peer_worlds) > 0]
        if ratios:
            print("%s / best userspace peer, paired by round: median %.2f, per round %s" % (
                  w, statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
import json
for w in worlds:
    try:
        ports = json.load(open(os.path.join(out, "status-%s.json" % w)))["networks"][0]["ports"]
    except (OSError, ValueError, KeyError, IndexError):
        continue
    parts = []
    for p in ports:
        d = ", ".join("%s %d" % kv for kv in sorted(p.get("drops", {}).items()) if kv[1])
        parts.append("%s rx %d tx %d drops: %s" % (p.get("id", "?"), p.get("rx", {}).get("packets", 0),
                                                   p.get("tx", {}).get("packets", 0), d or "none"))
    print("%s counters (whole run, status --json): %s" % (w, "; ".join(parts)))

# The profile summary: the kernel/user split by object, and the inclusive share of the paths
# one forwarded frame takes (a frame's cost is split across them; shares overlap where one path
# calls another, e.g. B's receive runs inside the TAP write).
import re
for pw in profiled:
    prun = os.path.join(out, "profile-run-%s.txt" % pw)
    if not os.path.exists(os.path.join(out, "perf-%s-children.txt" % pw)) or not os.path.exists(prun):
        continue
    secs, off, dlv, swt, tgt, idle, load = open(prun).read().split()
    secs = float(secs)
    dso = {}
    for line in open(os.path.join(out, "perf-%s-dso.txt" % pw)):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if m:
            dso[m.group(2)] = dso.get(m.group(2), 0) + float(m.group(1))
    kernel = sum(v for k, v in dso.items() if k.startswith("[kernel"))
    ch = {}
    for line in open(os.path.join(out, "perf-%s-children.txt" % pw)):
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(\S+)", line)
        if m:
            ch.setdefault(m.group(4), float(m.group(1)))
    def c(*names):
        return max([ch.get(n, 0.0) for n in names])
    print()
    print("perf profile of %s, %.1f s: offered %.0f kpps, delivered %.0f kpps; CPU: switchd %.0f%%, "
          "trafgen %.0f%%, machine idle %.0f%% of %d cores; load %s" % (
          pw, secs, int(off) / secs / 1e3, int(dlv) / secs / 1e3, int(swt) / hz / secs * 100,
          int(tgt) / hz / secs * 100, int(idle) / hz / secs / os.cpu_count() * 100, os.cpu_count(), load))
    print("  kernel %.1f%%, user %.1f%% (%s)" % (kernel, 100 - kernel, ", ".join(
          "%s %.1f%%" % (k, v) for k, v in sorted(dso.items(), key=lambda kv: -kv[1]) if not k.startswith("[kernel"))))
    rows = [
        ("io_uring_enter (all kernel work of the loop)", c("__do_sys_io_uring_enter", "__x64_sys_io_uring_enter")),
        ("  TAP read (tun_chr_read_iter)", c("tun_chr_read_iter")),
        ("    copy to the provided buffer", c("skb_copy_datagram_iter")),
        ("  TAP write (tun_chr_write_iter)", c("tun_chr_write_iter")),
        ("    B's receive (netif_receive_skb, in B's ns)", c("netif_receive_skb", "netif_receive_skb_list_internal")),
        ("  io_uring's own (the syscall minus TAP read, write, sleep)",
         c("__do_sys_io_uring_enter", "__x64_sys_io_uring_enter") - c("tun_chr_read_iter")
         - c("tun_chr_write_iter") - c("__schedule")),
        ("  io_uring task work (completions, re-arming)", c("tctx_task_work_run", "tctx_task_work")),
        ("  io_uring submission (io_submit_sqes)", c("io_submit_sqes")),
        ("  sleeping / switching (__schedule)", c("__schedule")),
        ("softirq (handle_softirqs)", c("handle_softirqs", "__do_softirq")),
    ]
    for name, v in rows:
        print("  %-58s %5.1f%%" % (name, v))
PY
echo "raw results: $OUT"
