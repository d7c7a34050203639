#!/usr/bin/env python3
"""Independent check of switchd's software segmentation (Proto/Segmentation.swift) with scapy.

Usage: check_segments.py MANIFEST.json

The manifest is a list of cases written by SegmentationScapyTests.swift. Each names a pcap
(Ethernet, linktype 1) and what its frames must be:

  kind "segments": the segments of one super-frame, in order. Checked for every segment: frame
    length <= mtu + L2 header; IPv4 Total Length and header checksum; IPv4 id = id0 + i;
    IPv6 Payload Length; TCP/UDP checksum (scapy: delete the field, rebuild, compare); UDP
    Length; TCP sequence numbers contiguous from seq0; FIN/PSH only on the last segment and CWR
    only on the first, other flags as in the super-frame; every segment but the last carries
    exactly segment_payload bytes; the segment count; addresses and ports unchanged; the payloads
    reassemble to the bytes of the file `payload`.
  kind "frames": independent frames (checksums completed in place). Checked for each: lengths and
    IPv4 header checksum, TCP/UDP checksum.

Prints one line per problem and a summary per case; exits 1 if anything failed, 2 on bad usage.
"""
import json
import sys

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Padding, rdpcap, raw  # noqa: E402

FIN, PSH, CWR = 0x01, 0x08, 0x80

problems = []


def fail(case, index, message):
    problems.append(f"FAIL {case['name']} frame {index}: {message}")


def l2_length(pkt):
    length = 14
    layer = pkt.payload
    while isinstance(layer, Dot1Q):
        length += 4
        layer = layer.payload
    return length


def check_ip_and_l4(case, index, data, pkt, l2, exact=True):
    """Checks lengths and checksums of one frame; returns (l4 layer, l4 payload bytes) or None.
    With exact=False the IP packet may be shorter than the frame (Ethernet padding)."""
    padding = len(raw(pkt[Padding])) if Padding in pkt else 0
    if not exact:
        data = data[:len(data) - padding]
    elif padding:
        fail(case, index, f"{padding} bytes after the IP packet")
    if IP in pkt:
        ip = pkt[IP]
        if ip.len != len(data) - l2:
            fail(case, index, f"IPv4 total length {ip.len} != {len(data) - l2}")
        copy = ip.copy()
        del copy.chksum
        expected = IP(raw(copy)).chksum
        if ip.chksum != expected:
            fail(case, index, f"IPv4 header checksum {ip.chksum:#06x} != {expected:#06x}")
    elif IPv6 in pkt:
        ip = pkt[IPv6]
        if ip.plen != len(data) - l2 - 40:
            fail(case, index, f"IPv6 payload length {ip.plen} != {len(data) - l2 - 40}")
    else:
        fail(case, index, "no IP layer")
        return None
    l4class = UDP if UDP in pkt else TCP if TCP in pkt else None
    if l4class is None:
        fail(case, index, "no TCP or UDP layer")
        return None
    l4 = pkt[l4class]
    copy = pkt.copy()
    del copy[l4class].chksum
    expected = Ether(raw(copy))[l4class].chksum
    if l4.chksum != expected:
        fail(case, index, f"{l4class.__name__} checksum {l4.chksum:#06x} != {expected:#06x}")
    if l4class is UDP:
        if l4.chksum == 0:
            fail(case, index, "UDP checksum 0 (not computed)")
        if l4.len != len(raw(l4)) - padding:
            fail(case, index, f"UDP length {l4.len} != {len(raw(l4)) - padding}")
    return l4, bytes(l4.payload)[:len(raw(l4.payload)) - padding]


def check_segments(case, frames):
    payload = open(case["payload"], "rb").read()
    mtu, size, count = case["mtu"], case["segment_payload"], case["segments"]
    if len(frames) != count:
        fail(case, "-", f"{len(frames)} segments, expected {count}")
    reassembled = bytearray()
    first = None
    for index, frame in enumerate(frames):
        data = bytes(frame)
        pkt = Ether(data)
        l2 = l2_length(pkt)
        if len(data) > mtu + l2:
            fail(case, index, f"frame of {len(data)} bytes exceeds MTU {mtu} + {l2}")
        checked = check_ip_and_l4(case, index, data, pkt, l2)
        if checked is None:
            continue
        l4, data_bytes = checked
        last = index == len(frames) - 1
        if not last and len(data_bytes) != size:
            fail(case, index, f"payload {len(data_bytes)} bytes, expected {size}")
        if last and not (0 < len(data_bytes) <= size or (len(payload) == 0 and len(data_bytes) == 0)):
            fail(case, index, f"last payload {len(data_bytes)} bytes, segment size {size}")
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        key = (ip.src, ip.dst, l4.sport, l4.dport)
        if first is None:
            first = key
        elif key != first:
            fail(case, index, f"addresses/ports {key} != {first}")
        if IP in pkt:
            expected_id = (case["ip_id0"] + index) & 0xFFFF
            if ip.id != expected_id:
                fail(case, index, f"IPv4 id {ip.id:#06x} != {expected_id:#06x}")
        if TCP in pkt:
            expected_seq = (case["seq0"] + len(reassembled)) & 0xFFFFFFFF
            if l4.seq != expected_seq:
                fail(case, index, f"seq {l4.seq:#010x} != {expected_seq:#010x}")
            original = case["flags"]
            expected = original & ~(FIN | PSH | CWR)
            if last:
                expected |= original & (FIN | PSH)
            if index == 0:
                expected |= original & CWR
            if int(l4.flags) != expected:
                fail(case, index, f"TCP flags {int(l4.flags):#04x} != {expected:#04x}")
        reassembled += data_bytes
    if bytes(reassembled) != payload:
        fail(case, "-", f"reassembled {len(reassembled)} bytes differ from the {len(payload)}-byte payload")


def check_frames(case, frames):
    for index, frame in enumerate(frames):
        data = bytes(frame)
        pkt = Ether(data)
        check_ip_and_l4(case, index, data, pkt, l2_length(pkt), exact=False)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    cases = json.load(open(sys.argv[1]))
    for case in cases:
        before = len(problems)
        frames = rdpcap(case["pcap"])
        if case["kind"] == "segments":
            check_segments(case, frames)
        else:
            check_frames(case, frames)
        status = "ok" if len(problems) == before else "FAILED"
        print(f"{status} {case['name']}: {len(frames)} frames")
    for line in problems:
        print(line)
    print(f"{len(cases)} cases, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
