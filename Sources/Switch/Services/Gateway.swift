// Gateway: the identity the built-in services answer as on one network, and what a responder returns.
//
// Responders are functions from a frame to a verdict (STYLE.md "Responders are functions"): they
// read an Ethernet frame and either leave it to forwarding, consume it, or write a reply frame
// into a buffer the caller provides. They do no I/O, so every one is testable with bytes alone.
import Proto

/// What a responder decided about a frame.
public enum Verdict: Equatable, Sendable {
    /// Not for this responder: forwarding (or the next responder) handles it.
    case notMine
    /// Handled; nothing to send, and the frame is not forwarded.
    case consumed
    /// Handled; a reply frame of `length` bytes was written at the start of the reply buffer and
    /// goes back to the port the frame came from. The frame itself is not forwarded.
    case reply(length: Int)
}

/// The gateway of one network as the services present it (docs/DESIGN.md §1, §4).
public struct GatewayIdentity: Sendable, Equatable {
    /// The MAC the gateway answers with (virtual in `isolated` mode; the uplink's otherwise).
    public var mac: MACAddress
    /// The gateway's IPv4 address and the network's subnet.
    public var ipv4: IPv4Address
    public var subnet: IPv4Subnet
    /// The network's IPv6 /64 (low 64 bits zero), nil with `ipv6: false`.
    public var ipv6Prefix: IPv6Address?
    /// The network's MTU (DHCP option 26, RA MTU option).
    public var mtu: Int
    /// The DNS domain of DHCP clients (`NAME.internal` unless configured).
    public var domain: String
    /// True when the gateway routes beyond the host (`shared` mode): RA router lifetime > 0.
    public var routesBeyondHost: Bool

    public init(mac: MACAddress, ipv4: IPv4Address, subnet: IPv4Subnet, ipv6Prefix: IPv6Address?, mtu: Int,
                domain: String, routesBeyondHost: Bool) {
        self.mac = mac; self.ipv4 = ipv4; self.subnet = subnet; self.ipv6Prefix = ipv6Prefix; self.mtu = mtu
        self.domain = domain; self.routesBeyondHost = routesBeyondHost
    }

    /// The gateway's global (ULA) IPv6 address: the prefix with interface id ::1.
    public var ipv6Address: IPv6Address? { ipv6Prefix.map { IPv6Address(high: $0.high, low: 1) } }

    /// The gateway's link-local address, fe80::/64 with the modified EUI-64 of its MAC (RFC 4291 §2.5.1).
    public var linkLocal: IPv6Address {
        let m = mac.rawValue
        let eui = ((m >> 24) << 40 | 0xFF_FE << 24 | (m & 0xFF_FFFF)) ^ 0x0200_0000_0000_0000
        return IPv6Address(high: 0xFE80_0000_0000_0000, low: eui)
    }
}
