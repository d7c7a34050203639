// UDP datagrams (RFC 768): view, parsed value, emission and checksum.

/// Field offsets of the UDP header (RFC 768, "Format").
@usableFromInline
enum UDPField {
    @usableFromInline static let sourcePort = 0
    @usableFromInline static let destinationPort = 2
    @usableFromInline static let length = 4
    @usableFromInline static let checksum = 6
    @usableFromInline static let headerLength = 8
}

/// A read-only view of a UDP datagram, trimmed to its Length field.
@frozen
public struct UDPHeader {
    /// Size of the header.
    public static let length = UDPField.headerLength

    /// The datagram: header and data, `length` bytes.
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil unless at least 8 bytes and 8 ≤ Length ≤ `bytes.count`.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= UDPField.headerLength else { return nil }
        let length = Int(bytes.be16(UDPField.length))
        guard length >= UDPField.headerLength, length <= bytes.count else { return nil }
        self.bytes = bytes.slice(0..<length)
    }

    /// A view of bytes already known to be valid.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Source Port.
    @inlinable public var sourcePort: UInt16 { bytes.be16(UDPField.sourcePort) }
    /// Destination Port.
    @inlinable public var destinationPort: UInt16 { bytes.be16(UDPField.destinationPort) }
    /// Length: header plus data.
    @inlinable public var length: UInt16 { bytes.be16(UDPField.length) }
    /// Checksum as stored; 0 means none was computed (IPv4 only; RFC 8200 §8.1 forbids it over IPv6).
    @inlinable public var checksum: UInt16 { bytes.be16(UDPField.checksum) }
    /// The data after the header.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: UDPField.headerLength) }

    /// True when the checksum verifies against `pseudoHeaderSum` (from
    /// `InternetChecksum.pseudoHeaderSum(…, length: length)`), or is 0 (not computed, RFC 768).
    @inlinable
    public func isChecksumValid(pseudoHeaderSum: UInt16) -> Bool {
        checksum == 0 || InternetChecksum.sum(bytes, initial: pseudoHeaderSum) == 0xFFFF
    }
}

/// A mutable view of a UDP datagram.
@frozen
public struct MutableUDPHeader {
    /// The datagram: header and data.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of an existing datagram, validated as `UDPHeader(validating:)` does and trimmed.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard let header = UDPHeader(validating: bytes.readOnly) else { return nil }
        self.bytes = bytes.slice(0..<header.bytes.count)
    }

    /// A view for building a datagram that fills `bytes` (at least 8), whose contents are not read.
    @inlinable
    public init(emptyDatagram bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= UDPField.headerLength)
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var header: UDPHeader { UDPHeader(unchecked: bytes.readOnly) }

    /// Source Port.
    @inlinable public var sourcePort: UInt16 {
        get { header.sourcePort }
        nonmutating set { bytes.setBE16(newValue, UDPField.sourcePort) }
    }
    /// Destination Port.
    @inlinable public var destinationPort: UInt16 {
        get { header.destinationPort }
        nonmutating set { bytes.setBE16(newValue, UDPField.destinationPort) }
    }
    /// Length.
    @inlinable public var length: UInt16 {
        get { header.length }
        nonmutating set { bytes.setBE16(newValue, UDPField.length) }
    }
    /// Checksum.
    @inlinable public var checksum: UInt16 {
        get { header.checksum }
        nonmutating set { bytes.setBE16(newValue, UDPField.checksum) }
    }
    /// The data after the header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: UDPField.headerLength) }

    /// Computes and stores the checksum over the whole view; a result of 0 is sent as 0xffff (RFC 768).
    @inlinable
    public func fillChecksum(pseudoHeaderSum: UInt16) {
        checksum = 0
        let value = InternetChecksum.checksum(bytes.readOnly, initial: pseudoHeaderSum)
        checksum = value == 0 ? 0xFFFF : value
    }
}

/// A parsed UDP header.
@frozen
public struct UDPRepr: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16

    /// Bytes of header `emit` writes.
    public static let headerLength = UDPField.headerLength

    /// A header from its ports.
    @inlinable public init(sourcePort: UInt16, destinationPort: UInt16) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// The fields of a validated datagram (the checksum is checked by `UDPHeader.isChecksumValid`).
    @inlinable
    public static func parse(_ header: UDPHeader) -> UDPRepr {
        UDPRepr(sourcePort: header.sourcePort, destinationPort: header.destinationPort)
    }

    /// Writes the header of a datagram filling `buffer` (8 bytes of header, then the data already
    /// in place), with Length = `buffer.count` and the checksum over the pseudo-header sum and all of it.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(buffer.count <= 0xFFFF)
        let datagram = MutableUDPHeader(emptyDatagram: buffer)
        datagram.sourcePort = sourcePort
        datagram.destinationPort = destinationPort
        datagram.length = UInt16(buffer.count)
        datagram.fillChecksum(pseudoHeaderSum: pseudoHeaderSum)
    }
}
