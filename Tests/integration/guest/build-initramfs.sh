#!/usr/bin/env bash
# Tests/integration/guest/build-initramfs.sh CACHE_DIR: the test guest (t14, t27, bench/qemu.sh).
#
# A Debian cloud kernel (guest/fetch-kernel.sh, with the virtio NIC's modules) and a busybox
# initramfs: guest/init as /init, guest/udhcpc.script, the modules, and iperf3 with its shared
# libraries and the dynamic loader (when the host has iperf3), so that a guest can run
# `iperf3 -s` / `iperf3 -c`. guest/init documents the scenarios (sw.role=... on the kernel
# command line).
#
# Prints the path of a directory holding
#   vmlinuz       the kernel (a copy)
#   initrd.gz     the initramfs
#   version       the kernel's release
#   modules.load  the modules /init loads, in order
#   features      one word a line: `iperf3` if the guest has it
# The result is cached under CACHE_DIR/guest-HASH, HASH over everything that goes into it (these
# scripts, busybox, iperf3 and its libraries, the kernel and modules), so a second call costs a
# few checksums; the four newest builds are kept. Concurrent callers serialise on a lock.
# Exit status: 0; 2 when this host cannot build it (no static busybox, a missing tool, no kernel:
# callers skip, the reason is the last line on stderr); 1 on any other failure.
set -euo pipefail

cache=${1:?usage: build-initramfs.sh CACHE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cannot() { echo "build-initramfs.sh: $*" >&2; exit 2; }
die() { echo "build-initramfs.sh: $*" >&2; exit 1; }

for c in busybox cpio gzip sha256sum ldd flock; do
    command -v "$c" >/dev/null 2>&1 || cannot "needs $c"
done
busybox=$(command -v busybox)
# /init runs before anything else exists: busybox must need no shared libraries.
[[ "$(ldd "$busybox" 2>&1 || true)" == *"not a dynamic executable"* ]] ||
    cannot "needs a static busybox for the initramfs ($busybox is dynamic; install busybox-static)"

kdir=$("$here/fetch-kernel.sh" "$cache" virtio_pci virtio_net) ||
    cannot "cannot fetch a Debian cloud kernel (fetch-kernel.sh said why above)"

# iperf3 and what it loads: ldd's absolute paths (libraries and the loader, `=> /path` or a
# bare `/lib64/ld-linux-x86-64.so.2`).
iperf3=$(command -v iperf3 || true)
libs=()
if [[ -n "$iperf3" ]]; then
    mapfile -t libs < <(ldd "$iperf3" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)
    interp=$(ldd "$iperf3" | awk '$1 ~ /^\// && $1 ~ /ld-linux/ { print $1 }' | head -n 1)
    [[ -n "$interp" ]] || die "cannot find iperf3's dynamic loader in: $(ldd "$iperf3" | tr '\n' ' ')"
else
    echo "build-initramfs.sh: no iperf3 on this host: the guest gets none (sw.role=client/serve fail)" >&2
fi

# The cache key: every input's content, and the paths the libraries go to.
key=$({
    sha256sum "${BASH_SOURCE[0]}" "$here/init" "$here/udhcpc.script" "$busybox" "$kdir/vmlinuz" \
        "$kdir/modules.load" "$kdir"/modules/*.ko ${iperf3:+"$iperf3"} ${libs[@]+"${libs[@]}"} |
        awk '{ print $1 }'
    printf '%s\n' ${libs[@]+"${libs[@]}"}
} | sha256sum | cut -c1-16)
dest=$cache/guest-$key

exec 9>"$cache/.initramfs.lock"
flock -w 300 9 || die "timed out waiting for $cache/.initramfs.lock"
if [[ -f "$dest/complete" ]]; then
    echo "build-initramfs.sh: reusing $dest" >&2
    echo "$dest"
    exit 0
fi

work=$(mktemp -d "$cache/.guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,etc,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/udhcpc.script"
chmod 755 "$root/init" "$root/udhcpc.script"
ln -s busybox "$root/bin/sh"
cp "$kdir"/modules/*.ko "$root/lib/modules/" 2>/dev/null || true
cp "$kdir/modules.load" "$root/modules.load"
features=()
if [[ -n "$iperf3" ]]; then
    cp "$iperf3" "$root/bin/iperf3"
    # Libraries flat in /lib (init sets LD_LIBRARY_PATH=/lib); the loader at the absolute path
    # in the binary's PT_INTERP.
    for l in "${libs[@]}"; do
        [[ "$l" == "$interp" ]] && continue
        cp -L "$l" "$root/lib/"
    done
    mkdir -p "$root$(dirname "$interp")"
    cp -L "$interp" "$root$interp"
    features+=(iperf3)
fi
mknod "$root/dev/console" c 5 1
mknod "$root/dev/null" c 1 3
out=$work/out
mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out/initrd.gz"
cp "$kdir/vmlinuz" "$out/vmlinuz"
cp "$kdir/version" "$kdir/modules.load" "$out/"
printf '%s\n' ${features[@]+"${features[@]}"} >"$out/features"
touch "$out/complete"
rm -rf "$dest"
mv "$out" "$dest"
echo "build-initramfs.sh: built $dest (kernel $(cat "$dest/version"), initrd $(stat -c %s "$dest/initrd.gz") bytes, features: ${features[*]:-none})" >&2

# Keep the four newest builds.
ls -dt "$cache"/guest-*/ 2>/dev/null | tail -n +5 | while read -r old; do rm -rf "$old"; done
echo "$dest"
