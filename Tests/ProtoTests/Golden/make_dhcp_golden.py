#!/usr/bin/python3
# Generates TestSupport/DHCPGoldenBytes.swift (used by ProtoTests and SwitchTests): DHCP client requests and the
# replies switchd's DHCPServer must give, both built by scapy 2.5 (independent of our code).
# Run with the system python that has scapy: /usr/bin/python3 Tests/ProtoTests/Golden/make_dhcp_golden.py
#
# The server under test (see DHCPServerGoldenTests.swift): gateway 02:00:00:00:00:01 192.168.107.1/24,
# range .2-.254, lease time 3600 s, domain default.internal, MTU 1500.
import os
from scapy.all import Ether, Dot1Q, IP, UDP, BOOTP, DHCP, Raw
from scapy.layers.dhcp import DHCPTypes
from scapy.utils import mac2str

GW_MAC, GW = "02:00:00:00:00:01", "192.168.107.1"
MASK, BCAST = "255.255.255.0", "192.168.107.255"
CLIENT = "52:54:00:12:34:56"
CHADDR = mac2str(CLIENT)
CLIENT_ID = b"\x01" + CHADDR
XID = 0x1234ABCD
LEASED = "192.168.107.50"
INFORMING = "192.168.107.77"
OTHER_SERVER = "192.168.107.254"
FOREIGN = "10.0.0.5"
RELAY = "192.168.50.1"
LEASE, T1, T2 = 3600, 1800, 3150
DOMAIN = b"default.internal"
MTU = 1500
FULL_PRL = [1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59]
BROADCAST_FLAG = 0x8000


