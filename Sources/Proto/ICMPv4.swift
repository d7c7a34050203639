// ICMP for IPv4 (RFC 792): view, parsed value, emission and checksum.

/// An ICMPv4 message type (RFC 792; IANA "ICMP Type Numbers"); open, so unknown values round-trip.
@frozen
public struct ICMPv4Type: RawRepresentable, Hashable, Sendable {
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

/// Field offsets shared by ICMPv4 and ICMPv6 (RFC 792; RFC 4443 §2.1).
@usableFromInline
enum ICMPField {
    @usableFromInline static let type = 0
    @usableFromInline static let code = 1
    @usableFromInline static let checksum = 2
    /// The 32 bits after the checksum: identifier and sequence for echo, unused or MTU or pointer otherwise.
    @usableFromInline static let restOfHeader = 4
    @usableFromInline static let identifier = 4
    @usableFromInline static let sequenceNumber = 6
    @usableFromInline static let headerLength = 8
}

/// A read-only view of an ICMPv4 message.
@frozen
public struct ICMPv4Message {
    /// The message: 8-byte header and data (the IP payload).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil when shorter than the 8-byte header.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// Type.
    @inlinable public var type: ICMPv4Type { ICMPv4Type(rawValue: bytes.byte(ICMPField.type)) }
    /// Code.
    @inlinable public var code: UInt8 { bytes.byte(ICMPField.code) }
    /// Checksum as stored.
    @inlinable public var checksum: UInt16 { bytes.be16(ICMPField.checksum) }
    /// The 32 bits after the checksum.
    @inlinable public var restOfHeader: UInt32 { bytes.be32(ICMPField.restOfHeader) }
    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { bytes.be16(ICMPField.identifier) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { bytes.be16(ICMPField.sequenceNumber) }
    /// The data after the 8-byte header.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: ICMPField.headerLength) }
    /// True when the checksum over the whole message verifies (RFC 792).
    @inlinable public var isChecksumValid: Bool { InternetChecksum.sum(bytes) == 0xFFFF }
}

/// A mutable view of an ICMPv4 message.
@frozen
public struct MutableICMPv4Message {
    /// The message: header and data.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of `bytes`, or nil when shorter than 8 bytes; the contents are not read.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var message: ICMPv4Message { ICMPv4Message(validating: bytes.readOnly)! }

    /// Type.
    @inlinable public var type: ICMPv4Type {
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
    /// The 32 bits after the checksum.
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
    /// The data after the header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: ICMPField.headerLength) }

    /// Computes and stores the checksum over the whole message.
    @inlinable
    public func fillChecksum() {
        checksum = 0
        checksum = InternetChecksum.checksum(bytes.readOnly)
    }
}

/// A parsed ICMPv4 header: type, code and the 32 bits after the checksum.
@frozen
public struct ICMPv4Repr: Hashable, Sendable {
    /// Type.
    public var type: ICMPv4Type
    /// Code.
    public var code: UInt8
    /// Identifier and sequence number for echo; unused, MTU (RFC 1191 §4) or pointer otherwise.
    public var restOfHeader: UInt32

    /// Bytes of header `emit` writes.
    public static let headerLength = ICMPField.headerLength

    /// A header from its fields.
    @inlinable public init(type: ICMPv4Type, code: UInt8 = 0, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }

    /// An echo request or reply header.
    @inlinable
    public init(echo type: ICMPv4Type, identifier: UInt16, sequenceNumber: UInt16) {
        self.init(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }

    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { UInt16(truncatingIfNeeded: restOfHeader >> 16) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { UInt16(truncatingIfNeeded: restOfHeader) }

    /// The header of a validated message (the checksum is checked by `ICMPv4Message.isChecksumValid`).
    @inlinable
    public static func parse(_ message: ICMPv4Message) -> ICMPv4Repr {
        ICMPv4Repr(type: message.type, code: message.code, restOfHeader: message.restOfHeader)
    }

    /// Writes the header of a message filling `buffer` (8 bytes, then the data already in place)
    /// and its checksum over all of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        guard let message = MutableICMPv4Message(validating: buffer) else { preconditionFailure("buffer shorter than 8") }
        message.type = type
        message.code = code
        message.restOfHeader = restOfHeader
        message.fillChecksum()
    }
}
