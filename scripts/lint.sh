#!/usr/bin/env bash
# lint.sh: the layering rules the compiler does not check (docs/decisions.md "Targets and layers").
#
#   Proto imports nothing; only SwitchSys imports the C modules that make syscalls (CLiburing,
#   CSwitchShims) and calls liburing; Switch and switchd reach the kernel through SwitchSys.
# Glibc stays importable everywhere (constants, memcpy, pthread types). Exit status 1 on a breach.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bad=0
report() { [[ -n "$2" ]] && { echo "lint: $1:"; echo "$2" | sed 's/^/  /'; bad=1; }; }
report "Proto must import nothing" "$(grep -rn '^[a-z@_ ]*import ' Sources/Proto --include=*.swift)"
report "only SwitchSys imports CLiburing/CSwitchShims" \
    "$(grep -rnE '^[a-z@_ ]*import (CLiburing|CSwitchShims)' Sources --include=*.swift | grep -v '^Sources/SwitchSys/')"
report "only SwitchSys calls liburing" \
    "$(grep -rnE '\bio_uring_[a-z_]+\(' Sources --include=*.swift | grep -v '^Sources/SwitchSys/' | grep -vE ':[0-9]+: *//')"
((bad == 0)) && echo "lint: layering holds"
exit $bad
