// ICMP for IPv6 (RFC 4443): the type numbers, and a checksum that covers a pseudo-header (ICMP.swift has the layout).

/// An ICMPv6 message type (RFC 4443 §2.1, RFC 4861 §4); open, so unknown values round-trip.
@frozen
public struct ICMPv6Type: ICMPMessageType {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Destination Unreachable (RFC 4443 §3.1).
    public static let destinationUnreachable = ICMPv6Type(rawValue: 1)
    /// Packet Too Big (RFC 4443 §3.2).
    public static let packetTooBig = ICMPv6Type(rawValue: 2)
    /// Time Exceeded (RFC 4443 §3.3).
    public static let timeExceeded = ICMPv6Type(rawValue: 3)
    /// Parameter Problem (RFC 4443 §3.4).
    public static let parameterProblem = ICMPv6Type(rawValue: 4)
    /// Echo Request (RFC 4443 §4.1).
    public static let echoRequest = ICMPv6Type(rawValue: 128)
    /// Echo Reply (RFC 4443 §4.2).
    public static let echoReply = ICMPv6Type(rawValue: 129)
    /// Multicast Listener Query (RFC 2710 §3).
    public static let multicastListenerQuery = ICMPv6Type(rawValue: 130)
    /// Router Solicitation (RFC 4861 §4.1).
    public static let routerSolicitation = ICMPv6Type(rawValue: 133)
    /// Router Advertisement (RFC 4861 §4.2).
    public static let routerAdvertisement = ICMPv6Type(rawValue: 134)
    /// Neighbor Solicitation (RFC 4861 §4.3).
    public static let neighborSolicitation = ICMPv6Type(rawValue: 135)
    /// Neighbor Advertisement (RFC 4861 §4.4).
    public static let neighborAdvertisement = ICMPv6Type(rawValue: 136)
    /// Redirect (RFC 4861 §4.5).
    public static let redirect = ICMPv6Type(rawValue: 137)
    /// Version 2 Multicast Listener Report (RFC 3810 §5.2).
    public static let multicastListenerReportV2 = ICMPv6Type(rawValue: 143)
}

/// A read-only view of an ICMPv6 message.
public typealias ICMPv6Message = ICMPMessage<ICMPv6Type>
/// A mutable view of an ICMPv6 message.
public typealias MutableICMPv6Message = MutableICMPMessage<ICMPv6Type>
/// A parsed ICMPv6 header: type, code and the first 32 bits of the body. Neighbor Discovery
/// messages have their own values in `NDP.swift`.
public typealias ICMPv6Repr = ICMPRepr<ICMPv6Type>

extension ICMPMessage where MessageType == ICMPv6Type {
    /// True when the checksum verifies against `pseudoHeaderSum` (RFC 4443 §2.3; from
    /// `InternetChecksum.pseudoHeaderSum(…, protocol: .icmpv6, length: bytes.count)`).
    @inlinable
    public func isChecksumValid(pseudoHeaderSum: UInt16) -> Bool {
        InternetChecksum.sum(bytes, initial: pseudoHeaderSum) == 0xFFFF
    }
}

extension MutableICMPMessage where MessageType == ICMPv6Type {
    /// Computes and stores the checksum over the pseudo-header sum and the whole message (RFC 4443 §2.3).
    @inlinable
    public func fillChecksum(pseudoHeaderSum: UInt16) { fillChecksum(initial: pseudoHeaderSum) }
}

extension ICMPRepr where MessageType == ICMPv6Type {
    /// Writes the header of a message filling `buffer` (8 bytes, then the data already in place)
    /// and its checksum over the pseudo-header sum and all of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        emit(into: buffer, checksumInitial: pseudoHeaderSum)
    }
}
