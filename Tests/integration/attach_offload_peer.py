"""Tests/integration/attach_offload_peer.py: a header-less offload client under `switchd attach --offload` (t21).

Usage: switchd attach NET --kind dgram|stream --offload -- /usr/bin/python3 attach_offload_peer.py KIND NETDIR TMPDIR SWITCHD RUNDIR

The port is fd 3 (KIND gives its framing: one frame per datagram, or a 4-byte big-endian length
and the frame). A plain peer p2 binds TMPDIR/p2.sock and sends to NETDIR/dgram.sock. After both
are learned: fd 3 sends p2 a TCPv4 super-frame of 20000 payload bytes whose TCP checksum is only
the pseudo-header sum, which p2 must get as MSS-size segments with valid checksums; p2 sends a
frame to fd 3, which must arrive intact; `status` shows this process's port with peer
attach:PID and offloads ["headerless"]. Prints `ok: ...` lines and exits 0, or `PEERS-FAIL: why`
and exits 1 (the frame helpers are headerless_peers.py's).
"""
import json
import math
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from headerless_peers import (MACS, IPS, MSS, MTU, PAYLOAD, Peer, check_flow, fail, learn_both,  # noqa: E402
                              flow_frames, log, payload_bytes, super_frame)
from scapy.all import IP, UDP, Ether, Raw  # noqa: E402


class AttachedPort:
    """fd 3 as switchd attach left it."""

    def __init__(self, kind):
        self.stream = kind == "stream"
        self.s = socket.socket(fileno=3)
        self.pending = b""

    def send(self, frame):
        self.s.sendall(struct.pack("!I", len(frame)) + frame if self.stream else frame)

    def recv_until(self, pred, timeout=5.0):
        got = []
        end = time.time() + timeout
        while not pred(got):
            left = end - time.time()
            if left <= 0:
                break
            self.s.settimeout(left)
            try:
                data = self.s.recv(70000)
            except socket.timeout:
                break
            if not self.stream:
                got.append((data, None))
                continue
            if not data:
                fail("the stream port closed")
            self.pending += data
            while len(self.pending) >= 4:
                n = struct.unpack("!I", self.pending[:4])[0]
                if len(self.pending) < 4 + n:
                    break
                got.append((self.pending[4:4 + n], None))
                self.pending = self.pending[4 + n:]
        return got


def main():
    kind, netdir, tmp, switchd, rundir = sys.argv[1:6]
    p1 = AttachedPort(kind)
    p2 = Peer("p2", os.path.join(tmp, "p2-%s.sock" % kind), os.path.join(netdir, "dgram.sock"))

    learn_both(p1, p2)
    log("ok: the attached %s port and a plain dgram peer see each other's broadcasts" % kind)

    status = json.loads(subprocess.run([switchd, "status", "--json", "--run-dir", rundir], check=True,
                                       capture_output=True, text=True).stdout)
    mine = [p for n in status["networks"] for p in n["ports"] if p["peer"] == "attach:%d" % os.getpid()]
    if len(mine) != 1 or mine[0]["kind"] != kind or mine[0]["offloads"] != ["headerless"]:
        fail("status does not show this process's port as a headerless %s port: %r" % (kind, mine))
    log("ok: status shows port %s, kind %s, peer attach:%d, offloads headerless" % (mine[0]["id"], kind, os.getpid()))

    pay = os.urandom(PAYLOAD)
    p1.send(super_frame("p1", "p2", 40011, pay))
    got = p2.recv_until(lambda g: payload_bytes(flow_frames(g, 40011)) >= PAYLOAD)
    desc = check_flow(flow_frames(got, 40011), pay, "attached -> p2", max_len=MTU + 14,
                      expect_count=math.ceil(PAYLOAD / MSS))
    log("ok: a header-less super-frame from the attached %s port reached the plain peer as %s" % (kind, desc))

    reply = bytes(Ether(src=MACS["p2"], dst=MACS["p1"]) / IP(src=IPS["p2"], dst=IPS["p1"]) /
                  UDP(sport=7, dport=7) / Raw(b"to-the-attached-port"))
    p2.send(reply)
    got = p1.recv_until(lambda g: any(d == reply for d, _ in g), 5.0)
    if not any(d == reply for d, _ in got):
        fail("p2's frame never reached the attached %s port (%d other frames)" % (kind, len(got)))
    log("ok: the attached %s port receives frames addressed to it" % kind)
    print("PEERS-OK", flush=True)


if __name__ == "__main__":
    main()
