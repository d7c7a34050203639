#!/usr/bin/env bash
# Tests/integration/guest/fetch-kernel.sh CACHE_DIR MODULE...: a Debian cloud kernel for test
# guests, fetched with `apt-get download` on first use and kept under CACHE_DIR (outside the
# repository; the kernel is never committed).
#
# Prints the path of a directory holding
#   vmlinuz         the kernel
#   version         its release (e.g. 6.1.0-56-cloud-amd64)
#   modules.load    the module names to insmod, in dependency order (for the MODULEs asked for
#                   and everything they depend on, minus what the kernel has built in)
#   modules/NAME.ko each of them, decompressed (busybox insmod cannot load .ko.xz/.ko.zst)
# On failure it prints the reason on stderr and exits non-zero. Concurrent callers serialise on
# CACHE_DIR/.lock. A prepared directory is reused as it is (no network); delete CACHE_DIR to
# get a newer kernel. SWITCHD_TEST_KERNEL_PKG overrides the meta package name.
set -euo pipefail

cache=${1:?usage: fetch-kernel.sh CACHE_DIR MODULE...}
shift
roots=("$@")
((${#roots[@]} > 0)) || { echo "fetch-kernel.sh: no modules named" >&2; exit 2; }
meta=${SWITCHD_TEST_KERNEL_PKG:-linux-image-cloud-amd64}
want="${roots[*]}"

die() { echo "fetch-kernel.sh: $*" >&2; exit 1; }

for c in apt-get apt-cache dpkg-deb modinfo flock tar; do
    command -v "$c" >/dev/null 2>&1 || die "needs $c"
done
mkdir -p "$cache" || die "cannot create $cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"

# A prepared kernel with the same module roots: reuse the newest.
ready=
for d in $(ls -d "$cache"/kernel-*/ 2>/dev/null | sort -V); do
    [[ -f "$d/complete" && "$(cat "$d/roots" 2>/dev/null)" == "$want" ]] && ready=${d%/}
done
if [[ -n "$ready" ]]; then
    echo "fetch-kernel.sh: reusing $ready" >&2
    echo "$ready"
    exit 0
fi

# apt-get download writes into the current directory; as root it warns that _apt cannot
# write there, which is harmless.
download() {
    local pkg=$1 out
    (cd "$cache/debs" && apt-get download "$pkg") >"$cache/debs/apt.log" 2>&1 && return 0
    echo "fetch-kernel.sh: apt-get download $pkg failed; trying apt-get update" >&2
    apt-get update >>"$cache/debs/apt.log" 2>&1 || true
    (cd "$cache/debs" && apt-get download "$pkg") >>"$cache/debs/apt.log" 2>&1 && return 0
    out=$(grep -E '^(E|W|Err):' "$cache/debs/apt.log" | tail -n 3 | tr '\n' ' ')
    die "apt-get download $pkg failed: ${out:-see $cache/debs/apt.log}"
}

mkdir -p "$cache/debs"
# The meta package only depends on the real one (linux-image-6.x.y-N-cloud-amd64).
deb=$(ls -t "$cache/debs/${meta}"_*.deb 2>/dev/null | head -n 1 || true)
if [[ -z "$deb" ]]; then
    echo "fetch-kernel.sh: apt-get download $meta" >&2
    download "$meta"
    deb=$(ls -t "$cache/debs/${meta}"_*.deb 2>/dev/null | head -n 1 || true)
    [[ -n "$deb" ]] || die "apt-get download $meta left no .deb in $cache/debs"
fi
real=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n 1)
if [[ -z "$real" ]]; then
    real=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n 1)
fi
[[ -n "$real" ]] || die "cannot tell which kernel package $meta depends on"
kdeb=$(ls -t "$cache/debs/${real}"_*.deb 2>/dev/null | head -n 1 || true)
if [[ -z "$kdeb" ]]; then
    echo "fetch-kernel.sh: apt-get download $real" >&2
    download "$real"
    kdeb=$(ls -t "$cache/debs/${real}"_*.deb 2>/dev/null | head -n 1 || true)
    [[ -n "$kdeb" ]] || die "apt-get download $real left no .deb in $cache/debs"
fi

# Unpack the kernel and its modules, then keep only what the guest needs.
work=$(mktemp -d "$cache/.unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-kernel.sh: unpacking $(basename "$kdeb")" >&2
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/" --wildcards './boot/vmlinuz-*' './lib/modules/*' \
    || die "cannot unpack $kdeb"
vmlinuz=$(ls "$work"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[[ -n "$vmlinuz" ]] || die "no boot/vmlinuz-* in $kdeb"
version=${vmlinuz##*/vmlinuz-}
mdir=$work/lib/modules/$version
[[ -d "$mdir" ]] || die "no lib/modules/$version in $kdeb"

out=$work/out
mkdir -p "$out/modules"
declare -A seen=()
order=()
builtin() { grep -qE "/${1}\.ko\$" "$mdir/modules.builtin" 2>/dev/null || grep -qE "/${1//_/-}\.ko\$" "$mdir/modules.builtin" 2>/dev/null; }
# visit NAME: copy NAME's module (decompressed) after its dependencies, unless built in.
visit() {
    local m=$1 f d deps
    [[ -n "${seen[$m]:-}" ]] && return 0
    seen[$m]=1
    builtin "$m" && { echo "fetch-kernel.sh: $m is built in" >&2; return 0; }
    f=$(find "$mdir/kernel" \( -name "$m.ko*" -o -name "${m//_/-}.ko*" \) | head -n 1)
    [[ -n "$f" ]] || die "module $m is neither built in nor in $(basename "$kdeb")"
    case $f in
    *.ko) cp "$f" "$out/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$out/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$out/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$out/modules/$m.ko" ;;
    *) die "unknown module format: $f" ;;
    esac
    deps=$(modinfo -F depends "$out/modules/$m.ko") || die "modinfo $m failed"
    for d in ${deps//,/ }; do visit "$d"; done
    order+=("$m")
}
for m in "${roots[@]}"; do visit "$m"; done

cp "$vmlinuz" "$out/vmlinuz"
echo "$version" >"$out/version"
printf '%s\n' "${order[@]}" >"$out/modules.load"
echo "$want" >"$out/roots"
touch "$out/complete"
dest=$cache/kernel-$version
rm -rf "$dest"
mv "$out" "$dest"
echo "fetch-kernel.sh: prepared $dest (modules: ${order[*]:-none})" >&2
echo "$dest"
