// ICMP: the message layout ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 §2.1) share; the families differ
// only in their type numbers and in what the checksum covers (see ICMPv4.swift and ICMPv6.swift).
//
// One generic view, mutable view and Repr serve both families; `ICMPv4Message`, `ICMPv6Repr` and the
// others are aliases with the family's type codes fixed, so a v4 type can never label a v6 message.
// Everything is `@frozen`/`@inlinable`, so each use is specialised: no existential, no allocation.

/// The message-type numbers of one ICMP family (`ICMPv4Type` or `ICMPv6Type`).
public protocol ICMPMessageType: RawRepresentable, Hashable, Sendable where RawValue == UInt8 {
    /// The type with this number; every number is valid (open set).
    init(rawValue: UInt8)
}

/// Field offsets shared by ICMPv4 and ICMPv6 (RFC 792; RFC 4443 §2.1).
@usableFromInline
enum ICMPField {
    @usableFromInline static let type = 0
    @usableFromInline static let code = 1
    @usableFromInline static let checksum = 2
    /// The 32 bits after the checksum: identifier and sequence for echo, unused, MTU or pointer otherwise.
    @usableFromInline static let restOfHeader = 4
    @usableFromInline static let identifier = 4
    @usableFromInline static let sequenceNumber = 6
    @usableFromInline static let headerLength = 8
}

/// A read-only view of an ICMP message of the family `MessageType` names.
@frozen
public struct ICMPMessage<MessageType: ICMPMessageType> {
    /// The message: 8-byte header (type, code, checksum, 32 bits of body) and data.
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil when shorter than the 8-byte header (every ICMP message has at
    /// least type, code, checksum and 32 bits of body; RFC 792, RFC 4443 §2.1).
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// Type.
    @inlinable public var type: MessageType { MessageType(rawValue: bytes.byte(ICMPField.type)) }
    /// Code.
    @inlinable public var code: UInt8 { bytes.byte(ICMPField.code) }
    /// Checksum as stored.
    @inlinable public var checksum: UInt16 { bytes.be16(ICMPField.checksum) }
    /// The 32 bits after the checksum (identifier and sequence, MTU, pointer, flags…).
    @inlinable public var restOfHeader: UInt32 { bytes.be32(ICMPField.restOfHeader) }
    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { bytes.be16(ICMPField.identifier) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { bytes.be16(ICMPField.sequenceNumber) }
    /// The data after the 8-byte header.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: ICMPField.headerLength) }
}

/// A mutable view of an ICMP message of the family `MessageType` names.
@frozen
public struct MutableICMPMessage<MessageType: ICMPMessageType> {
    /// The message: header and data.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of `bytes`, or nil when shorter than 8 bytes; the contents are not read.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= ICMPField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var message: ICMPMessage<MessageType> { ICMPMessage(validating: bytes.readOnly)! }

    /// Type.
    @inlinable public var type: MessageType {
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

    /// Computes and stores the checksum over `initial` (0, or an ICMPv6 pseudo-header sum) and the whole message.
    @inlinable
    func fillChecksum(initial: UInt16) {
        checksum = 0
        checksum = InternetChecksum.checksum(bytes.readOnly, initial: initial)
    }
}

/// A parsed ICMP header: type, code and the 32 bits after the checksum.
@frozen
public struct ICMPRepr<MessageType: ICMPMessageType>: Hashable, Sendable {
    /// Type.
    public var type: MessageType
    /// Code.
    public var code: UInt8
    /// Identifier and sequence for echo; unused, MTU (RFC 1191 §4, RFC 4443 §3.2) or pointer otherwise.
    public var restOfHeader: UInt32

    /// Bytes of header `emit` writes.
    @inlinable public static var headerLength: Int { ICMPField.headerLength }

    /// A header from its fields.
    @inlinable public init(type: MessageType, code: UInt8 = 0, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }

    /// An echo request or reply header.
    @inlinable
    public init(echo type: MessageType, identifier: UInt16, sequenceNumber: UInt16) {
        self.init(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }

    /// Identifier (echo messages).
    @inlinable public var identifier: UInt16 { UInt16(truncatingIfNeeded: restOfHeader >> 16) }
    /// Sequence Number (echo messages).
    @inlinable public var sequenceNumber: UInt16 { UInt16(truncatingIfNeeded: restOfHeader) }

    /// The header of a validated message (the checksum is checked by the message's `isChecksumValid`).
    @inlinable
    public static func parse(_ message: ICMPMessage<MessageType>) -> ICMPRepr {
        ICMPRepr(type: message.type, code: message.code, restOfHeader: message.restOfHeader)
    }

    /// Writes the header of a message filling `buffer` (8 bytes, then the data already in place) and
    /// its checksum over `initial` and all of `buffer`; the families' `emit` pass their initial sum.
    @inlinable
    func emit(into buffer: UnsafeMutableRawBufferPointer, checksumInitial initial: UInt16) {
        guard let message = MutableICMPMessage<MessageType>(validating: buffer) else { preconditionFailure("buffer shorter than 8") }
        message.type = type
        message.code = code
        message.restOfHeader = restOfHeader
        message.fillChecksum(initial: initial)
    }
}
