"""Tests/integration/hostile_guest.py: crafted frames a hostile guest sends (scapy, Debian's python).

Usage (inside the guest's namespace): hostile_guest.py IFACE ATTACK [ARGS...] [--count N]
  hijack VICTIM_MAC DST_MAC          frames with the victim's source MAC
  spoof-ip VICTIM_IP DST_MAC DST_IP  ICMP echo from the victim's IPv4 address (our own MAC)
  rogue-dhcp                         a DHCPOFFER of 10.99.0.50, router 10.99.0.1, broadcast
  rogue-ra PREFIX                    a router advertisement of PREFIX/64 (autonomous) to ff02::1
  forge-arp CLAIMED_IP DST_MAC       a gratuitous ARP reply: CLAIMED_IP is at our MAC
  forge-na CLAIMED_IP6 DST_MAC       an unsolicited override NA: CLAIMED_IP6 is at our MAC
Prints the number of frames sent.
"""
import sys

from scapy.all import (ARP, BOOTP, DHCP, ICMP, ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo,
                       ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IP, IPv6, UDP, Ether, get_if_hwaddr,
                       sendp)


def main():
    args = sys.argv[1:]
    count = 20
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    iface, attack, rest = args[0], args[1], args[2:]
    me = get_if_hwaddr(iface)
    if attack == "hijack":
        victim, dst = rest
        frame = Ether(src=victim, dst=dst) / IP(src="10.77.0.250", dst="10.77.0.251") / UDP(sport=9, dport=9) / b"hijack"
    elif attack == "spoof-ip":
        victim, dst_mac, dst_ip = rest
        frame = Ether(src=me, dst=dst_mac) / IP(src=victim, dst=dst_ip) / ICMP(id=0x5151) / b"spoofed"
    elif attack == "rogue-dhcp":
        frame = (Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.99.0.1", dst="255.255.255.255")
                 / UDP(sport=67, dport=68)
                 / BOOTP(op=2, yiaddr="10.99.0.50", siaddr="10.99.0.1", chaddr=b"\x02" * 6, xid=0x1234)
                 / DHCP(options=[("message-type", "offer"), ("server_id", "10.99.0.1"),
                                 ("router", "10.99.0.1"), ("lease_time", 3600), "end"]))
    elif attack == "rogue-ra":
        prefix, = rest
        frame = (Ether(src=me, dst="33:33:00:00:00:01") / IPv6(src="fe80::bad", dst="ff02::1", hlim=255)
                 / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=me)
                 / ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=64, L=1, A=1,
                                         validlifetime=86400, preferredlifetime=14400))
    elif attack == "forge-arp":
        claimed, dst = rest
        frame = Ether(src=me, dst=dst) / ARP(op=2, hwsrc=me, psrc=claimed, hwdst=dst, pdst=claimed)
    elif attack == "forge-na":
        claimed, dst = rest
        frame = (Ether(src=me, dst=dst) / IPv6(src="fe80::bad", dst="ff02::1", hlim=255)
                 / ICMPv6ND_NA(tgt=claimed, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=me))
    else:
        raise SystemExit("hostile_guest.py: unknown attack " + attack)
    sendp(frame, iface=iface, count=count, inter=0.01, verbose=False)
    print(count)


if __name__ == "__main__":
    main()
