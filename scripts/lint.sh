#!/usr/bin/env bash
# lint.sh: the layering rules the compiler does not check (docs/decisions.md "Targets and layers").
#
#   Proto imports nothing; only SwitchSys imports the C modules that make syscalls (CLiburing,
#   CSwitchShims) and calls liburing; Switch and switchd reach the kernel through SwitchSys: they
#   call no libc syscall wrapper (close, fcntl, poll, pthread_*, ...) themselves.
# Glibc stays importable everywhere (constants, C types, memcpy). Exit status 1 on a breach.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bad=0
report() { [[ -n "$2" ]] && { echo "lint: $1:"; echo "$2" | sed 's/^/  /'; bad=1; }; }
report "Proto must import nothing" "$(grep -rn '^[a-z@_ ]*import ' Sources/Proto --include=*.swift)"
report "only SwitchSys imports CLiburing/CSwitchShims" \
    "$(grep -rnE '^[a-z@_ ]*import (CLiburing|CSwitchShims)' Sources --include=*.swift | grep -v '^Sources/SwitchSys/')"
report "only SwitchSys calls liburing" \
    "$(grep -rnE '\bio_uring_[a-z_]+\(' Sources --include=*.swift | grep -v '^Sources/SwitchSys/' | grep -vE ':[0-9]+: *//')"
# Direct calls of libc's syscall wrappers outside SwitchSys. A call is the bare name followed by
# `(`, or `Glibc.NAME(`; comments and string literals are dropped first, and `x.NAME(` (an own
# method or a SwitchSys wrapper such as `Descriptor.close(`) and `func NAME(` are not calls of libc.
# `send` and `shutdown` count only as `Glibc.send(`/`Glibc.shutdown(`: DHCP, DNS and the dataplane
# have methods of those names that they call unqualified.
calls='open|close|read|write|fcntl|ioctl|poll|bind|connect|listen|accept|accept4|socket|socketpair|recv|sendto'
calls+='|recvfrom|sendmsg|recvmsg|getsockopt|setsockopt|unlink|mkdir|rmdir|opendir|rename|fsync|mmap|munmap'
calls+='|pthread_[a-z_]+|kill|waitpid|getpid|geteuid|getuid|chmod|chown|stat|lstat|access|clock_gettime|nanosleep|usleep|sleep'
calls+='|pipe|dup2?|execv[pe]?|posix_spawnp?|sigwait|sigtimedwait|sigprocmask|eventfd'
direct=$(CALLS="$calls" perl -ne '
    BEGIN { $calls = $ENV{CALLS} }
    my $code = $_;
    $code =~ s/"(?:[^"\\]|\\.)*"/""/g;
    $code =~ s{//.*$}{};
    print "$ARGV:$.: $_" if $code =~ /(?<![\w.])(?<!func )(?:$calls)\(/ || $code =~ /\bGlibc\.(?:$calls|send|shutdown)\(/;
    close ARGV if eof;
' $(find Sources/Switch Sources/switchd -name '*.swift' | sort))
report "Switch and switchd call libc's syscall wrappers only through SwitchSys" "$direct"
# One mutex type (docs/decisions.md "Targets and layers"): SwitchSys's Lock, not Foundation's or
# the Synchronization module's.
report "Switch and switchd lock with SwitchSys's Lock" \
    "$(grep -rnE '\b(NSLock|NSRecursiveLock|NSConditionLock|NSCondition|Mutex<)\b|^[a-z@_ ]*import Synchronization' \
        Sources/Switch Sources/switchd --include=*.swift | grep -vE ':[0-9]+: *//')"
# io_uring results are told apart as Errno values (Errno(completion:), Errno(result:)), not by
# comparing the raw result with a negated errno constant.
report "Switch and switchd compare io_uring results as Errno, not as -ERRNO" \
    "$(grep -rnE '([=!]=|case) *-E[A-Z]{3,}\b' Sources/Switch Sources/switchd --include=*.swift | grep -vE ':[0-9]+: *//')"
((bad == 0)) && echo "lint: layering holds"
exit $bad
