# Tests/integration/lib.sh: the shared harness that every integration test sources.
#
# A test is a bash script that sources this file, builds its own little world (network
# namespaces, a switchd with its own run and state directories under a temp dir, clients),
# checks something, and exits 0 (pass), 77 (skip) or anything else (fail). Everything it
# creates is registered with `it_defer` as it is created and torn down in reverse order by
# the EXIT trap, whether the test passes, fails or is interrupted. Processes are killed by
# the PID we recorded, never by name. Names are unique per run: IT_PFX (default `swi` + our
# PID in hex) starts every namespace, interface and temp dir name, so that a runner can
# check afterwards that nothing leaked.
#
# Environment:
#   SWITCHD           the switchd binary (default .build/debug/switchd, relative to the repo root)
#   CI=true           a test that would skip fails instead
#   IT_PFX            name prefix (set by run.sh; keep it <= 11 characters)
#   IT_KEEP=1         keep the temp dir (logs, configs) for inspection
#   IT_READY_TIMEOUT  seconds to wait for switchd to answer `status` (default 20)
#   IT_LOG_LEVEL      switchd's --log-level (default debug)

set -Eeuo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IT_DIR/../.." && pwd)
SWITCHD=${SWITCHD:-.build/debug/switchd}
[[ "$SWITCHD" == /* ]] || SWITCHD="$REPO_ROOT/$SWITCHD"
TEST_NAME=$(basename "$0" .sh)
IT_PFX=${IT_PFX:-swi$(printf '%x' $$)}
IT_SKIP=77
IT_START=$(date +%s.%N)
# scapy and friends live in Debian's python; the plain socket module works anywhere.
if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi

# ---------------------------------------------------------------------------------------
# Logging and verdicts

it_log() {
    printf '[%s +%ss] %s\n' "$TEST_NAME" "$(awk -v s="$IT_START" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-s}')" "$*" >&2
}

# it_fail MESSAGE: the test failed; say why and exit (cleanup runs from the EXIT trap).
it_fail() {
    IT_FAILED_MSG="$*"
    printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}

# it_skip REASON: the test cannot run here. Under CI=true that is a failure.
it_skip() {
    if [[ "${CI:-}" == "true" ]]; then
        printf '[%s] FAIL: would skip, but CI=true: %s\n' "$TEST_NAME" "$*" >&2
        exit 1
    fi
    printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2
    exit "$IT_SKIP"
}

it_pass() {
    it_log "PASS"
    exit 0
}

# it_check DESCRIPTION COMMAND...: run COMMAND; fail the test with DESCRIPTION if it fails.
it_check() {
    local what=$1
    shift
    if "$@"; then
        it_log "ok: $what"
    else
        it_fail "$what (command: $*)"
    fi
}

# ---------------------------------------------------------------------------------------
# Cleanup stack

IT_CLEANUPS=()
IT_PIDS=()

# it_defer 'SHELL CODE': run at exit, last registered first.
it_defer() { IT_CLEANUPS+=("$1"); }

_it_on_err() {
    local rc=$? line=$1 cmd=$2
    printf '[%s] error: line %s: `%s` exited %s\n' "$TEST_NAME" "$line" "$cmd" "$rc" >&2
}

_it_on_exit() {
    local rc=$? i
    set +eE
    trap - ERR
    if [[ $rc -ne 0 && $rc -ne $IT_SKIP && -n "${SWITCHD_LOG:-}" && -s "${SWITCHD_LOG:-}" ]]; then
        printf '[%s] --- last lines of switchd log (%s) ---\n' "$TEST_NAME" "$SWITCHD_LOG" >&2
        tail -n "${IT_LOG_LINES:-40}" "$SWITCHD_LOG" >&2
        printf '[%s] --- end of switchd log ---\n' "$TEST_NAME" >&2
    fi
    for ((i = ${#IT_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${IT_CLEANUPS[i]}" </dev/null >/dev/null 2>&1
    done
    _it_sweep_links
    exit "$rc"
}

trap '_it_on_err "$LINENO" "$BASH_COMMAND"' ERR
trap _it_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Interfaces left in the root namespace with our prefix (a TAP whose daemon died before it
# moved it, a veth whose namespace end went away) are ours: delete them.
_it_sweep_links() {
    local l
    for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$IT_PFX" || true); do
        ip link del "$l" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------------------------------
# Temp dir, names

IT_TMP=$(mktemp -d "/tmp/$IT_PFX.XXXXXX")
if [[ "${IT_KEEP:-}" == 1 ]]; then
    it_defer "echo 'kept $IT_TMP' >&2"
else
    it_defer "rm -rf '$IT_TMP'"
fi
RUN_DIR=$IT_TMP/run
STATE_DIR=$IT_TMP/state

# it_name SUFFIX: a unique name for a namespace or interface (<= 15 characters).
it_name() {
    local n="$IT_PFX$1"
    ((${#n} <= 15)) || it_fail "name too long for an interface: $n"
    echo "$n"
}

# ---------------------------------------------------------------------------------------
# Requirements

it_require_root() {
    [[ $(id -u) -eq 0 ]] || it_skip "needs root (network namespaces, TAP devices)"
}

it_require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || it_skip "needs $c (scripts/deps.sh installs it)"
    done
}

it_require_netns() {
    it_require_root
    it_require_cmd ip
    local probe
    probe=$(it_name probe)
    if ! ip netns add "$probe" 2>/dev/null; then
        it_skip "cannot create network namespaces"
    fi
    ip netns del "$probe"
    [[ -c /dev/net/tun ]] || it_skip "no /dev/net/tun"
}

it_require_switchd() {
    [[ -x "$SWITCHD" ]] || it_fail "no switchd binary at $SWITCHD (build it, or set SWITCHD)"
}

# ---------------------------------------------------------------------------------------
# Processes

_it_alive() { [[ -e /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

# it_kill PID: SIGTERM, then SIGKILL after 3 s; reaps it if it is our child.
it_kill() {
    local pid=$1 i
    _it_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        _it_alive "$pid" || break
        sleep 0.1
    done
    _it_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# it_bg LOG COMMAND...: start COMMAND in the background with stdout+stderr to LOG; its PID is
# left in IT_LAST_PID and it is killed at exit. (Not usable inside $(...): the PID and the
# cleanup would be recorded in a subshell.)
it_bg() {
    local log=$1
    shift
    "$@" </dev/null >"$log" 2>&1 &
    IT_LAST_PID=$!
    IT_PIDS+=("$IT_LAST_PID")
    it_defer "it_kill $IT_LAST_PID"
}

# it_wait_until TIMEOUT_S DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until it succeeds.
it_wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline
    deadline=$(($(date +%s%N) + timeout * 1000000000))
    until "$@" >/dev/null 2>&1; do
        if (($(date +%s%N) > deadline)); then
            it_fail "timed out after ${timeout}s waiting for: $what"
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------
# Network namespaces

# it_netns NAME: create namespace NAME (from it_name) with lo up; deleted at exit after
# killing whatever still runs in it.
it_netns() {
    local ns=$1
    ip netns add "$ns"
    it_defer "_it_netns_del $ns"
    ip -n "$ns" link set lo up
}

_it_netns_del() {
    local ns=$1 p
    for p in $(ip netns pids "$ns" 2>/dev/null); do
        it_kill "$p"
    done
    ip netns del "$ns" 2>/dev/null || true
}

# it_netns_resolv NS [NAMESERVER]: give NS its own /etc/netns/NS/resolv.conf (removed at exit).
it_netns_resolv() {
    local ns=$1 server=${2:-127.0.0.1}
    mkdir -p "/etc/netns/$ns"
    it_defer "rm -rf '/etc/netns/$ns'"
    echo "nameserver $server" >"/etc/netns/$ns/resolv.conf"
}

it_nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# it_wait_link NS IFACE [TIMEOUT]: wait until IFACE exists in NS.
it_wait_link() {
    it_wait_until "${3:-10}" "interface $2 in namespace $1" ip -n "$1" link show "$2"
}

# it_link_is_up NS IFACE: the interface has the administrative UP flag.
it_link_is_up() {
    ip -n "$1" -o link show "$2" 2>/dev/null | grep -q '[<,]UP[,>]'
}

# it_addr NS IFACE CIDR: add an address and bring the interface up.
it_addr() {
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" link set "$2" up
}

# it_mac NS IFACE: the interface's MAC address.
it_mac() {
    ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# it_tap_ready NS TAP CIDR: wait for the TAP switchd moved into NS, check switchd brought it
# up (a warning only: the tests that care assert it), then address it.
it_tap_ready() {
    local ns=$1 tap=$2 cidr=$3
    it_wait_link "$ns" "$tap"
    if ! it_link_is_up "$ns" "$tap"; then
        sleep 0.5
        it_link_is_up "$ns" "$tap" || it_log "warning: switchd left $tap in $ns down"
    fi
    it_addr "$ns" "$tap" "$cidr"
}

# it_two_tap_lab HOST_A HOST_B: the world most tests start from. Namespaces NS_A and NS_B, each
# on a `tap` port (TAP_A, TAP_B) of one isolated network `lab` on 10.77.0.0/24, switchd started
# with it, the TAPs addressed 10.77.0.HOST_A and .HOST_B, and a first ping between them.
it_two_tap_lab() {
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
      - {tap: $TAP_B, netns: $NS_B}
EOF
    it_start_switchd "$IT_TMP/switchd.yaml"
    it_wait_socket "$RUN_DIR/lab/dgram.sock"
    it_wait_socket "$RUN_DIR/lab/stream.sock"
    it_tap_ready "$NS_A" "$TAP_A" "10.77.0.$1/24"
    it_tap_ready "$NS_B" "$TAP_B" "10.77.0.$2/24"
    it_ping "$NS_A" "10.77.0.$2" 2
}

# it_ping NS ADDR [COUNT]: wait (up to 10 s) for a first reply, then COUNT replies in a row.
it_ping() {
    local ns=$1 addr=$2 count=${3:-3}
    it_wait_until 10 "first ping reply from $addr in $ns" ip netns exec "$ns" ping -n -c 1 -W 1 "$addr"
    if ! ip netns exec "$ns" ping -n -q -c "$count" -i 0.2 -W 2 "$addr" >"$IT_TMP/ping.out" 2>&1; then
        cat "$IT_TMP/ping.out" >&2
        it_fail "ping $ns -> $addr lost replies"
    fi
    it_log "ok: ping $ns -> $addr ($count/$count)"
}

# ---------------------------------------------------------------------------------------
# iperf3

# it_iperf_server NS [PORT]: a one-shot iperf3 server in NS; returns once it listens.
it_iperf_server() {
    local ns=$1 port=${2:-5201}
    it_bg "$IT_TMP/iperf3-server-$ns-$port.log" ip netns exec "$ns" iperf3 -s -1 -p "$port"
    it_wait_until 10 "iperf3 server listening in $ns" \
        sh -c "ip netns exec '$ns' ss -Hltn 'sport = :$port' | grep -q LISTEN"
}

# it_iperf_client NS SERVER SECONDS OUT.json [iperf3 args...]: run a TCP test, JSON to OUT.
it_iperf_client() {
    local ns=$1 server=$2 secs=$3 out=$4
    shift 4
    timeout -k 5 $((secs + 30)) ip netns exec "$ns" iperf3 -c "$server" -t "$secs" -J "$@" >"$out" 2>"$out.err" || {
        it_log "iperf3 client failed; output:"
        head -c 2000 "$out" >&2
        cat "$out.err" >&2
        return 1
    }
}

# it_iperf_received OUT.json: prints end.sum_received.bytes (0 if absent).
it_iperf_received() {
    "$PY" -c 'import json,sys
j=json.load(open(sys.argv[1]))
print(int(j.get("end",{}).get("sum_received",{}).get("bytes",0)))' "$1"
}

# it_iperf_gbps OUT.json: receiver throughput in Gbit/s.
it_iperf_gbps() {
    "$PY" -c 'import json,sys
j=json.load(open(sys.argv[1]))
print("%.3f" % (j["end"]["sum_received"]["bits_per_second"]/1e9))' "$1"
}

# ---------------------------------------------------------------------------------------
# switchd

SWITCHD_PID=
SWITCHD_LOG=

# it_start_switchd CONFIG [extra run args...]: start switchd in the foreground (background
# job) with its own run and state dirs; returns once control.sock answers `status`. With
# SWITCHD_NETNS=NS it runs inside namespace NS (`ip netns exec` execs, so the PID is switchd's):
# host and shared networks put their uplink, nftables table and sysctls there, not on the host.
it_start_switchd() {
    local cfg=$1
    shift
    it_require_switchd
    mkdir -p "$RUN_DIR" "$STATE_DIR"
    SWITCHD_LOG=$IT_TMP/switchd.log
    local netns=()
    [[ -n "${SWITCHD_NETNS:-}" ]] && netns=(ip netns exec "$SWITCHD_NETNS")
    it_log "starting ${netns[*]} $SWITCHD run --config $cfg"
    "${netns[@]}" "$SWITCHD" run --config "$cfg" --run-dir "$RUN_DIR" --state-dir "$STATE_DIR" \
        --log-level "${IT_LOG_LEVEL:-debug}" "$@" </dev/null >>"$SWITCHD_LOG" 2>&1 &
    SWITCHD_PID=$!
    it_defer "it_kill $SWITCHD_PID"
    it_wait_switchd_ready
}

it_wait_switchd_ready() {
    local deadline
    deadline=$(($(date +%s%N) + ${IT_READY_TIMEOUT:-20} * 1000000000))
    while true; do
        if ! _it_alive "$SWITCHD_PID"; then
            local rc=0
            wait "$SWITCHD_PID" || rc=$?
            it_fail "switchd exited during start-up (exit status $rc)"
        fi
        if [[ -S "$RUN_DIR/control.sock" ]] && it_sw status --json >/dev/null 2>&1; then
            it_log "switchd ready (pid $SWITCHD_PID)"
            return 0
        fi
        if (($(date +%s%N) > deadline)); then
            it_fail "switchd did not answer status within ${IT_READY_TIMEOUT:-20}s"
        fi
        sleep 0.1
    done
}

# it_sw ARGS...: a switchd client command against our run dir.
it_sw() {
    "$SWITCHD" "$@" --run-dir "$RUN_DIR"
}

# it_status: `switchd status --json`.
it_status() {
    it_sw status --json
}

# it_json EXPR: evaluate a Python expression over `status --json` (see swjson.py).
it_json() {
    local js
    js=$(it_status) || it_fail "switchd status --json failed"
    printf '%s' "$js" | "$PY" "$IT_DIR/swjson.py" "$1"
}

# it_json_is EXPR VALUE: EXPR over `status --json` prints VALUE (false, not fatal, if status
# fails: for it_wait_until).
it_json_is() {
    local v
    v=$(it_status 2>/dev/null | "$PY" "$IT_DIR/swjson.py" "$1" 2>/dev/null) && [[ "$v" == "$2" ]]
}

# it_stop_switchd [TIMEOUT]: SIGTERM and wait; fails the test unless switchd exits 0 in time.
it_stop_switchd() {
    local timeout=${1:-10} i rc=0
    [[ -n "$SWITCHD_PID" ]] || return 0
    kill -TERM "$SWITCHD_PID"
    for ((i = 0; i < timeout * 10; i++)); do
        _it_alive "$SWITCHD_PID" || break
        sleep 0.1
    done
    _it_alive "$SWITCHD_PID" && it_fail "switchd still running ${timeout}s after SIGTERM"
    wait "$SWITCHD_PID" || rc=$?
    SWITCHD_PID=
    [[ $rc -eq 0 ]] || it_fail "switchd exited with status $rc after SIGTERM"
    it_log "switchd stopped cleanly"
}

# it_wait_socket PATH: wait for a unix socket (e.g. $RUN_DIR/lab/dgram.sock).
it_wait_socket() {
    it_wait_until "${2:-10}" "socket $1" test -S "$1"
}

# ---------------------------------------------------------------------------------------
# Host and shared modes: a "host" namespace where switchd runs, an "outside" one behind a veth

# it_host_world: namespaces HOST (switchd's) and OUT joined by a veth, HOST 10.201.0.1/24 and
# fd99:201::1/64, OUT 10.201.0.2/24 and fd99:201::2/64 (the "outside world": no route back to
# the guests' subnets, so only NAT can answer them). Sets HOST, OUT, HOST_IP, OUT_IP, HOST_IP6, OUT_IP6.
it_host_world() {
    HOST=$(it_name h) OUT=$(it_name o)
    local vh vo
    vh=$(it_name vh) vo=$(it_name vo)
    it_netns "$HOST"
    it_netns "$OUT"
    it_netns_resolv "$HOST"
    ip link add "$vh" type veth peer name "$vo"
    it_defer "ip link del $vh"
    ip link set "$vh" netns "$HOST"
    ip link set "$vo" netns "$OUT"
    HOST_IP=10.201.0.1 OUT_IP=10.201.0.2 HOST_IP6=fd99:201::1 OUT_IP6=fd99:201::2
    ip -n "$HOST" addr add "$HOST_IP/24" dev "$vh"
    ip -n "$HOST" addr add "$HOST_IP6/64" dev "$vh" nodad
    ip -n "$HOST" link set "$vh" up
    ip -n "$OUT" addr add "$OUT_IP/24" dev "$vo"
    ip -n "$OUT" addr add "$OUT_IP6/64" dev "$vo" nodad
    ip -n "$OUT" link set "$vo" up
    SWITCHD_NETNS=$HOST
}

# it_whoami_server NS ADDR PORT: an HTTP server in NS on ADDR:PORT whose answer is the client's
# address as the server sees it (so a test can tell NAT from routing).
it_whoami_server() {
    local ns=$1 addr=$2 port=$3
    it_bg "$IT_TMP/whoami-$ns-$port.log" ip netns exec "$ns" "$PY" "$IT_DIR/whoami_server.py" "$addr" "$port"
    it_wait_until 10 "whoami server on $addr:$port in $ns" \
        sh -c "ip netns exec $ns ss -Hltn 'sport = :$port' | grep -q ."
}

# it_whoami NS URL [TIMEOUT]: fetch URL from NS; prints the body (the address the server saw).
it_whoami() {
    ip netns exec "$1" "$PY" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())' "$2" "${3:-5}"
}

# it_udhcpc NS IFACE NAME: a lease for IFACE with busybox udhcpc (address, MTU and default route
# applied by udhcpc_script.sh); sets LEASE_IP and LEASE_ROUTER.
it_udhcpc() {
    local ns=$1 iface=$2 name=$3
    if ! UDHCPC_OUT=$IT_TMP/$name timeout -k 5 30 ip netns exec "$ns" busybox udhcpc -i "$iface" -x "hostname:$name" \
        -q -n -t 5 -T 1 -s "$IT_DIR/udhcpc_script.sh" >"$IT_TMP/$name.log" 2>&1 || [[ ! -s "$IT_TMP/$name.bound" ]]; then
        cat "$IT_TMP/$name.log" >&2
        it_fail "udhcpc ($name on $iface in $ns) got no lease"
    fi
    LEASE_IP=$(sed -n 's/^ip=//p' "$IT_TMP/$name.bound")
    LEASE_ROUTER=$(sed -n 's/^router=//p' "$IT_TMP/$name.bound")
}

# it_has_addr NS IFACE CIDR: IFACE in NS holds address CIDR (e.g. 10.0.0.1/24, fd00::1/64). Prints
# the interface's addresses when it does not. (Read whole first, not `ip ... | grep -q`: under
# pipefail, ip can die of SIGPIPE when grep quits at the first match and fail a true check.)
it_has_addr() {
    local addrs
    addrs=$(ip -n "$1" -o addr show dev "$2" 2>&1) || { echo "$addrs"; return 1; }
    grep -qF -e "inet $3 " -e "inet6 $3 " <<<"$addrs" && return 0
    echo "$addrs"
    return 1
}

# it_nft_table_exists NS TABLE: `inet TABLE` exists in NS. (The listing is read whole first: with
# `nft ... | grep -q` and pipefail, nft can die of SIGPIPE once grep has matched and quit.)
it_nft_table_exists() {
    local tables
    tables=$(ip netns exec "$1" nft list tables inet 2>/dev/null) || return 1
    grep -qx "table inet $2" <<<"$tables"
}
