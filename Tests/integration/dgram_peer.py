"""Tests/integration/dgram_peer.py: a path-bound dgram peer that reads, and can vanish (t10).

Usage: python3 dgram_peer.py MY_PATH SWITCH_DGRAM_SOCK MAC IP

Binds a unix datagram socket at MY_PATH (as QEMU's `local.path` does), sends a gratuitous ARP
(broadcast, sender MAC/IP = MAC/IP) so that switchd learns MAC on this port, prints `ready`,
then prints one line per frame it receives: `frame DST SRC LEN`. On SIGUSR1 it closes its
socket, unlinks MY_PATH, prints `gone` and sleeps until killed (the process stays; only its
socket has gone). Plain socket module only.
"""
import os
import select
import signal
import socket
import struct
import sys
import time


def gratuitous_arp(mac: bytes, ip: bytes) -> bytes:
    eth = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip
    return eth + arp + b"\x00" * 18  # pad to the 60-byte minimum


def mac_str(b: bytes) -> str:
    return ":".join("%02x" % x for x in b)


def main():
    path, switch, mac_s, ip_s = sys.argv[1:5]
    mac = bytes(int(x, 16) for x in mac_s.split(":"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    vanish = []
    signal.signal(signal.SIGUSR1, lambda *_: vanish.append(1))
    s.sendto(gratuitous_arp(mac, socket.inet_aton(ip_s)), switch)
    print("ready", flush=True)
    while not vanish:
        try:
            r, _, _ = select.select([s], [], [], 0.2)
        except InterruptedError:
            continue
        if r:
            data = s.recv(70000)
            print("frame %s %s %d" % (mac_str(data[0:6]), mac_str(data[6:12]), len(data)), flush=True)
    s.close()
    os.unlink(path)
    print("gone", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
