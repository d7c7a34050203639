// ICMP for IPv4 (RFC 792): the type numbers, and a checksum over the message alone (ICMP.swift has the layout).

/// An ICMPv4 message type (RFC 792; IANA "ICMP Type Numbers"); open, so unknown values round-trip.
@frozen
public struct ICMPv4Type: ICMPMessageType {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Echo Reply (RFC 792).
    public static let echoReply = ICMPv4Type(rawValue: 0)
    /// Destination Unreachable (RFC 792; code 4 is "fragmentation needed", RFC 1191 §4).
    public static let destinationUnreachable = ICMPv4Type(rawValue: 3)
    /// Redirect (RFC 792).
    public static let redirect = ICMPv4Type(rawValue: 5)
    /// Echo (RFC 792).
    public static let echoRequest = ICMPv4Type(rawValue: 8)
    /// Time Exceeded (RFC 792).
    public static let timeExceeded = ICMPv4Type(rawValue: 11)
    /// Parameter Problem (RFC 792).
    public static let parameterProblem = ICMPv4Type(rawValue: 12)
}

/// A read-only view of an ICMPv4 message.
public typealias ICMPv4Message = ICMPMessage<ICMPv4Type>
/// A mutable view of an ICMPv4 message.
public typealias MutableICMPv4Message = MutableICMPMessage<ICMPv4Type>
/// A parsed ICMPv4 header: type, code and the 32 bits after the checksum.
public typealias ICMPv4Repr = ICMPRepr<ICMPv4Type>

extension ICMPMessage where MessageType == ICMPv4Type {
    /// True when the checksum over the whole message verifies (RFC 792: no pseudo-header).
    @inlinable public var isChecksumValid: Bool { InternetChecksum.sum(bytes) == 0xFFFF }
}

extension MutableICMPMessage where MessageType == ICMPv4Type {
    /// Computes and stores the checksum over the whole message.
    @inlinable
    public func fillChecksum() { fillChecksum(initial: 0) }
}

extension ICMPRepr where MessageType == ICMPv4Type {
    /// Writes the header of a message filling `buffer` (8 bytes, then the data already in place)
    /// and its checksum over all of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) { emit(into: buffer, checksumInitial: 0) }
}
