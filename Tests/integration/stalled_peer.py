"""Tests/integration/stalled_peer.py: a dgram peer that joins, then never reads again.

Usage: python3 stalled_peer.py MY_PATH SWITCH_DGRAM_SOCK MAC IP

Binds a unix datagram socket at MY_PATH (as QEMU's `local.path` does), sends one gratuitous
ARP (broadcast, sender MAC/IP = MAC/IP) to the switch so that it learns MAC on this port,
prints "ready" and then sleeps until killed without ever calling recv: everything the switch
sends it piles up in the socket's receive queue. Plain socket module only.
"""
import socket
import struct
import sys
import time


def gratuitous_arp(mac: bytes, ip: bytes) -> bytes:
    eth = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    # htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, oper 1 (request); RFC 5227 §3 announcement
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip
    return eth + arp + b"\x00" * 18  # pad to the 60-byte minimum


def main():
    path, switch, mac_s, ip_s = sys.argv[1:5]
    mac = bytes(int(x, 16) for x in mac_s.split(":"))
    ip = socket.inet_aton(ip_s)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    frame = gratuitous_arp(mac, ip)
    # Twice, a moment apart, in case the first races the switch's start.
    s.sendto(frame, switch)
    time.sleep(0.2)
    s.sendto(frame, switch)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
