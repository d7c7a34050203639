// IPProtocol: the IPv4 Protocol / IPv6 Next Header code (IANA "Assigned Internet Protocol Numbers").

/// An IP protocol number; open, so unknown values round-trip.
@frozen
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    public static let hopByHop = IPProtocol(rawValue: 0)
    /// ICMP for IPv4 (RFC 792).
    public static let icmp = IPProtocol(rawValue: 1)
    /// IGMP (RFC 3376).
    public static let igmp = IPProtocol(rawValue: 2)
    /// TCP (RFC 9293).
    public static let tcp = IPProtocol(rawValue: 6)
    /// UDP (RFC 768).
    public static let udp = IPProtocol(rawValue: 17)
    /// IPv6 Routing header (RFC 8200 §4.4).
    public static let ipv6Route = IPProtocol(rawValue: 43)
    /// IPv6 Fragment header (RFC 8200 §4.5).
    public static let ipv6Fragment = IPProtocol(rawValue: 44)
    /// Encapsulating Security Payload (RFC 4303); its length is not visible, so walks stop here.
    public static let esp = IPProtocol(rawValue: 50)
    /// Authentication Header (RFC 4302 §2.2).
    public static let authenticationHeader = IPProtocol(rawValue: 51)
    /// ICMP for IPv6 (RFC 4443).
    public static let icmpv6 = IPProtocol(rawValue: 58)
    /// No Next Header (RFC 8200 §4.7).
    public static let ipv6NoNextHeader = IPProtocol(rawValue: 59)
    /// IPv6 Destination Options (RFC 8200 §4.6).
    public static let ipv6DestinationOptions = IPProtocol(rawValue: 60)
}
