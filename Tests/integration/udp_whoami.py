#!/usr/bin/env python3
"""UDP counterpart of whoami_server.py, for the port-forward test.

  udp_whoami.py serve ADDRESS PORT       answer every datagram with the sender's address
                                         (ADDRESS "::" takes both families)
  udp_whoami.py ask HOST PORT [TIMEOUT]  send one datagram (retried each 0.5 s), print the answer;
                                         exit 1 without one within TIMEOUT seconds (default 5)
"""
import socket
import sys
import time

if sys.argv[1] == "serve":
    family = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((sys.argv[2], int(sys.argv[3])))
    while True:
        data, peer = s.recvfrom(2048)
        host = peer[0][len("::ffff:"):] if peer[0].startswith("::ffff:") else peer[0]
        s.sendto(host.encode(), peer)
else:
    host, port = sys.argv[2], int(sys.argv[3])
    deadline = time.monotonic() + float(sys.argv[4] if len(sys.argv) > 4 else 5)
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    s = socket.socket(info[0], socket.SOCK_DGRAM)
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        s.sendto(b"who", info[4])
        try:
            data, _ = s.recvfrom(2048)
            print(data.decode())
            sys.exit(0)
        except (socket.timeout, ConnectionRefusedError):
            time.sleep(0.1)
    sys.exit(1)
