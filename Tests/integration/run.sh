#!/usr/bin/env bash
# Tests/integration/run.sh: run the integration tests one after another and print a verdict.
#
#   Tests/integration/run.sh                 every Tests/integration/t[0-9]*.sh
#   Tests/integration/run.sh t01 t03_foo.sh  just those (by file name or its prefix)
#
# Each test runs alone with its own name prefix and a time limit (IT_TEST_TIMEOUT, default
# 240 s); its output goes to a log that is printed when it fails (all of it with IT_VERBOSE=1,
# where it also streams as it runs). After each test the runner checks that no namespace,
# interface or process with the test's prefix is left behind (a leak fails the test).
# The last line is `integration: N passed, M failed, K skipped`; the exit status is non-zero
# if anything failed. Under CI=true a test that would skip counts as failed (lib.sh does it).
set -uo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$IT_DIR/../.." || exit 2

tests=()
if [[ $# -eq 0 ]]; then
    for t in "$IT_DIR"/t[0-9]*.sh; do tests+=("$t"); done
else
    for a in "$@"; do
        m=("$IT_DIR"/"${a%.sh}"*.sh)
        if [[ ! -e "${m[0]}" ]]; then
            echo "run.sh: no test matches $a" >&2
            exit 2
        fi
        tests+=("${m[@]}")
    done
fi

LOG_DIR=${IT_LOG_DIR:-$(mktemp -d /tmp/switchd-it-logs.XXXXXX)}
mkdir -p "$LOG_DIR"
passed=0 failed=0 skipped=0 idx=0
failed_names=()

# Anything of ours still around after a test: namespaces, links, processes (by the prefix
# that every name, temp dir and hence command line of the test carries).
leaks() {
    local pfx=$1 p cmd
    ip netns list 2>/dev/null | awk '{print $1}' | grep "^$pfx" | sed 's/^/netns /'
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$pfx" | sed 's/^/link /'
    for p in /proc/[0-9]*; do
        cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        [[ "$cmd" == *"/tmp/$pfx."* || "$cmd" == *" $pfx"* ]] || continue
        [[ "${p#/proc/}" == "$$" ]] && continue
        echo "process ${p#/proc/}: $cmd"
    done
    ls -d /tmp/"$pfx".* 2>/dev/null | sed 's/^/dir /'
}

# Remove what a test leaked, by the exact names and PIDs found above.
sweep() {
    local pfx=$1 kind rest
    while read -r kind rest; do
        case $kind in
        netns) ip netns del "$rest" 2>/dev/null ;;
        link) ip link del "$rest" 2>/dev/null ;;
        process) kill -KILL "${rest%%:*}" 2>/dev/null ;;
        dir) rm -rf "$rest" ;;
        esac
    done < <(leaks "$pfx")
}

for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    idx=$((idx + 1))
    pfx=$(printf 'swi%x%02d' $$ "$idx")
    log=$LOG_DIR/$name.log
    start=$(date +%s)
    if [[ "${IT_VERBOSE:-}" == 1 ]]; then
        IT_PFX=$pfx timeout -k 15 "${IT_TEST_TIMEOUT:-240}" bash "$t" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        IT_PFX=$pfx timeout -k 15 "${IT_TEST_TIMEOUT:-240}" bash "$t" >"$log" 2>&1
        rc=$?
    fi
    secs=$(($(date +%s) - start))
    [[ $rc -eq 124 ]] && echo "[$name] FAIL: timed out after ${IT_TEST_TIMEOUT:-240}s" >>"$log"
    left=$(leaks "$pfx")
    if [[ -n "$left" ]]; then
        { echo "[$name] FAIL: left behind:"; echo "$left"; } >>"$log"
        sweep "$pfx"
        [[ $rc -eq 0 || $rc -eq 77 ]] && rc=1
    fi
    case $rc in
    0)
        passed=$((passed + 1))
        printf 'PASS  %-34s %4ss\n' "$name" "$secs"
        ;;
    77)
        skipped=$((skipped + 1))
        printf 'SKIP  %-34s %4ss  %s\n' "$name" "$secs" "$(grep -m1 'SKIP:' "$log" | sed 's/.*SKIP: //')"
        ;;
    *)
        failed=$((failed + 1))
        failed_names+=("$name")
        printf 'FAIL  %-34s %4ss  (exit %s, log %s)\n' "$name" "$secs" "$rc" "$log"
        if [[ "${IT_VERBOSE:-}" != 1 ]]; then
            sed 's/^/    | /' "$log" | tail -n "${IT_FAIL_LINES:-80}"
        fi
        ;;
    esac
done

echo "logs: $LOG_DIR"
((failed > 0)) && echo "failed: ${failed_names[*]}"
if ((skipped > 0)); then
    summary="integration: $passed passed, $failed failed, $skipped skipped"
else
    summary="integration: $passed passed, $failed failed"
fi
[[ -n "${IT_SUMMARY_FILE:-}" ]] && echo "$summary" >"$IT_SUMMARY_FILE"
echo "$summary"
((failed == 0))
