#!/usr/bin/python3
"""Golden frames for the gateway responders (ARP, NDP, RA, echo), and an independent check of replies.

Both halves use scapy 2.5, an implementation independent of Proto and Switch.

  responders.py generate
      Rewrites Tests/SwitchTests/ResponderGolden.swift (requests, the replies scapy builds for
      them, frames that are no responder's) and Tests/ProtoTests/RouterAdvertisementGolden.swift.
      Run it with the system python that has scapy: /usr/bin/python3 Tests/ProtoTests/Golden/responders.py generate

  responders.py check MANIFEST.json
      MANIFEST is a list of {"name", "kind", "request", "reply", "router_lifetime", "mtu"} with
      hex frames, written by ResponderScapyTests.swift from what the Swift responders produced.
      Each reply is dissected by scapy and checked against its request and the RFCs: checksums
      (scapy recomputes them), hop limit 255 for ND, flags, addresses, options. Kinds: arp, na,
      ra (request may be empty for unsolicited), echo4, echo6. Prints one line per problem and
      "N cases, P problems"; exits 1 on problems, 2 on bad usage.
"""
import json
import os
import sys

from scapy.all import (ARP, ICMP, IP, Dot1Q, Ether, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU,
                       ICMPv6NDOptPrefixInfo, ICMPv6NDOptRDNSS, ICMPv6NDOptSrcLLAddr, IPOption_EOL,
                       IPOption_NOP, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Raw, UDP, Padding,
                       in6_getnsma, in6_getnsmac, inet_pton, socket, raw)

# The gateway and guest of every golden frame (ResponderTestSupport.swift uses the same values).
GW_MAC = "02:00:5e:a1:b2:c3"
GW4 = "192.168.107.1"
GW_LL = "fe80::5eff:fea1:b2c3"
GW_ULA = "fd00:1234:5678:9abc::1"
PREFIX = "fd00:1234:5678:9abc::"
G_MAC = "52:54:00:12:34:56"
G4 = "192.168.107.23"
G_LL = "fe80::5054:ff:fe12:3456"
G_ULA = "fd00:1234:5678:9abc:5054:ff:fe12:3456"
ALL_NODES, ALL_ROUTERS = "ff02::1", "ff02::2"
ALL_NODES_MAC, ALL_ROUTERS_MAC = "33:33:00:00:00:01", "33:33:00:00:00:02"
MAX_INTERVAL = 200
RDNSS_LIFETIME = 3 * MAX_INTERVAL


def nsma(address):
    """The solicited-node multicast group of an address, and its MAC."""
    group = socket.inet_ntop(socket.AF_INET6, in6_getnsma(inet_pton(socket.AF_INET6, address)))
    return group, in6_getnsmac(inet_pton(socket.AF_INET6, group))


def ra(dst, dst_mac, router_lifetime=0, mtu=1500):
    return (Ether(dst=dst_mac, src=GW_MAC) / IPv6(src=GW_LL, dst=dst, hlim=255) /
            ICMPv6ND_RA(chlim=64, M=0, O=0, H=0, prf=0, P=0, routerlifetime=router_lifetime, reachabletime=0, retranstimer=0) /
            ICMPv6NDOptSrcLLAddr(lladdr=GW_MAC) / ICMPv6NDOptMTU(mtu=mtu) /
            ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400, prefix=PREFIX) /
            ICMPv6NDOptRDNSS(lifetime=RDNSS_LIFETIME, dns=[GW_ULA]))


def na(target, dst, dst_mac, solicited):
    return (Ether(dst=dst_mac, src=GW_MAC) / IPv6(src=target, dst=dst, hlim=255) /
            ICMPv6ND_NA(R=1, S=1 if solicited else 0, O=1, tgt=target) / ICMPv6NDOptDstLLAddr(lladdr=GW_MAC))


def ns(src, dst, dst_mac, target, sllao=True, hlim=255):
    frame = Ether(dst=dst_mac, src=G_MAC) / IPv6(src=src, dst=dst, hlim=hlim) / ICMPv6ND_NS(tgt=target)
    return frame / ICMPv6NDOptSrcLLAddr(lladdr=G_MAC) if sllao else frame


