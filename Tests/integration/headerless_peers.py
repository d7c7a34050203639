"""Tests/integration/headerless_peers.py: header-less offload peers on a switchd network (t09).

Usage: /usr/bin/python3 headerless_peers.py NETDIR TMPDIR

NETDIR is RUNDIR/NAME (holding dgram.sock and dgram-offload.sock); the network's MTU must be
1500. Three peers, each a unix datagram socket bound to a path in TMPDIR:
  p1  sends to dgram-offload.sock (krunkit `offloading=on`)
  p2  sends to dgram.sock (a plain peer, like QEMU)
  p3  connect()s to dgram.sock and sends the 4-byte `VFKT` first (vfkit/krunkit unixgram)
Each announces its MAC with a broadcast; then:
  (a) p1 sends p2 a TCPv4 super-frame of 20000 payload bytes whose TCP checksum field holds
      only the pseudo-header sum: p2 must get ceil(20000/1460) segments, each <= 1514 bytes
      with valid IPv4 and TCP checksums, in order, payloads reassembling to the original;
  (b) p3 does the same to p2 (same checks); p2 sends p3 a frame, which p3 (connected, so it
      only takes datagrams from dgram.sock) must receive, from dgram.sock;
  (c) p3 sends p1 a super-frame and p1 sends p3 one: the receiver must get frames with
      complete, valid checksums reassembling the payload (whole or cut: logged).
Prints `ok: ...` lines, then `PEERS-OK` and keeps the sockets open until killed (so that the
test can read `status` while the ports exist); on a failure prints `PEERS-FAIL: why` and
exits 1.
"""
import math
import os
import socket
import struct
import sys
import time

from scapy.all import ARP, IP, TCP, UDP, Ether, Raw  # noqa: E402

MTU = 1500
MSS = MTU - 40
PAYLOAD = 20000

MACS = {"p1": "02:00:5e:77:09:01", "p2": "02:00:5e:77:09:02", "p3": "02:00:5e:77:09:03"}
IPS = {"p1": "10.77.0.91", "p2": "10.77.0.92", "p3": "10.77.0.93"}


def fail(msg):
    print("PEERS-FAIL: " + msg, flush=True)
    sys.exit(1)


def log(msg):
    print(msg, flush=True)


class Peer:
    def __init__(self, name, path, target, connect=False):
        self.name, self.target, self.connected = name, target, connect
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.s.bind(path)
        if connect:
            self.s.connect(target)

    def send(self, data):
        if self.connected:
            self.s.send(data)
        else:
            self.s.sendto(data, self.target)

    def recv_until(self, pred, timeout=5.0):
        """Frames (with their sender address) until pred(list) is true or the timeout."""
        got = []
        end = time.time() + timeout
        while not pred(got):
            left = end - time.time()
            if left <= 0:
                break
            self.s.settimeout(left)
            try:
                data, addr = self.s.recvfrom(70000)
            except socket.timeout:
                break
            got.append((data, addr))
        return got


def announce(name):
    mac, ip = MACS[name], IPS[name]
    return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) /
                 ARP(op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=ip))


def is_from(frame, name):
    return len(frame) >= 14 and frame[6:12] == bytes.fromhex(MACS[name].replace(":", ""))


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def super_frame(src, dst, sport, payload):
    """A TCPv4 super-frame whose TCP checksum is the (uncomplemented) pseudo-header sum."""
    pkt = (Ether(src=MACS[src], dst=MACS[dst]) /
           IP(src=IPS[src], dst=IPS[dst], id=0x1000, flags="DF", ttl=64) /
           TCP(sport=sport, dport=5001, seq=1000, ack=1, flags="PA", window=65535) /
           Raw(payload))
    raw = bytearray(bytes(pkt))  # full, correct IPv4 header checksum from scapy
    tcp_len = len(raw) - 14 - 20
    s = 0
    for a in (IPS[src], IPS[dst]):
        hi, lo = struct.unpack("!HH", socket.inet_aton(a))
        s += hi + lo
    s += 6 + tcp_len
    raw[14 + 20 + 16:14 + 20 + 18] = struct.pack("!H", fold(s))
    return bytes(raw)


def checksums_ok(frame):
    """(ip_ok, tcp_ok): the received checksums equal the ones scapy computes afresh."""
    ip = Ether(frame)[IP]
    fresh = ip.copy()
    del fresh.chksum
    del fresh[TCP].chksum
    fresh = IP(bytes(fresh))
    return ip.chksum == fresh.chksum, ip[TCP].chksum == fresh[TCP].chksum


def flow_frames(got, sport):
    out = []
    for data, _ in got:
        e = Ether(data)
        if IP in e and TCP in e and e[TCP].sport == sport and e[TCP].dport == 5001:
            out.append(data)
    return out


def check_flow(frames, payload, what, max_len=None, expect_count=None):
    """Checks frames of one flow; returns a description."""
    if not frames:
        fail("%s: no frame of the flow arrived" % what)
    data = b""
    seq = 1000
    for i, f in enumerate(frames):
        e = Ether(f)
        ip, tcp = e[IP], e[TCP]
        if max_len is not None and len(f) > max_len:
            fail("%s: frame %d is %d bytes, longer than %d" % (what, i, len(f), max_len))
        if ip.len + 14 != len(f):
            fail("%s: frame %d is %d bytes but its IPv4 total length says %d" % (what, i, len(f), ip.len + 14))
        ip_ok, tcp_ok = checksums_ok(f)
        if not ip_ok:
            fail("%s: frame %d has a bad IPv4 header checksum 0x%04x" % (what, i, ip.chksum))
        if not tcp_ok:
            fail("%s: frame %d has a bad TCP checksum 0x%04x" % (what, i, tcp.chksum))
        if tcp.seq != seq:
            fail("%s: frame %d has seq %d, expected %d (lost or reordered)" % (what, i, tcp.seq, seq))
        seg = bytes(tcp.payload)
        seq += len(seg)
        data += seg
    if data != payload:
        fail("%s: payloads reassemble to %d bytes that differ from the %d sent" % (what, len(data), len(payload)))
    if expect_count is not None and len(frames) != expect_count:
        fail("%s: %d segments, expected %d" % (what, len(frames), expect_count))
    return "%d frame(s), longest %d bytes, checksums valid, payload intact" % (len(frames), max(len(f) for f in frames))


