#!/usr/bin/env bash
# Lists and installs the Debian packages switchd's build, tests and benchmarks need.
#
#   scripts/deps.sh            install whatever is missing (apt-get update first, only then)
#   scripts/deps.sh --list     print the package names, one per line
#   scripts/deps.sh --check    exit 1 (and name them) if any are missing; installs nothing
set -euo pipefail

PACKAGES=(
    liburing-dev libpcap-dev           # build: io_uring, pcap capture
    iproute2 iputils-ping nftables     # namespaces, links, ping, the uplink's firewall table
    iperf3                             # throughput tests and bench
    qemu-system-x86                    # QEMU dgram/stream clients (-M none) and guests
    busybox-static cpio                # tiny guest initramfs
    dnsutils isc-dhcp-client ndisc6    # dig, dhclient, rdisc6 against the built-in services
    tcpdump python3-scapy              # capture checks, crafted frames
    vde2 dnsmasq openvswitch-switch    # peers for comparison (bench)
    netsniff-ng linux-perf             # trafgen small-packet generator, perf
)

missing() {
    local p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            echo "$p"
        fi
    done
}

case "${1:-}" in
--list)
    printf '%s\n' "${PACKAGES[@]}"
    ;;
--check)
    m=$(missing)
    if [[ -n "$m" ]]; then
        echo "deps: missing:" $m >&2
        exit 1
    fi
    ;;
"")
    m=$(missing)
    if [[ -z "$m" ]]; then
        exit 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: missing packages:" $m >&2
        echo "deps: run as root (or: sudo apt-get install" $m ")" >&2
        exit 1
    fi
    echo "deps: installing:" $m
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $m
    ;;
*)
    echo "usage: $0 [--list|--check]" >&2
    exit 2
    ;;
esac
