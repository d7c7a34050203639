"""Tests/integration/pcap_lengths.py: frame-length statistics of a classic pcap file.

Usage: python3 pcap_lengths.py FILE.pcap [LIMIT]

Prints `frames N max M over K`: the number of records, the largest original (on-the-wire)
length, and how many records were longer than LIMIT (default 1514). Reads the record
headers only, so a capture taken with a small snap length (-s 64) is enough.
Plain standard library only.
"""
import struct
import sys


def main():
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1514
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        print("frames 0 max 0 over 0")
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit("pcap_lengths: %s is not a classic pcap file (magic %s)" % (path, magic.hex()))
    off, n, mx, over = 24, 0, 0, 0
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16 + incl
        if off > len(data):
            break  # a record cut short by the capture's end
        n += 1
        mx = max(mx, orig)
        if orig > limit:
            over += 1
    print("frames %d max %d over %d" % (n, mx, over))


if __name__ == "__main__":
    main()
