#!/usr/bin/python3
# Generates Tests/ProtoTests/DNSGoldenBytes.swift and Tests/SwitchTests/DNSGoldenBytes.swift: DNS messages
# built by scapy 2.5 (an implementation independent of ours), embedded as hex.
# Run with the system python that has scapy: /usr/bin/python3 Tests/ProtoTests/Golden/make_dns_golden.py
import os
from scapy.all import DNS, DNSQR, DNSRR, DNSRROPT

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))

def q(id, name, qtype, rd=1, ar=None):
    return DNS(id=id, rd=rd, qd=DNSQR(qname=name, qtype=qtype), ar=ar)

def local(id, name, qtype, rcode=0, an=None, aa=1):
    """A response as the proxy answers locally: QR, AA, RD, RA; compressed (answer names point at the question)."""
    pkt = DNS(id=id, qr=1, aa=aa, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an)
    return pkt.compress()

opt = DNSRROPT(rclass=1232)

# Messages for the Proto parser and emitter tests.
proto = {
    # A query with RD, as `dig web.lab.internal` sends it (without EDNS).
    "queryA": q(0x1234, "web.lab.internal", "A"),
    # The compressed answer: the answer name is a pointer to offset 12.
    "responseA": local(0x1234, "web.lab.internal", "A", an=DNSRR(rrname="web.lab.internal", type="A", ttl=60, rdata="10.0.0.5")),
    # An AAAA query with an EDNS0 OPT record (UDP payload size 1232) in the additional section.
    "queryAAAAWithOPT": q(0x0a0b, "web.lab.internal", "AAAA", ar=opt),
    "responseAAAA": local(0x0a0b, "web.lab.internal", "AAAA",
                          an=DNSRR(rrname="web.lab.internal", type="AAAA", ttl=60, rdata="fd00::5")),
    "responsePTR": local(0x7777, "5.0.0.10.in-addr.arpa", "PTR",
                         an=DNSRR(rrname="5.0.0.10.in-addr.arpa", type="PTR", ttl=60, rdata="web.lab.internal")),
    # An upstream-style answer: CNAME chain (compressed names in RDATA), then A, then an MX kept raw.
    "responseCNAME": DNS(id=0x4321, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"),
                         an=DNSRR(rrname="www.example.com", type="CNAME", ttl=300, rdata="web.example.com") /
                            DNSRR(rrname="web.example.com", type="A", ttl=300, rdata="192.0.2.7"),
                         ns=DNSRR(rrname="example.com", type="MX", ttl=300, rdata=b"\x00\x0a\x04mail\xc0\x10"),
                         ar=opt).compress(),
    "nxdomain": local(0x2222, "nope.lab.internal", "A", rcode=3),
}

