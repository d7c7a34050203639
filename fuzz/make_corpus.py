#!/usr/bin/python3
"""make_corpus.py: writes the seed corpus fuzz/corpus/TARGET/ from the repository's golden bytes and scapy.

Frames come from Tests/ProtoTests/GoldenBytes.swift, Tests/SwitchTests/ResponderGolden.swift,
Tests/TestSupport/DHCPGoldenBytes.swift, Tests/ProtoTests/DNSGoldenBytes.swift and
RouterAdvertisementGolden.swift; GSO super-frames for segmentation are built here with scapy.
Each seed is laid out as its target reads input (see fuzz/Sources/SwitchdFuzz). Run from anywhere:
  /usr/bin/python3 fuzz/make_corpus.py
Files named regression-* (crash inputs kept as seeds) are left alone.
"""
import hashlib, os, re, struct, sys

from scapy.all import (Ether, Dot1Q, IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrRouting, Raw, DNS, DNSQR, conf)

conf.verb = 0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def swift_arrays(path):
    """Every `[UInt8] = [0x.., ...]` array and every quoted even-length hex string in a Swift file."""
    text = open(os.path.join(ROOT, path)).read()
    found = []
    for body in re.findall(r"\[UInt8\]\s*=\s*\[(.*?)\]", text, re.S):
        found.append(bytes(int(h, 16) for h in re.findall(r"0x([0-9a-fA-F]{2})", body)))
    for h in re.findall(r'"([0-9a-f]{16,})"', text):
        if len(h) % 2 == 0:
            found.append(bytes.fromhex(h))
    return [f for f in found if f]


frames = []
for path in ["Tests/ProtoTests/GoldenBytes.swift", "Tests/SwitchTests/ResponderGolden.swift",
             "Tests/TestSupport/DHCPGoldenBytes.swift"]:
    frames += swift_arrays(path)
dns_messages = swift_arrays("Tests/ProtoTests/DNSGoldenBytes.swift")
router_messages = swift_arrays("Tests/ProtoTests/RouterAdvertisementGolden.swift")

seeds = {}


def add(target, data):
    seeds.setdefault(target, set()).add(bytes(data))


def pseudo_sum(ip, proto, length):
    """The folded ones'-complement sum of the IPv4/IPv6 pseudo-header, as the targets' 2-byte prefix."""
    if ip.version == 4:
        words = bytes(ip)[12:20]
        total = sum(struct.unpack("!4H", words)) + proto + length
    else:
        raw = bytes(ip)[8:40]
        total = sum(struct.unpack("!16H", raw)) + proto + (length >> 16) + (length & 0xFFFF)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("!H", total)


for frame in frames:
    pkt = Ether(frame)
    add("ethernet", frame)
    # Each responder gets the frames of its protocol (control 0: checksums as they are).
    if pkt.haslayer("ARP"):
        add("arp-responder", b"\x00\x00" + frame)
    if pkt.haslayer(IPv6) and pkt[IPv6].nh == 58:
        add("ndp-responder", b"\x00\x00" + frame)
        add("ra-responder", b"\x00\x00\x00\x00" + frame)
    if pkt.haslayer(ICMP) or pkt.haslayer(ICMPv6EchoRequest):
        add("echo-responder", b"\x00\x00" + frame)
    if pkt.haslayer(UDP) and 67 in (pkt[UDP].sport, pkt[UDP].dport) and pkt.haslayer(IP) and pkt[IP].dst in ("255.255.255.255", "192.168.107.1"):
        add("dhcp-server", b"\x00" + struct.pack("!H", len(frame)) + b"\x00\x00" + frame)
    if pkt.haslayer(TCP) or pkt.haslayer(UDP):
        add("headerless", struct.pack("!H", 1500) + frame)
    add("stream-framer", bytes([255, 0]) + struct.pack("!I", len(frame)) + frame if len(frame) <= 269 else b"")
    if pkt.haslayer("ARP"):
        add("arp", bytes(pkt["ARP"])[:28])
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        continue
    add("ipv4" if ip.version == 4 else "ipv6", bytes(ip))
    l4 = ip.payload
    while l4 is not None and l4.name.startswith("IPv6 Extension"):
        l4 = l4.payload
    if l4 is None:
        continue
    raw = bytes(l4)
    proto = {"UDP": 17, "TCP": 6}.get(l4.name, 58)
    prefix = pseudo_sum(ip, proto, len(raw))
    if pkt.haslayer(ICMP):
        add("icmpv4", bytes(pkt[ICMP]))
    elif ip.version == 6 and ip.nh == 58:
        add("icmpv6", prefix + raw)
        add("ndp", prefix + raw)
    if pkt.haslayer(UDP):
        add("udp", prefix + bytes(pkt[UDP]))
        payload = bytes(pkt[UDP].payload)
        if pkt[UDP].dport in (67, 68) or pkt[UDP].sport in (67, 68):
            add("dhcp", payload)
        if pkt[UDP].dport == 53 or pkt[UDP].sport == 53:
            add("dns", payload)
    if pkt.haslayer(TCP):
        add("tcp", pseudo_sum(ip, 6, len(bytes(pkt[TCP]))) + bytes(pkt[TCP]))