def payload_bytes(frames):
    return sum(len(bytes(Ether(f)[TCP].payload)) for f in frames)


def learn_both(p1, p2):
    """Both peers broadcast (a peer is a port once it has sent) until each has seen the other's
    broadcast, so that switchd has learned both MACs; fails after 10 rounds."""
    heard = {"p1": False, "p2": False}  # heard[X]: X's broadcast reached the other peer
    for _ in range(10):
        p1.send(announce("p1"))
        p2.send(announce("p2"))
        for name, other in (("p1", p2), ("p2", p1)):
            if not heard[name]:
                got = other.recv_until(lambda g: any(is_from(d, name) for d, _ in g), 0.3)
                heard[name] = any(is_from(d, name) for d, _ in got)
        if all(heard.values()):
            return
    fail("broadcasts did not get through: %r" % heard)


def main():
    netdir, tmp = sys.argv[1:3]
    plain, offload = os.path.join(netdir, "dgram.sock"), os.path.join(netdir, "dgram-offload.sock")
    p1 = Peer("p1", os.path.join(tmp, "p1.sock"), offload)
    p2 = Peer("p2", os.path.join(tmp, "p2.sock"), plain)

    learn_both(p1, p2)
    log("ok: p1 (dgram-offload.sock) and p2 (dgram.sock) see each other's broadcasts")

    nseg = math.ceil(PAYLOAD / MSS)

    # (a) p1 (offload socket) -> p2 (plain): cut into MSS-size segments.
    pay = os.urandom(PAYLOAD)
    sf = super_frame("p1", "p2", 40001, pay)
    p1.send(sf)
    got = p2.recv_until(lambda g: payload_bytes(flow_frames(g, 40001)) >= PAYLOAD)
    desc = check_flow(flow_frames(got, 40001), pay, "(a) p1 -> p2", max_len=MTU + 14, expect_count=nseg)
    log("ok: (a) a %d-byte super-frame from dgram-offload.sock reached plain p2 as %s" % (len(sf), desc))

    # (b) p3: connected to dgram.sock, VFKT first.
    p3 = Peer("p3", os.path.join(tmp, "p3.sock"), plain, connect=True)
    p3.send(b"VFKT")
    for _ in range(10):
        p3.send(announce("p3"))
        seen = p2.recv_until(lambda g: any(is_from(d, "p3") for d, _ in g), 0.5)
        if any(is_from(d, "p3") for d, _ in seen):
            break
    else:
        fail("p3's broadcast (after VFKT) never reached p2")
    # p1 saw it too; drain so that later reads start clean.
    p1.recv_until(lambda g: any(is_from(d, "p3") for d, _ in g), 1.0)
    log("ok: (b) p3 (connected to dgram.sock, sent VFKT) is heard by p2")

    pay = os.urandom(PAYLOAD)
    p3.send(super_frame("p3", "p2", 40002, pay))
    got = p2.recv_until(lambda g: payload_bytes(flow_frames(g, 40002)) >= PAYLOAD)
    desc = check_flow(flow_frames(got, 40002), pay, "(b) p3 -> p2", max_len=MTU + 14, expect_count=nseg)
    log("ok: (b) a super-frame from the VFKT peer reached plain p2 as %s" % desc)

    # Replies to p3: a small frame from p2 must arrive, and from dgram.sock.
    reply = bytes(Ether(src=MACS["p2"], dst=MACS["p3"]) / IP(src=IPS["p2"], dst=IPS["p3"]) /
                  UDP(sport=7, dport=7) / Raw(b"reply-to-the-vfkt-peer"))
    p2.send(reply)
    got = p3.recv_until(lambda g: any(d == reply for d, _ in g), 5.0)
    hits = [a for d, a in got if d == reply]
    if not hits:
        fail("(b) p2's frame to p3's MAC never reached p3 (got %d other frames)" % len(got))
    if hits[0] != plain:
        fail("(b) p3 got its frame from %r, expected dgram.sock %r" % (hits[0], plain))
    log("ok: (b) p3 receives frames addressed to it, from dgram.sock")

    # (c) between the two header-less offload peers, both ways.
    for src, sender, dst, receiver, sport in (("p3", p3, "p1", p1, 40003), ("p1", p1, "p3", p3, 40004)):
        pay = os.urandom(PAYLOAD)
        sender.send(super_frame(src, dst, sport, pay))
        got = receiver.recv_until(lambda g: payload_bytes(flow_frames(g, sport)) >= PAYLOAD)
        frames = flow_frames(got, sport)
        desc = check_flow(frames, pay, "(c) %s -> %s" % (src, dst), max_len=65550)
        log("ok: (c) %s -> %s (header-less offload peers): %s%s" %
            (src, dst, desc, " (passed whole)" if len(frames) == 1 else " (cut in software)"))

    print("PEERS-OK", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
