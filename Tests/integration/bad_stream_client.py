"""Tests/integration/bad_stream_client.py: a stream client that sends a bad length prefix.

Usage: python3 bad_stream_client.py STREAM_SOCK LENGTH [TIMEOUT_S]

Connects to the switch's stream socket, sends one good 60-byte broadcast frame (so that the
connection is a working port first), then a 4-byte big-endian LENGTH followed by
min(LENGTH, 64) bytes, and reads until the switch closes the connection. Whatever the switch
floods to us before that is read and discarded. Exit 0 and "disconnected: eof|reset" when
the switch hangs up within TIMEOUT_S (default 5), exit 1 and "still connected" otherwise.
"""
import socket
import struct
import sys
import time


def main():
    path = sys.argv[1]
    length = int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    # A valid frame: broadcast, locally administered source, an unused EtherType (0x88b5,
    # IEEE local experimental), padded to 60 bytes.
    good = b"\xff" * 6 + b"\x02\x00\x5e\x77\x00\xee" + b"\x88\xb5" + b"ok" + b"\x00" * 44
    s.sendall(struct.pack("!I", len(good)) + good)
    time.sleep(0.2)
    try:
        s.sendall(struct.pack("!I", length) + b"\xab" * min(length, 64))
    except (BrokenPipeError, ConnectionResetError):
        print("disconnected: reset (on send)")
        return 0
    deadline = time.time() + timeout
    s.settimeout(0.2)
    got = 0
    while time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            print("disconnected: reset (after %d bytes from the switch)" % got)
            return 0
        if not data:
            print("disconnected: eof (after %d bytes from the switch)" % got)
            return 0
        got += len(data)
    print("still connected %.1f s after length %d (read %d bytes from the switch)" % (timeout, length, got))
    return 1


if __name__ == "__main__":
    sys.exit(main())