GW_LL_GROUP, GW_LL_GROUP_MAC = nsma(GW_LL)
GW_ULA_GROUP, GW_ULA_GROUP_MAC = nsma(GW_ULA)
G_ULA_GROUP, G_ULA_GROUP_MAC = nsma(G_ULA)
PING_DATA = bytes(range(32))
PING6_DATA = b"switchd echo, odd length payload!"

# name: (responder, request, expected reply); every reply here is what scapy builds, not us.
PAIRS = {
    "arpRequest": ("arp",
        Ether(dst="ff:ff:ff:ff:ff:ff", src=G_MAC) / ARP(op=1, hwsrc=G_MAC, psrc=G4, hwdst="00:00:00:00:00:00", pdst=GW4),
        Ether(dst=G_MAC, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW4, hwdst=G_MAC, pdst=G4)),
    # Padded to the 60-byte Ethernet minimum, and unicast to the gateway (a cache refresh).
    "arpRequestPaddedUnicast": ("arp",
        Ether(dst=GW_MAC, src=G_MAC) / ARP(op=1, hwsrc=G_MAC, psrc=G4, hwdst=GW_MAC, pdst=GW4) / Padding(b"\0" * 18),
        Ether(dst=G_MAC, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW4, hwdst=G_MAC, pdst=G4)),
    # RFC 5227 probe for the gateway address: answered, to the prober, target address 0.0.0.0.
    "arpProbe": ("arp",
        Ether(dst="ff:ff:ff:ff:ff:ff", src=G_MAC) / ARP(op=1, hwsrc=G_MAC, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=GW4),
        Ether(dst=G_MAC, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW4, hwdst=G_MAC, pdst="0.0.0.0")),
    "nsLinkLocal": ("ndp",
        ns(G_LL, GW_LL_GROUP, GW_LL_GROUP_MAC, GW_LL),
        na(GW_LL, G_LL, G_MAC, True)),
    "nsGlobal": ("ndp",
        ns(G_ULA, GW_ULA_GROUP, GW_ULA_GROUP_MAC, GW_ULA),
        na(GW_ULA, G_ULA, G_MAC, True)),
    # Unicast neighbour unreachability probe without a link-layer option: answered to the frame's source MAC.
    "nsUnicastNoOption": ("ndp",
        ns(G_LL, GW_LL, GW_MAC, GW_LL, sllao=False),
        na(GW_LL, G_LL, G_MAC, True)),
    # DAD probe for the gateway's address from a guest: defended with an unsolicited NA to all-nodes.
    "nsDuplicateAddress": ("ndp",
        ns("::", GW_ULA_GROUP, GW_ULA_GROUP_MAC, GW_ULA, sllao=False),
        na(GW_ULA, ALL_NODES, ALL_NODES_MAC, False)),
    "rs": ("ra",
        Ether(dst=ALL_ROUTERS_MAC, src=G_MAC) / IPv6(src=G_LL, dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS() /
            ICMPv6NDOptSrcLLAddr(lladdr=G_MAC),
        ra(G_LL, G_MAC)),
    "rsUnspecified": ("ra",
        Ether(dst=ALL_ROUTERS_MAC, src=G_MAC) / IPv6(src="::", dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS(),
        ra(ALL_NODES, ALL_NODES_MAC)),
    "echo4": ("echo",
        Ether(dst=GW_MAC, src=G_MAC) / IP(src=G4, dst=GW4, id=0xbeef, flags="DF", ttl=64) /
            ICMP(type=8, code=0, id=0x1c2d, seq=3) / Raw(PING_DATA),
        Ether(dst=G_MAC, src=GW_MAC) / IP(src=GW4, dst=G4, id=0, flags="DF", ttl=64) /
            ICMP(type=0, code=0, id=0x1c2d, seq=3) / Raw(PING_DATA)),
    # IPv4 options and Ethernet padding in the request are not in the reply.
    "echo4OptionsPadded": ("echo",
        Ether(dst=GW_MAC, src=G_MAC) / IP(src=G4, dst=GW4, id=1, ttl=3,
                                         options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()]) /
            ICMP(type=8, id=7, seq=65535) / Padding(b"\0" * 14),
        Ether(dst=G_MAC, src=GW_MAC) / IP(src=GW4, dst=G4, id=0, flags="DF", ttl=64) / ICMP(type=0, id=7, seq=65535)),
    "echo6Global": ("echo",
        Ether(dst=GW_MAC, src=G_MAC) / IPv6(src=G_ULA, dst=GW_ULA, hlim=64) /
            ICMPv6EchoRequest(id=0x77, seq=9, data=PING6_DATA),
        Ether(dst=G_MAC, src=GW_MAC) / IPv6(src=GW_ULA, dst=G_ULA, hlim=64) /
            ICMPv6EchoReply(id=0x77, seq=9, data=PING6_DATA)),
    # Link-local, behind a hop-by-hop header (the reply has none).
    "echo6LinkLocalHopByHop": ("echo",
        Ether(dst=GW_MAC, src=G_MAC) / IPv6(src=G_LL, dst=GW_LL, hlim=1) / IPv6ExtHdrHopByHop() /
            ICMPv6EchoRequest(id=1, seq=2, data=b"x"),
        Ether(dst=G_MAC, src=GW_MAC) / IPv6(src=GW_LL, dst=G_LL, hlim=64) / ICMPv6EchoReply(id=1, seq=2, data=b"x")),
}

# Frames no responder may claim (forwarding handles them).
OTHER = "192.168.107.99"
OTHER_ULA_SAME_GROUP = "fd00:1234:5678:9abc:99::1"  # shares ff02::1:ff00:1 with the gateway's ULA
NOT_MINE = {
    "arpOtherTarget": Ether(dst="ff:ff:ff:ff:ff:ff", src=G_MAC) /
        ARP(op=1, hwsrc=G_MAC, psrc=G4, hwdst="00:00:00:00:00:00", pdst=OTHER),
    "arpGratuitous": Ether(dst="ff:ff:ff:ff:ff:ff", src=G_MAC) /
        ARP(op=1, hwsrc=G_MAC, psrc=G4, hwdst="00:00:00:00:00:00", pdst=G4),
    "arpReplyToGateway": Ether(dst=GW_MAC, src=G_MAC) / ARP(op=2, hwsrc=G_MAC, psrc=G4, hwdst=GW_MAC, pdst=GW4),
    "arpVLAN": Ether(dst="ff:ff:ff:ff:ff:ff", src=G_MAC) / Dot1Q(vlan=5) /
        ARP(op=1, hwsrc=G_MAC, psrc=G4, hwdst="00:00:00:00:00:00", pdst=GW4),
    "nsOtherTarget": ns(G_LL, G_ULA_GROUP, G_ULA_GROUP_MAC, G_ULA),
    "nsOtherTargetSameGroup": ns(G_LL, GW_ULA_GROUP, GW_ULA_GROUP_MAC, OTHER_ULA_SAME_GROUP),
    "nsVLAN": Ether(dst=GW_LL_GROUP_MAC, src=G_MAC) / Dot1Q(vlan=5) / IPv6(src=G_LL, dst=GW_LL_GROUP, hlim=255) /
        ICMPv6ND_NS(tgt=GW_LL) / ICMPv6NDOptSrcLLAddr(lladdr=G_MAC),
    "naFromGuest": Ether(dst=ALL_NODES_MAC, src=G_MAC) / IPv6(src=G_LL, dst=ALL_NODES, hlim=255) /
        ICMPv6ND_NA(R=0, S=0, O=1, tgt=G_LL) / ICMPv6NDOptDstLLAddr(lladdr=G_MAC),
    "raFromGuest": Ether(dst=ALL_NODES_MAC, src=G_MAC) / IPv6(src=G_LL, dst=ALL_NODES, hlim=255) / ICMPv6ND_RA(),
    "rsVLAN": Ether(dst=ALL_ROUTERS_MAC, src=G_MAC) / Dot1Q(vlan=5) / IPv6(src=G_LL, dst=ALL_ROUTERS, hlim=255) /
        ICMPv6ND_RS(),
    "echo4OtherHost": Ether(dst=GW_MAC, src=G_MAC) / IP(src=G4, dst=OTHER) / ICMP(type=8, id=1, seq=1),
    "echo4ToGuest": Ether(dst=G_MAC, src=GW_MAC) / IP(src=OTHER, dst=G4) / ICMP(type=8, id=1, seq=1),
    "icmp4ReplyToGateway": Ether(dst=GW_MAC, src=G_MAC) / IP(src=G4, dst=GW4) / ICMP(type=0, id=1, seq=1),
    "dnsToGateway": Ether(dst=GW_MAC, src=G_MAC) / IP(src=G4, dst=GW4) / UDP(sport=5353, dport=53) / Raw(b"q"),
    "echo6OtherHost": Ether(dst=GW_MAC, src=G_MAC) / IPv6(src=G_LL, dst=G_ULA) / ICMPv6EchoRequest(id=1, seq=1),
    "echo6VLAN": Ether(dst=GW_MAC, src=G_MAC) / Dot1Q(vlan=5) / IPv6(src=G_ULA, dst=GW_ULA) / ICMPv6EchoRequest(),
    "ipv4Fragment": Ether(dst=G_MAC, src=GW_MAC) / IP(src=G4, dst=OTHER, flags="MF") / Raw(b"12345678"),
}

UNSOLICITED = {
    "raUnsolicited": ra(ALL_NODES, ALL_NODES_MAC),
    # routesBeyondHost (shared mode): router lifetime 3 x MaxRtrAdvInterval; MTU 9000.
    "raUnsolicitedShared": ra(ALL_NODES, ALL_NODES_MAC, router_lifetime=3 * MAX_INTERVAL, mtu=9000),
}


def hexstring(frame):
    return raw(frame).hex()


def generate():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    lines = ["// Golden responder frames generated by ProtoTests/Golden/responders.py with scapy 2.5.0; do not edit by hand.",
             "", "enum ResponderGolden {"]
    lines.append("    /// Request, the responder that owns it, and the reply scapy builds for it.")
    lines.append("    static let pairs: [(name: String, responder: String, request: String, reply: String)] = [")
    for name, (responder, request, reply) in PAIRS.items():
        lines.append(f"        // {request.summary()}")
        lines.append(f'        ("{name}", "{responder}",')
        lines.append(f'         "{hexstring(request)}",')
        lines.append(f'         "{hexstring(reply)}"),')
    lines.append("    ]")
    lines.append("    /// Frames that no responder may claim.")
    lines.append("    static let notMine: [(name: String, frame: String)] = [")
    for name, frame in NOT_MINE.items():
        lines.append(f"        // {frame.summary()}")
        lines.append(f'        ("{name}", "{hexstring(frame)}"),')
    lines.append("    ]")
    for name, frame in UNSOLICITED.items():
        lines.append(f"    /// {frame.summary()}")
        lines.append(f'    static let {name} = "{hexstring(frame)}"')
    lines.append("}")
    with open(os.path.join(root, "SwitchTests", "ResponderGolden.swift"), "w") as out:
        out.write("\n".join(lines) + "\n")

    # Proto: the RA and RS messages alone (from the ICMPv6 header), for RouterAdvertisementTests.
    rs = PAIRS["rs"][1]
    lines = ["// Golden RS/RA messages generated by Golden/responders.py with scapy 2.5.0; do not edit by hand.",
             "", "enum RouterGolden {",
             "    /// Router Solicitation from fe80::5054:ff:fe12:3456 to ff02::2 with a source link-layer option.",
             f'    static let solicitation = "{raw(rs[ICMPv6ND_RS]).hex()}"',
             "    /// Router Advertisement from fe80::5eff:fea1:b2c3 to ff02::1: SLLA, MTU 9000, prefix, RDNSS; lifetime 600.",
             f'    static let advertisement = "{raw(UNSOLICITED["raUnsolicitedShared"][ICMPv6ND_RA]).hex()}"',
             "}"]
    with open(os.path.join(root, "ProtoTests", "RouterAdvertisementGolden.swift"), "w") as out:
        out.write("\n".join(lines) + "\n")


# --- check ---------------------------------------------------------------------------------------

problems = []


def expect(case, condition, message):
    if not condition:
        problems.append(f"FAIL {case['name']}: {message}")


def checksum_ok(pkt, layer):
    """True when the checksum of `layer` in `pkt` is what scapy computes for it."""
    stored = pkt[layer].chksum if hasattr(pkt[layer], "chksum") else pkt[layer].cksum
    rebuilt = pkt.copy()
    if hasattr(rebuilt[layer], "chksum"):
        del rebuilt[layer].chksum
    else:
        del rebuilt[layer].cksum
    rebuilt = Ether(raw(rebuilt))
    again = rebuilt[layer].chksum if hasattr(rebuilt[layer], "chksum") else rebuilt[layer].cksum
    return stored == again


def check_arp(case, request, reply):
    expect(case, ARP in reply and reply[ARP].op == 2, "not an ARP reply")
    if ARP not in reply:
        return
    a, q = reply[ARP], request[ARP]
    expect(case, reply.dst == q.hwsrc and reply.src == GW_MAC, f"ethernet {reply.src} > {reply.dst}")
    expect(case, (a.hwsrc, a.psrc) == (GW_MAC, GW4), f"sender {a.hwsrc} {a.psrc}")
    expect(case, (a.hwdst, a.pdst) == (q.hwsrc, q.psrc), f"target {a.hwdst} {a.pdst}")
    expect(case, (a.hwtype, a.ptype, a.hwlen, a.plen) == (1, 0x0800, 6, 4), "hardware/protocol fields")


def check_na(case, request, reply):
    expect(case, ICMPv6ND_NA in reply, "not a neighbour advertisement")
    if ICMPv6ND_NA not in reply:
        return
    n, ip, q = reply[ICMPv6ND_NA], reply[IPv6], request[IPv6]
    dad = q.src == "::"
    expect(case, ip.hlim == 255, f"hop limit {ip.hlim}")
    expect(case, checksum_ok(reply, ICMPv6ND_NA), "ICMPv6 checksum")
    expect(case, n.code == 0 and n.R == 1 and n.O == 1 and n.S == (0 if dad else 1), f"flags R{n.R} S{n.S} O{n.O}")
    expect(case, n.tgt == request[ICMPv6ND_NS].tgt and n.tgt in (GW_LL, GW_ULA), f"target {n.tgt}")
    expect(case, ip.src == n.tgt, f"source {ip.src}")
    expect(case, ip.dst == (ALL_NODES if dad else q.src), f"destination {ip.dst}")
    expected_mac = ALL_NODES_MAC if dad else (request[ICMPv6NDOptSrcLLAddr].lladdr if ICMPv6NDOptSrcLLAddr in request
                                              else request.src)
    expect(case, reply.dst == expected_mac and reply.src == GW_MAC, f"ethernet {reply.src} > {reply.dst}")
    expect(case, ICMPv6NDOptDstLLAddr in reply and reply[ICMPv6NDOptDstLLAddr].lladdr == GW_MAC, "target link-layer option")
    expect(case, ip.plen == 32 and len(raw(reply)) == 86, f"lengths {ip.plen} {len(raw(reply))}")


def check_ra(case, request, reply):
    expect(case, ICMPv6ND_RA in reply, "not a router advertisement")
    if ICMPv6ND_RA not in reply:
        return
    r, ip = reply[ICMPv6ND_RA], reply[IPv6]
    to_all = request is None or request[IPv6].src == "::"
    expect(case, ip.hlim == 255 and ip.src == GW_LL, f"hop limit {ip.hlim}, source {ip.src}")
    expect(case, ip.dst == (ALL_NODES if to_all else request[IPv6].src), f"destination {ip.dst}")
    expected_mac = ALL_NODES_MAC if to_all else request[ICMPv6NDOptSrcLLAddr].lladdr
    expect(case, reply.dst == expected_mac and reply.src == GW_MAC, f"ethernet {reply.src} > {reply.dst}")
    expect(case, checksum_ok(reply, ICMPv6ND_RA), "ICMPv6 checksum")
    expect(case, (r.code, r.chlim, r.M, r.O, r.H, r.prf, r.P) == (0, 64, 0, 0, 0, 0, 0), "cur hop limit / flags")
    expect(case, r.routerlifetime == case["router_lifetime"], f"router lifetime {r.routerlifetime}")
    expect(case, (r.reachabletime, r.retranstimer) == (0, 0), "reachable / retrans")
    expect(case, ICMPv6NDOptSrcLLAddr in reply and reply[ICMPv6NDOptSrcLLAddr].lladdr == GW_MAC, "source link-layer option")
    expect(case, ICMPv6NDOptMTU in reply and reply[ICMPv6NDOptMTU].mtu == case["mtu"], "MTU option")
    p = reply[ICMPv6NDOptPrefixInfo] if ICMPv6NDOptPrefixInfo in reply else None
    expect(case, p is not None and (p.prefixlen, p.L, p.A, p.prefix) == (64, 1, 1, PREFIX)
           and p.validlifetime == 86400 and p.preferredlifetime == 14400, "prefix information option")
    d = reply[ICMPv6NDOptRDNSS] if ICMPv6NDOptRDNSS in reply else None
    expect(case, d is not None and d.dns == [GW_ULA] and d.lifetime == RDNSS_LIFETIME and d.len == 3, "RDNSS option")


def check_echo4(case, request, reply):
    expect(case, ICMP in reply and reply[ICMP].type == 0 and reply[ICMP].code == 0, "not an echo reply")
    if ICMP not in reply:
        return
    ip, q = reply[IP], request[IP]
    expect(case, checksum_ok(reply, IP), "IPv4 header checksum")
    expect(case, checksum_ok(reply, ICMP), "ICMP checksum")
    expect(case, (ip.src, ip.dst, ip.ttl, ip.ihl) == (GW4, q.src, 64, 5), f"ip {ip.src} > {ip.dst} ttl {ip.ttl}")
    expect(case, reply.dst == request.src and reply.src == GW_MAC, f"ethernet {reply.src} > {reply.dst}")
    expect(case, (reply[ICMP].id, reply[ICMP].seq) == (request[ICMP].id, request[ICMP].seq), "id / seq")
    request_data = raw(q)[q.ihl * 4 + 8:q.len]
    reply_data = raw(ip)[ip.ihl * 4 + 8:ip.len]
    expect(case, reply_data == request_data and ip.len == q.len - (q.ihl - 5) * 4, "data")
    expect(case, len(raw(reply)) == 14 + ip.len, "no padding or trailing bytes")


def check_echo6(case, request, reply):
    expect(case, ICMPv6EchoReply in reply and reply[ICMPv6EchoReply].code == 0, "not an echo reply")
    if ICMPv6EchoReply not in reply:
        return
    ip, q = reply[IPv6], request[IPv6]
    e, r = reply[ICMPv6EchoReply], request[ICMPv6EchoRequest]
    expect(case, checksum_ok(reply, ICMPv6EchoReply), "ICMPv6 checksum")
    expect(case, (ip.src, ip.dst, ip.hlim, ip.nh) == (q.dst, q.src, 64, 58), f"ip {ip.src} > {ip.dst} hlim {ip.hlim}")
    expect(case, reply.dst == request.src and reply.src == GW_MAC, f"ethernet {reply.src} > {reply.dst}")
    expect(case, (e.id, e.seq, e.data) == (r.id, r.seq, r.data), "id / seq / data")


CHECKS = {"arp": check_arp, "na": check_na, "ra": check_ra, "echo4": check_echo4, "echo6": check_echo6}


def check(manifest):
    with open(manifest) as f:
        cases = json.load(f)
    for case in cases:
        request = Ether(bytes.fromhex(case["request"])) if case.get("request") else None
        reply = Ether(bytes.fromhex(case["reply"]))
        if case["kind"] not in CHECKS:
            expect(case, False, f"unknown kind {case['kind']}")
            continue
        CHECKS[case["kind"]](case, request, reply)
    for problem in problems:
        print(problem)
    print(f"{len(cases)} cases, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "generate":
        generate()
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
