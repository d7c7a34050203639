// ICMP for IPv6 (RFC 4443): view, parsed value, emission and checksum (which covers a pseudo-header).

/// An ICMPv6 message type (RFC 4443 §2.1, RFC 4861 §4); open, so unknown values round-trip.
@frozen
public struct ICMPv6Type: RawRepresentable, Hashable, Sendable {
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
@frozen
public struct ICMPv6Message {
    /// The message: 4-byte header, 4-byte message body start, and data (the upper-layer payload).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil when shorter than 8 bytes (every ICMPv6 message has at least
    /// type, code, checksum and 32 bits of body; RFC 4443 §2.1).
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// Type.
    @inlinable public var type: ICMPv6Type { ICMPv6Type(rawValue: bytes.byte(ICMPField.type)) }
    /// Code.
    @inlinable public var code: UInt8 { bytes.byte(ICMPField.code) }
    /// Checksum as stored.
    @inlinable public var checksum: UInt16 { bytes.be16(ICMPField.checksum) }
    /// The first 32 bits of the message body (identifier and sequence, MTU, pointer, flags…).
    @inlinable public var restOfHeader: UInt32 { bytes.be32(ICMPField.restOfHeader) }
    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { bytes.be16(ICMPField.identifier) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { bytes.be16(ICMPField.sequenceNumber) }
    /// The data after the first 8 bytes.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: ICMPField.headerLength) }

    /// True when the checksum verifies against `pseudoHeaderSum` (RFC 4443 §2.3; from
    /// `InternetChecksum.pseudoHeaderSum(…, protocol: .icmpv6, length: bytes.count)`).
    @inlinable
    public func isChecksumValid(pseudoHeaderSum: UInt16) -> Bool {
        InternetChecksum.sum(bytes, initial: pseudoHeaderSum) == 0xFFFF
    }
}

/// A mutable view of an ICMPv6 message.
@frozen
public struct MutableICMPv6Message {
    /// The message.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of `bytes`, or nil when shorter than 8 bytes; the contents are not read.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var message: ICMPv6Message { ICMPv6Message(validating: bytes.readOnly)! }

    /// Type.
    @inlinable public var type: ICMPv6Type {
        get { message.type }
        nonmutating set { bytes.setByte(newValue.rawValue, ICMPField.type) }
    }
    /// Code.
    @inlinable public var code: UInt8 {
        get { message.code }
        nonmutating set { bytes.setByte(newValue, ICMPField.code) }
    }
    /// Checksum.
    @inlinable public var checksum: UInt16 {
        get { message.checksum }
        nonmutating set { bytes.setBE16(newValue, ICMPField.checksum) }
    }
    /// The first 32 bits of the message body.
    @inlinable public var restOfHeader: UInt32 {
        get { message.restOfHeader }
        nonmutating set { bytes.setBE32(newValue, ICMPField.restOfHeader) }
    }
    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 {
        get { message.identifier }
        nonmutating set { bytes.setBE16(newValue, ICMPField.identifier) }
    }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 {
        get { message.sequenceNumber }
        nonmutating set { bytes.setBE16(newValue, ICMPField.sequenceNumber) }
    }
    /// The data after the first 8 bytes.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: ICMPField.headerLength) }

    /// Computes and stores the checksum over the pseudo-header sum and the whole message (RFC 4443 §2.3).
    @inlinable
    public func fillChecksum(pseudoHeaderSum: UInt16) {
        checksum = 0
        checksum = InternetChecksum.checksum(bytes.readOnly, initial: pseudoHeaderSum)
    }
}

/// A parsed ICMPv6 header: type, code and the first 32 bits of the body. Neighbor Discovery
/// messages have their own values in `NDP.swift`.
@frozen
public struct ICMPv6Repr: Hashable, Sendable {
    /// Type.
    public var type: ICMPv6Type
    /// Code.
    public var code: UInt8
    /// Identifier and sequence for echo; MTU for Packet Too Big; pointer for Parameter Problem.
    public var restOfHeader: UInt32

    /// Bytes of header `emit` writes.
    public static let headerLength = ICMPField.headerLength

    /// A header from its fields.
    @inlinable public init(type: ICMPv6Type, code: UInt8 = 0, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }

    /// An echo request or reply header.
    @inlinable
    public init(echo type: ICMPv6Type, identifier: UInt16, sequenceNumber: UInt16) {
        self.init(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }

    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { UInt16(truncatingIfNeeded: restOfHeader >> 16) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { UInt16(truncatingIfNeeded: restOfHeader) }

    /// The header of a validated message (the checksum is checked by `ICMPv6Message.isChecksumValid`).
    @inlinable
    public static func parse(_ message: ICMPv6Message) -> ICMPv6Repr {
        ICMPv6Repr(type: message.type, code: message.code, restOfHeader: message.restOfHeader)
    }

    /// Writes the header of a message filling `buffer` (8 bytes, then the data already in place)
    /// and its checksum over the pseudo-header sum and all of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        guard let message = MutableICMPv6Message(validating: buffer) else { preconditionFailure("buffer shorter than 8") }
        message.type = type
        message.code = code
        message.restOfHeader = restOfHeader
        message.fillChecksum(pseudoHeaderSum: pseudoHeaderSum)
    }
}
