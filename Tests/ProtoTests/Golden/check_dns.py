#!/usr/bin/python3
"""Checks DNS answers written by the proxy tests with scapy (an implementation independent of ours).

Usage: check_dns.py MANIFEST.json

The manifest is a list of cases:
  {"name": str, "reply": hex, "query": hex, "rcode": int, "aa": 0|1,
   "answers": [[rrname, type, rdata, ttl], ...]}
For each case the reply must parse as DNS, be a response (QR=1, RA=1) with the query's ID, RD and
question (name byte for byte, type, class), carry the rcode and AA bit given, and hold exactly the
answers given (names compared without the trailing dot, case-insensitively; rdata as scapy prints it).
Prints one line per problem and "N cases, M problems" at the end; exits 1 when there are problems.
"""
import json
import sys

from scapy.all import DNS, DNSQR, DNSRR


def norm(name):
    if isinstance(name, bytes):
        name = name.decode()
    return str(name).rstrip(".").lower()


def check(case):
    problems = []
    reply = DNS(bytes.fromhex(case["reply"]))
    query = DNS(bytes.fromhex(case["query"]))
    if bytes(reply.payload) and not reply.payload.haslayer("Padding"):
        problems.append(f"trailing bytes {bytes(reply.payload)!r}")
    if reply.id != query.id:
        problems.append(f"id {reply.id:#x} != query id {query.id:#x}")
    if reply.qr != 1 or reply.ra != 1:
        problems.append(f"qr={reply.qr} ra={reply.ra}")
    if reply.rd != query.rd:
        problems.append(f"rd {reply.rd} != query rd {query.rd}")
    if reply.rcode != case["rcode"]:
        problems.append(f"rcode {reply.rcode} != {case['rcode']}")
    if reply.aa != case["aa"]:
        problems.append(f"aa {reply.aa} != {case['aa']}")
    if reply.qdcount != 1 or reply.qd is None:
        problems.append(f"qdcount {reply.qdcount}")
    else:
        rq, qq = reply.qd[0], query.qd[0]
        if (rq.qname, rq.qtype, rq.qclass) != (qq.qname, qq.qtype, qq.qclass):
            problems.append(f"question {rq.qname!r}/{rq.qtype}/{rq.qclass} != {qq.qname!r}/{qq.qtype}/{qq.qclass}")
    got = []
    for i in range(reply.ancount):
        rr = reply.an[i]
        rdata = rr.rdata
        if isinstance(rdata, bytes):
            rdata = rdata.decode(errors="replace")
        got.append([norm(rr.rrname), rr.type, norm(rdata) if rr.type == 12 else str(rdata), rr.ttl])
    want = [[norm(n), t, norm(d) if t == 12 else d, ttl] for n, t, d, ttl in case["answers"]]
    if got != want:
        problems.append(f"answers {got} != {want}")
    if reply.nscount or reply.arcount:
        problems.append(f"nscount={reply.nscount} arcount={reply.arcount}")
    return problems


def main():
    cases = json.load(open(sys.argv[1]))
    total = 0
    for case in cases:
        try:
            problems = check(case)
        except Exception as error:  # scapy could not parse it at all
            problems = [f"exception {error!r}"]
        for problem in problems:
            print(f"{case['name']}: {problem}")
        total += len(problems)
    print(f"{len(cases)} cases, {total} problems")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