def fnv1a(data):
    """The stable hash DHCPServer starts its search at (FNV-1a 64)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hashed_address(key):
    """The first address the server tries for a new client: .2 + hash mod 253."""
    return "192.168.107.%d" % (2 + fnv1a(key) % 253)


# A client with no client identifier is keyed by its MAC (tag 0 then six octets).
BY_MAC = hashed_address(b"\x00" + CHADDR)


def request(options, src="0.0.0.0", dst="255.255.255.255", ciaddr="0.0.0.0", flags=BROADCAST_FLAG,
            giaddr="0.0.0.0", sport=68, vlan=None, eth_dst="ff:ff:ff:ff:ff:ff"):
    ether = Ether(src=CLIENT, dst=eth_dst)
    if vlan is not None:
        ether = ether / Dot1Q(vlan=vlan)
    return (ether / IP(src=src, dst=dst, id=0x4d2, ttl=64) / UDP(sport=sport, dport=67) /
            BOOTP(op=1, xid=XID, secs=3, flags=flags, ciaddr=ciaddr, giaddr=giaddr, chaddr=CHADDR) /
            DHCP(options=options + ["end"]))


def reply(options, dst, eth_dst, yiaddr="0.0.0.0", ciaddr="0.0.0.0", flags=BROADCAST_FLAG, vlan=None):
    """A reply as DHCPServer writes it: BOOTP padded to 300 bytes (RFC 1542 §2.1), IP id 0, TTL 64."""
    bootp = BOOTP(op=2, xid=XID, flags=flags, ciaddr=ciaddr, yiaddr=yiaddr, chaddr=CHADDR) / DHCP(options=options + ["end"])
    pad = 300 - len(bytes(bootp))
    ether = Ether(src=GW_MAC, dst=eth_dst)
    if vlan is not None:
        ether = ether / Dot1Q(vlan=vlan)
    return ether / IP(src=GW, dst=dst, id=0, ttl=64) / UDP(sport=67, dport=68) / bootp / Raw(b"\x00" * pad)


ident = [("client_id", CLIENT_ID), ("hostname", b"guest1")]
lease_opts = [("server_id", GW), ("lease_time", LEASE), ("renewal_time", T1), ("rebinding_time", T2),
              ("subnet_mask", MASK), ("broadcast_address", BCAST), ("router", GW), ("name_server", GW),
              ("domain", DOMAIN), ("hostname", b"guest1"), ("interface-mtu", MTU), ("client_id", CLIENT_ID)]

pairs = {
    # DISCOVER from a client that remembers LEASED, broadcast flag set, full request list.
    "discover": (
        request([("message-type", "discover"), ("requested_addr", LEASED), ("max_dhcp_size", 1500),
                 ("param_req_list", FULL_PRL)] + ident),
        reply([("message-type", "offer")] + lease_opts, "255.255.255.255", "ff:ff:ff:ff:ff:ff", yiaddr=LEASED)),
    # REQUEST in SELECTING state: our server id and the offered address.
    "requestSelecting": (
        request([("message-type", "request"), ("server_id", GW), ("requested_addr", LEASED),
                 ("param_req_list", FULL_PRL)] + ident),
        reply([("message-type", "ack")] + lease_opts, "255.255.255.255", "ff:ff:ff:ff:ff:ff", yiaddr=LEASED)),
    # REQUEST in INIT-REBOOT state, no broadcast flag: the ACK is unicast to yiaddr/chaddr.
    "requestInitReboot": (
        request([("message-type", "request"), ("requested_addr", LEASED), ("param_req_list", FULL_PRL)] + ident,
                flags=0),
        reply([("message-type", "ack")] + lease_opts, LEASED, CLIENT, yiaddr=LEASED, flags=0)),
    # REQUEST in RENEWING state: unicast from ciaddr to the server, no server id, no option 50.
    "requestRenewing": (
        request([("message-type", "request"), ("param_req_list", FULL_PRL)] + ident,
                src=LEASED, dst=GW, ciaddr=LEASED, flags=0, eth_dst=GW_MAC),
        reply([("message-type", "ack")] + lease_opts, LEASED, CLIENT, yiaddr=LEASED, ciaddr=LEASED, flags=0)),
    # REQUEST in REBINDING state: broadcast from ciaddr; the ACK still goes to ciaddr.
    "requestRebinding": (
        request([("message-type", "request"), ("param_req_list", FULL_PRL)] + ident, src=LEASED, ciaddr=LEASED, flags=0),
        reply([("message-type", "ack")] + lease_opts, LEASED, CLIENT, yiaddr=LEASED, ciaddr=LEASED, flags=0)),
    # INIT-REBOOT for an address of another network: NAK, broadcast (RFC 2131 §4.1).
    "requestForeign": (
        request([("message-type", "request"), ("requested_addr", FOREIGN)] + ident, flags=0),
        reply([("message-type", "nak"), ("server_id", GW), ("error_message", b"10.0.0.5 is not on this network"),
               ("client_id", CLIENT_ID)], "255.255.255.255", "ff:ff:ff:ff:ff:ff", flags=0)),
    # INFORM from a host configured by hand: options without a lease, unicast to ciaddr.
    "inform": (
        request([("message-type", "inform"), ("param_req_list", [1, 3, 6, 15, 26])] + ident,
                src=INFORMING, dst=GW, ciaddr=INFORMING, flags=0, eth_dst=GW_MAC),
        reply([("message-type", "ack"), ("server_id", GW), ("subnet_mask", MASK), ("router", GW), ("name_server", GW),
               ("domain", DOMAIN), ("interface-mtu", MTU), ("client_id", CLIENT_ID)],
              INFORMING, CLIENT, ciaddr=INFORMING, flags=0)),
    # A minimal DISCOVER: no client id, no host name, short request list, no broadcast flag. The
    # address comes from the hash of the MAC; only the always-sent options come back.
    "discoverMinimal": (
        request([("message-type", "discover"), ("param_req_list", [1, 3, 6])], flags=0),
        reply([("message-type", "offer"), ("server_id", GW), ("lease_time", LEASE), ("subnet_mask", MASK),
               ("router", GW), ("name_server", GW)], BY_MAC, CLIENT, yiaddr=BY_MAC, flags=0)),
    # DISCOVER without a request list: every option we have. Tagged VLAN 100: the reply keeps the tag.
    "discoverNoListVLAN": (
        request([("message-type", "discover"), ("hostname", b"Guest_Two.example")], flags=0, vlan=100),
        reply([("message-type", "offer"), ("server_id", GW), ("lease_time", LEASE), ("renewal_time", T1),
               ("rebinding_time", T2), ("subnet_mask", MASK), ("broadcast_address", BCAST), ("router", GW),
               ("name_server", GW), ("domain", DOMAIN), ("hostname", b"guest-two"), ("interface-mtu", MTU)],
              BY_MAC, CLIENT, yiaddr=BY_MAC, flags=0, vlan=100)),
}

# Requests that get no reply.
silent = {
    # REQUEST for another server's offer: consumed, nothing sent.
    "requestOtherServer": request([("message-type", "request"), ("server_id", OTHER_SERVER),
                                   ("requested_addr", LEASED)] + ident),
    "release": request([("message-type", "release"), ("server_id", GW)] + ident,
                       src=LEASED, dst=GW, ciaddr=LEASED, flags=0, eth_dst=GW_MAC),
    "decline": request([("message-type", "decline"), ("server_id", GW), ("requested_addr", LEASED)] + ident),
    # Relayed (giaddr set, from the relay's port 67, to the gateway): ignored with a log line.
    "relayed": request([("message-type", "discover")] + ident, src=RELAY, dst=GW, giaddr=RELAY, sport=67,
                       flags=0, eth_dst=GW_MAC),
}


def describe(pkt):
    kind = dict(o for o in pkt[DHCP].options if isinstance(o, tuple))["message-type"]
    kind = DHCPTypes.get(kind, kind).upper() if isinstance(kind, int) else kind.upper()
    tag = f" VLAN {pkt[Dot1Q].vlan}" if Dot1Q in pkt else ""
    return f"{kind}{tag} {pkt[Ether].src} > {pkt[Ether].dst}, {pkt[IP].src}:{pkt[UDP].sport} > {pkt[IP].dst}:{pkt[UDP].dport}, {len(bytes(pkt))} bytes"


def swift_array(name, pkt, doc):
    data = bytes(pkt)
    lines = [f"    /// {doc}", f"    public static let {name}: [UInt8] = ["]
    for i in range(0, len(data), 16):
        lines.append("        " + " ".join(f"0x{b:02x}," for b in data[i:i + 16]))
    lines.append("    ]")
    return lines


out = ["// DHCP golden frames generated by ProtoTests/Golden/make_dhcp_golden.py with scapy 2.5.0; do not edit by hand.",
       "", "/// Golden DHCP requests and replies, shared by ProtoTests and SwitchTests.",
       "public enum DHCPGolden {",
       f"    /// The address the server hashes client {CLIENT} (no client id) to first.",
       f"    public static let addressByMAC = \"{BY_MAC}\""]
for name, (req, rep) in pairs.items():
    out += swift_array(name + "Request", req, describe(req))
    out += swift_array(name + "Reply", rep, describe(rep))
for name, req in silent.items():
    out += swift_array(name + "Request", req, describe(req))
out.append("")
out.append("    /// Every request, by name (fuzz corpus).")
out.append("    public static let requests: [(name: String, bytes: [UInt8])] = [")
for name in list(pairs) + list(silent):
    out.append(f"        (\"{name}\", {name}Request),")
out.append("    ]")
out.append("}")
text = "\n".join(out) + "\n"

here = os.path.dirname(os.path.abspath(__file__))
tests = os.path.dirname(os.path.dirname(here))
path = os.path.join(tests, "TestSupport", "DHCPGoldenBytes.swift")
with open(path, "w") as f:
    f.write(text)
print("wrote", path)
