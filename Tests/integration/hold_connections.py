#!/usr/bin/env python3
"""hold_connections.py: open control connections to switchd and hold them, as a hostile user would.

    hold_connections.py SOCK N [hold|silent|probe]

Opens N connections to SOCK one after another, waits a second, and counts the ones switchd
refused (it writes one JSON error line and closes them at once) and the ones it admitted (nothing
comes back until they send). Prints one JSON line: {"admitted": A, "refused": R, "reasons": [...]}.
Then, by mode:
  hold    keeps the admitted connections open, sending a blank line (which switchd ignores) every
          second so that the idle timeout never fires, until killed;
  silent  sends nothing and prints {"closed": K, "seconds": S} once switchd has closed all K admitted
          connections (S: seconds from opening them), or {"closed": K, "timeout": true} after 30 s;
  probe   closes everything and exits.
"""
import json
import select
import socket
import sys
import time


def main():
    path, count = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "hold"
    start = time.monotonic()
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        conns.append(s)
    time.sleep(1.0)
    admitted, reasons = [], []
    for s in conns:
        readable, _, _ = select.select([s], [], [], 0)
        if not readable:
            admitted.append(s)
            continue
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        if data:
            reasons.append(json.loads(data.decode().splitlines()[0]).get("error", ""))
        else:
            reasons.append("(closed without a reply)")
        s.close()
    print(json.dumps({"admitted": len(admitted), "refused": len(reasons), "reasons": sorted(set(reasons))}), flush=True)

    if mode == "probe":
        return
    if mode == "hold":
        while True:
            for s in admitted:
                try:
                    s.sendall(b"\n")
                except OSError:
                    pass
            time.sleep(1)
    # silent: wait for switchd to close each admitted connection (EOF).
    open_conns = list(admitted)
    deadline = start + 30
    while open_conns and time.monotonic() < deadline:
        readable, _, _ = select.select(open_conns, [], [], 0.1)
        for s in readable:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                open_conns.remove(s)
                s.close()
    closed = len(admitted) - len(open_conns)
    if open_conns:
        print(json.dumps({"closed": closed, "timeout": True}), flush=True)
    else:
        print(json.dumps({"closed": closed, "seconds": round(time.monotonic() - start, 2)}), flush=True)


if __name__ == "__main__":
    main()