# Scenarios for the proxy tests (domain lab.internal, gateway 10.0.0.1 / fd00::1, web = 10.0.0.5 / fd00::5,
# printer = 10.0.0.9 without IPv6). The proxy's upstream IDs come from a counter starting at 0x5151.
gw = "gateway.lab.internal"
switch = {
    "queryA": q(0x1111, "web.lab.internal", "A"),
    "answerA": local(0x1111, "web.lab.internal", "A", an=DNSRR(rrname="web.lab.internal", type="A", ttl=60, rdata="10.0.0.5")),
    # Mixed case (DNS 0x20): echoed as sent, matched case-insensitively.
    "queryMixedCase": q(0x1112, "WeB.LaB.InterNAL", "A"),
    "answerMixedCase": local(0x1112, "WeB.LaB.InterNAL", "A",
                             an=DNSRR(rrname="WeB.LaB.InterNAL", type="A", ttl=60, rdata="10.0.0.5")),
    "queryAAAA": q(0x1113, "web.lab.internal", "AAAA", ar=opt),
    "answerAAAA": local(0x1113, "web.lab.internal", "AAAA",
                        an=DNSRR(rrname="web.lab.internal", type="AAAA", ttl=60, rdata="fd00::5")),
    # The host exists but has no IPv6 address: NOERROR, no answers (NODATA).
    "queryAAAANoData": q(0x1114, "printer.lab.internal", "AAAA"),
    "answerAAAANoData": local(0x1114, "printer.lab.internal", "AAAA"),
    "queryPTR": q(0x1115, "5.0.0.10.in-addr.arpa", "PTR"),
    "answerPTR": local(0x1115, "5.0.0.10.in-addr.arpa", "PTR",
                       an=DNSRR(rrname="5.0.0.10.in-addr.arpa", type="PTR", ttl=60, rdata="web.lab.internal")),
    "queryGatewayPTR": q(0x1116, "1.0.0.10.in-addr.arpa", "PTR"),
    "answerGatewayPTR": local(0x1116, "1.0.0.10.in-addr.arpa", "PTR",
                              an=DNSRR(rrname="1.0.0.10.in-addr.arpa", type="PTR", ttl=60, rdata=gw)),
    "queryGatewayA": q(0x1117, gw, "A"),
    "answerGatewayA": local(0x1117, gw, "A", an=DNSRR(rrname=gw, type="A", ttl=60, rdata="10.0.0.1")),
    "queryNXDomain": q(0x1118, "nope.lab.internal", "A"),
    "answerNXDomain": local(0x1118, "nope.lab.internal", "A", rcode=3),
    # Forwarded: the client's query (ID 0xbeef, with OPT), as sent upstream (ID 0x5151), the upstream's
    # reply, and what the client gets back (ID restored, everything else untouched).
    "queryExample": q(0xbeef, "www.example.com", "A", ar=opt),
    "forwardedExample": q(0x5151, "www.example.com", "A", ar=opt),
    "upstreamReplyExample": DNS(id=0x5151, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"),
                                an=DNSRR(rrname="www.example.com", type="A", ttl=3600, rdata="192.0.2.80"),
                                ar=opt).compress(),
    "clientReplyExample": DNS(id=0xbeef, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"),
                              an=DNSRR(rrname="www.example.com", type="A", ttl=3600, rdata="192.0.2.80"),
                              ar=opt).compress(),
    # A truncated (TC=1) upstream answer, passed through with only the ID changed.
    "upstreamTruncated": DNS(id=0x5151, qr=1, tc=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"), ar=opt),
    "clientTruncated": DNS(id=0xbeef, qr=1, tc=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"), ar=opt),
    # SERVFAIL after every upstream timed out (no OPT, RA set).
    "servfailExample": DNS(id=0xbeef, qr=1, rd=1, ra=1, rcode=2, qd=DNSQR(qname="www.example.com", qtype="A")),
}

def write(path, enum, messages, extra_doc):
    out = [f"// DNS golden messages generated by Golden/make_dns_golden.py with scapy 2.5.0; do not edit by hand.",
           f"// {extra_doc}", "", f"enum {enum} {{"]
    for name, pkt in messages.items():
        data = bytes(pkt)
        out.append(f"    /// {DNS(data).summary().strip()}")
        out.append(f"    static let {name} = dnsHex(\"{data.hex()}\")")
    out += ["}", "",
            "/// Bytes from a hex string (two digits per byte).",
            "func dnsHex(_ text: String) -> [UInt8] {",
            "    let digits = Array(text.utf8).map { $0 <= 0x39 ? $0 - 0x30 : ($0 | 0x20) - 0x61 + 10 }",
            "    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }",
            "}", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))

write(os.path.join(TESTS, "ProtoTests", "DNSGoldenBytes.swift"), "DNSGolden", proto,
      "Messages for the parser and emitter tests.")
write(os.path.join(TESTS, "SwitchTests", "DNSGoldenBytes.swift"), "DNSProxyGolden", switch,
      "Proxy scenarios: domain lab.internal, gateway 10.0.0.1, web 10.0.0.5/fd00::5, printer 10.0.0.9; upstream IDs from 0x5151.")
