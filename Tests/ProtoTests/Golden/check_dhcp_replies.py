#!/usr/bin/python3
# Checks reply frames written by DHCPServer with scapy 2.5 (an implementation independent of ours).
# Usage: check_dhcp_replies.py MANIFEST.json, where the manifest is a list of cases:
#   {"name": ..., "frame": HEX, "expect": {"eth_dst", "ip_src", "ip_dst", "xid", "yiaddr", "ciaddr",
#    "flags", "type" (offer/ack/nak), "options": {scapy option name: value}, "absent": [names]}}
# Values that are strings starting with "hex:" are compared as bytes. For each frame it checks that
# scapy decodes Ether/IP/UDP/BOOTP/DHCP, that the IP header and UDP checksums and lengths are what
# scapy computes itself, ports 67 -> 68, and every expected field and option.
# Prints "N cases, M problems" last; exits 1 when M > 0.
import json
import sys
from scapy.all import Ether, IP, UDP, BOOTP, DHCP
from scapy.layers.dhcp import DHCPTypes


def value(v):
    return bytes.fromhex(v[4:]) if isinstance(v, str) and v.startswith("hex:") else v


def check(case):
    problems = []
    data = bytes.fromhex(case["frame"])
    pkt = Ether(data)
    for layer in (IP, UDP, BOOTP, DHCP):
        if layer not in pkt:
            return [f"no {layer.__name__} layer: {pkt.summary()}"]
    ip, udp, bootp = pkt[IP], pkt[UDP], pkt[BOOTP]
    rebuilt = Ether(data)
    del rebuilt[IP].chksum
    del rebuilt[IP].len
    del rebuilt[UDP].chksum
    del rebuilt[UDP].len
    rebuilt = Ether(bytes(rebuilt))
    if rebuilt[IP].chksum != ip.chksum:
        problems.append(f"IP checksum {ip.chksum:#06x}, scapy computes {rebuilt[IP].chksum:#06x}")
    if rebuilt[UDP].chksum != udp.chksum:
        problems.append(f"UDP checksum {udp.chksum:#06x}, scapy computes {rebuilt[UDP].chksum:#06x}")
    if ip.len != len(bytes(ip)) or udp.len != len(bytes(udp)):
        problems.append(f"lengths IP {ip.len} UDP {udp.len} for {len(bytes(ip))}/{len(bytes(udp))} bytes")
    if (udp.sport, udp.dport) != (67, 68):
        problems.append(f"ports {udp.sport} -> {udp.dport}")
    if bootp.op != 2:
        problems.append(f"op {bootp.op}")
    expect = case["expect"]
    fields = {"eth_dst": pkt[Ether].dst, "ip_src": ip.src, "ip_dst": ip.dst, "xid": bootp.xid,
              "yiaddr": bootp.yiaddr, "ciaddr": bootp.ciaddr, "flags": int(bootp.flags)}
    for key, got in fields.items():
        if key in expect and expect[key] != got:
            problems.append(f"{key} {got!r}, expected {expect[key]!r}")
    options = {o[0]: (o[1] if len(o) == 2 else list(o[1:])) for o in pkt[DHCP].options if isinstance(o, tuple)}
    kind = options.get("message-type")
    if "type" in expect and DHCPTypes.get(kind) != expect["type"]:
        problems.append(f"message type {kind}, expected {expect['type']}")
    for name, want in expect.get("options", {}).items():
        if name not in options:
            problems.append(f"option {name} missing")
        elif options[name] != value(want):
            problems.append(f"option {name} {options[name]!r}, expected {value(want)!r}")
    for name in expect.get("absent", []):
        if name in options:
            problems.append(f"option {name} present: {options[name]!r}")
    return problems


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    total = 0
    for case in cases:
        for problem in check(case):
            print(f"{case['name']}: {problem}")
            total += 1
    print(f"{len(cases)} cases, {total} problems")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