for message in router_messages:
    add("ndp", b"\x00\x00" + message)
    add("icmpv6", b"\x00\x00" + message)
for message in dns_messages:
    add("dns", message)
    add("dns-proxy", bytes([0, len(message)]) + message if len(message) < 256 else b"")

# DNS proxy sequences: a query forwarded, its reply with the forwarded ID, a local name, expiry.
q = bytes(DNS(id=0x1234, rd=1, qd=DNSQR(qname="example.org", qtype="A")))
r = bytes(DNS(id=0x1001, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.org", qtype="A")))
local = bytes(DNS(id=7, rd=1, qd=DNSQR(qname="guest.test.internal", qtype="AAAA")))
ptr = bytes(DNS(id=8, rd=1, qd=DNSQR(qname="23.107.168.192.in-addr.arpa", qtype="PTR")))
add("dns-proxy", bytes([0, len(q)]) + q + bytes([0x11, len(r)]) + r)
add("dns-proxy", bytes([4, len(local)]) + local + bytes([0, len(ptr)]) + ptr + bytes([2, 3]))
add("dns-proxy", bytes([0, len(q)]) + q + bytes([2, 3, 0x13 | 0x20, 0]) + bytes([2, 3]))
for m in (q, r, local, ptr):
    add("dns", m)

# Segmentation: GSO super-frames (virtio header, MTU, control byte, frame), TCP and UDP over IPv4,
# IPv6 with extension headers, and a VLAN tag; checksums partial (the pseudo-header sum) or zero.
payload = bytes(range(256)) * 12
mac = Ether(dst="52:54:00:12:34:56", src="02:00:00:00:00:01")
supers = [
    (1, mac / IP(src="10.0.0.1", dst="10.0.0.2", id=0xFFF0) / TCP(sport=1, dport=2, seq=0xFFFFF000, flags="PA",
                                                                     options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]) / payload[:3000]),
    (4, mac / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=1, dport=2, flags="FPA") / payload[:2500]),
    (4, mac / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(flags="A") / payload[:2000]),
    (5, mac / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / payload[:2900]),
    (5, mac / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2) / payload[:2000]),
    (1 | 0x80, mac / Dot1Q(vlan=100) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="CA") / payload[:2000]),
]
for gso, pkt in supers:
    frame = bytes(pkt)
    l = Ether(frame)
    ip = l.getlayer(IP) or l.getlayer(IPv6)
    l4 = l.getlayer(TCP) or l.getlayer(UDP)
    l4_offset = len(frame) - len(bytes(l4))
    hdr_len = l4_offset + (len(bytes(l4)) - len(bytes(l4.payload)))
    csum_offset = 16 if l4.name == "TCP" else 6
    gso_size = 1448 if l4.name == "TCP" else 1400
    header = struct.pack("<BBHHHHH", 1, gso, hdr_len, gso_size, l4_offset, csum_offset, 0)
    add("segmentation", header + struct.pack("!H", 1500) + b"\x00" + frame)
    add("segmentation", header + struct.pack("!H", 1280) + b"\x01" + frame)
    add("virtio", header + frame[:600])
    add("headerless", struct.pack("!H", 1500) + frame)
    add("headerless", struct.pack("!H", 9000) + frame)

# The stream framer: several frames, split in odd chunks, one bad length at the end.
small = [bytes(Ether(dst="52:54:00:12:34:56", src="02:00:00:00:00:01") / IP() / UDP() / (b"x" * n)) for n in (0, 7, 30)]
stream = b"".join(struct.pack("!I", len(f)) + f for f in small)
add("stream-framer", bytes([80, 3, 5, 17, 1]) + stream)
add("stream-framer", bytes([80, 0]) + stream + struct.pack("!I", 13))

os.makedirs(OUT, exist_ok=True)
for target, items in sorted(seeds.items()):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if not name.startswith("regression-"):
            os.remove(os.path.join(folder, name))
    for data in sorted(items):
        if not data:
            continue
        with open(os.path.join(folder, "seed-" + hashlib.sha1(data).hexdigest()[:12]), "wb") as f:
            f.write(data)
    print(f"{target:16} {len(os.listdir(folder)):3} seeds {sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)):7} bytes")
