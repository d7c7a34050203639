// TCP segments (RFC 9293): view, flags, options, parsed value, emission and checksum.

/// Field offsets of the TCP header (RFC 9293 §3.1).
@usableFromInline
enum TCPField {
    @usableFromInline static let sourcePort = 0
    @usableFromInline static let destinationPort = 2
    @usableFromInline static let sequenceNumber = 4
    @usableFromInline static let acknowledgmentNumber = 8
    @usableFromInline static let dataOffset = 12
    @usableFromInline static let flags = 13
    @usableFromInline static let window = 14
    @usableFromInline static let checksum = 16
    @usableFromInline static let urgentPointer = 18
    @usableFromInline static let minimumLength = 20
}

/// The control bits of byte 13 (RFC 9293 §3.1; CWR and ECE from RFC 3168 §23.2).
@frozen
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// FIN: no more data from sender.
    public static let fin = TCPFlags(rawValue: 0x01)
    /// SYN: synchronize sequence numbers.
    public static let syn = TCPFlags(rawValue: 0x02)
    /// RST: reset the connection.
    public static let rst = TCPFlags(rawValue: 0x04)
    /// PSH: push function.
    public static let psh = TCPFlags(rawValue: 0x08)
    /// ACK: the acknowledgment field is significant.
    public static let ack = TCPFlags(rawValue: 0x10)
    /// URG: the urgent pointer is significant.
    public static let urg = TCPFlags(rawValue: 0x20)
    /// ECE: ECN-Echo (RFC 3168 §6.1).
    public static let ece = TCPFlags(rawValue: 0x40)
    /// CWR: congestion window reduced (RFC 3168 §6.1).
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// TCP option kinds (RFC 9293 §3.2, RFC 7323 §2.2 and §3.2, RFC 2018 §2).
@usableFromInline
enum TCPOptionKind {
    @usableFromInline static let endOfList: UInt8 = 0
    @usableFromInline static let noOperation: UInt8 = 1
    @usableFromInline static let maximumSegmentSize: UInt8 = 2
    @usableFromInline static let windowScale: UInt8 = 3
    @usableFromInline static let sackPermitted: UInt8 = 4
    @usableFromInline static let timestamp: UInt8 = 8
}

/// A read-only view of a TCP segment: header, options and data.
@frozen
public struct TCPHeader {
    /// The segment as given (the IP layer decides where it ends).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil unless at least 20 bytes and 20 ≤ Data Offset·4 ≤ `bytes.count`.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= TCPField.minimumLength else { return nil }
        let headerLength = Int(bytes.byte(TCPField.dataOffset) >> 4) * 4
        guard headerLength >= TCPField.minimumLength, headerLength <= bytes.count else { return nil }
        self.bytes = bytes
    }

    /// A view of bytes already known to be valid.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Source Port.
    @inlinable public var sourcePort: UInt16 { bytes.be16(TCPField.sourcePort) }
    /// Destination Port.
    @inlinable public var destinationPort: UInt16 { bytes.be16(TCPField.destinationPort) }
    /// Sequence Number.
    @inlinable public var sequenceNumber: UInt32 { bytes.be32(TCPField.sequenceNumber) }
    /// Acknowledgment Number.
    @inlinable public var acknowledgmentNumber: UInt32 { bytes.be32(TCPField.acknowledgmentNumber) }
    /// Data Offset in 32-bit words.
    @inlinable public var dataOffset: UInt8 { bytes.byte(TCPField.dataOffset) >> 4 }
    /// Header length in bytes, options included (Data Offset · 4).
    @inlinable public var headerLength: Int { Int(dataOffset) * 4 }
    /// Control bits.
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes.byte(TCPField.flags)) }
    /// Window.
    @inlinable public var window: UInt16 { bytes.be16(TCPField.window) }
    /// Checksum as stored.
    @inlinable public var checksum: UInt16 { bytes.be16(TCPField.checksum) }
    /// Urgent Pointer.
    @inlinable public var urgentPointer: UInt16 { bytes.be16(TCPField.urgentPointer) }
    /// The option bytes (padding included).
    @inlinable public var options: UnsafeRawBufferPointer { bytes.slice(TCPField.minimumLength..<headerLength) }
    /// The data after the header.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: headerLength) }

    /// True when the checksum verifies against `pseudoHeaderSum` (from
    /// `InternetChecksum.pseudoHeaderSum(…, length: bytes.count)`).
    @inlinable
    public func isChecksumValid(pseudoHeaderSum: UInt16) -> Bool {
        InternetChecksum.sum(bytes, initial: pseudoHeaderSum) == 0xFFFF
    }
}

/// A mutable view of a TCP segment.
@frozen
public struct MutableTCPHeader {
    /// The segment.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of an existing segment, validated as `TCPHeader(validating:)` does.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard TCPHeader(validating: bytes.readOnly) != nil else { return nil }
        self.bytes = bytes
    }

    /// A view for building a segment that fills `bytes` (at least 20), whose contents are not read.
    @inlinable
    public init(emptySegment bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= TCPField.minimumLength)
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var header: TCPHeader { TCPHeader(unchecked: bytes.readOnly) }

    /// Source Port.
    @inlinable public var sourcePort: UInt16 {
        get { header.sourcePort }
        nonmutating set { bytes.setBE16(newValue, TCPField.sourcePort) }
    }
    /// Destination Port.
    @inlinable public var destinationPort: UInt16 {
        get { header.destinationPort }
        nonmutating set { bytes.setBE16(newValue, TCPField.destinationPort) }
    }
    /// Sequence Number.
    @inlinable public var sequenceNumber: UInt32 {
        get { header.sequenceNumber }
        nonmutating set { bytes.setBE32(newValue, TCPField.sequenceNumber) }
    }
    /// Acknowledgment Number.
    @inlinable public var acknowledgmentNumber: UInt32 {
        get { header.acknowledgmentNumber }
        nonmutating set { bytes.setBE32(newValue, TCPField.acknowledgmentNumber) }
    }
    /// Header length in bytes (a multiple of 4, 20...60); the reserved bits are cleared.
    @inlinable public var headerLength: Int {
        get { header.headerLength }
        nonmutating set { bytes.setByte(UInt8(truncatingIfNeeded: newValue / 4) << 4, TCPField.dataOffset) }
    }
    /// Control bits.
    @inlinable public var flags: TCPFlags {
        get { header.flags }
        nonmutating set { bytes.setByte(newValue.rawValue, TCPField.flags) }
    }
    /// Window.
    @inlinable public var window: UInt16 {
        get { header.window }
        nonmutating set { bytes.setBE16(newValue, TCPField.window) }
    }
    /// Checksum.
    @inlinable public var checksum: UInt16 {
        get { header.checksum }
        nonmutating set { bytes.setBE16(newValue, TCPField.checksum) }
    }
    /// Urgent Pointer.
    @inlinable public var urgentPointer: UInt16 {
        get { header.urgentPointer }
        nonmutating set { bytes.setBE16(newValue, TCPField.urgentPointer) }
    }
    /// The option bytes (requires the header length to be set).
    @inlinable public var options: UnsafeMutableRawBufferPointer { bytes.slice(TCPField.minimumLength..<headerLength) }
    /// The data after the header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: headerLength) }

    /// Computes and stores the checksum over the whole view (RFC 9293 §3.1, "Checksum").
    @inlinable
    public func fillChecksum(pseudoHeaderSum: UInt16) {
        checksum = 0
        checksum = InternetChecksum.checksum(bytes.readOnly, initial: pseudoHeaderSum)
    }
}

/// The TSval and TSecr of a Timestamps option (RFC 7323 §3.2).
@frozen
public struct TCPTimestamp: Hashable, Sendable {
    /// TSval.
    public var value: UInt32
    /// TSecr.
    public var echoReply: UInt32

    /// A timestamp option from TSval and TSecr.
    @inlinable public init(value: UInt32, echoReply: UInt32) {
        self.value = value
        self.echoReply = echoReply
    }
}

/// A parsed TCP header with the options a switch cares about (MSS, window scale, SACK-permitted,
/// timestamps); other options (SACK blocks, unknown kinds) are skipped on parse and not emitted.
@frozen
public struct TCPRepr: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16
    /// Sequence number.
    public var sequenceNumber: UInt32
    /// Acknowledgment number.
    public var acknowledgmentNumber: UInt32
    /// Flags.
    public var flags: TCPFlags
    /// Window.
    public var window: UInt16
    /// Urgent pointer.
    public var urgentPointer: UInt16
    /// Maximum Segment Size option (RFC 9293 §3.7.1).
    public var maximumSegmentSize: UInt16?
    /// Window Scale shift count (RFC 7323 §2).
    public var windowScale: UInt8?
    /// SACK-Permitted (RFC 2018 §2).
    public var sackPermitted: Bool
    /// Timestamps (RFC 7323 §3).
    public var timestamp: TCPTimestamp?

    /// A header from its fields.
    @inlinable
    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32 = 0,
                flags: TCPFlags, window: UInt16, urgentPointer: UInt16 = 0, maximumSegmentSize: UInt16? = nil,
                windowScale: UInt8? = nil, sackPermitted: Bool = false, timestamp: TCPTimestamp? = nil) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamp = timestamp
    }

    /// The fields of a validated segment, or nil when an option is malformed (a length below 2,
    /// past the end, or wrong for its kind; RFC 9293 §3.1 "Options"). The checksum is checked by
    /// `TCPHeader.isChecksumValid`.
    @inlinable
    public static func parse(_ header: TCPHeader) -> TCPRepr? {
        var repr = TCPRepr(sourcePort: header.sourcePort, destinationPort: header.destinationPort,
                           sequenceNumber: header.sequenceNumber, acknowledgmentNumber: header.acknowledgmentNumber,
                           flags: header.flags, window: header.window, urgentPointer: header.urgentPointer)
        let options = header.options
        var offset = 0
        while offset < options.count {
            let kind = options.byte(offset)
            if kind == TCPOptionKind.endOfList { break }
            if kind == TCPOptionKind.noOperation { offset += 1; continue }
            guard offset + 1 < options.count else { return nil }
            let length = Int(options.byte(offset + 1))
            guard length >= 2, offset + length <= options.count else { return nil }
            switch kind {
            case TCPOptionKind.maximumSegmentSize:
                guard length == 4 else { return nil }
                repr.maximumSegmentSize = options.be16(offset + 2)
            case TCPOptionKind.windowScale:
                guard length == 3 else { return nil }
                repr.windowScale = options.byte(offset + 2)
            case TCPOptionKind.sackPermitted:
                guard length == 2 else { return nil }
                repr.sackPermitted = true
            case TCPOptionKind.timestamp:
                guard length == 10 else { return nil }
                repr.timestamp = TCPTimestamp(value: options.be32(offset + 2), echoReply: options.be32(offset + 6))
            default:
                break
            }
            offset += length
        }
        return repr
    }

    /// Bytes of options `emit` writes, padded to a multiple of 4.
    @inlinable public var optionsLength: Int {
        var length = maximumSegmentSize == nil ? 0 : 4
        if timestamp != nil { length += 12 } else if sackPermitted { length += 4 }
        if windowScale != nil { length += 4 }
        return length
    }

    /// Bytes of header `emit` writes: 20 plus options.
    @inlinable public var headerLength: Int { TCPField.minimumLength + optionsLength }

    /// Writes the header of a segment filling `buffer` (header, then the data already in place)
    /// and its checksum over the pseudo-header sum and all of `buffer`. Options go in the order
    /// Linux uses (`tcp_options_write`): MSS; SACK-permitted with timestamps (or NOP-padded
    /// alone); NOP and window scale.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(buffer.count >= headerLength)
        let segment = MutableTCPHeader(emptySegment: buffer)
        segment.sourcePort = sourcePort
        segment.destinationPort = destinationPort
        segment.sequenceNumber = sequenceNumber
        segment.acknowledgmentNumber = acknowledgmentNumber
        segment.headerLength = headerLength
        segment.flags = flags
        segment.window = window
        segment.urgentPointer = urgentPointer
        var offset = TCPField.minimumLength
        func put(_ byte: UInt8) { buffer.setByte(byte, offset); offset += 1 }
        if let maximumSegmentSize {
            put(TCPOptionKind.maximumSegmentSize); put(4)
            buffer.setBE16(maximumSegmentSize, offset); offset += 2
        }
        if let timestamp {
            if sackPermitted { put(TCPOptionKind.sackPermitted); put(2) } else { put(TCPOptionKind.noOperation); put(TCPOptionKind.noOperation) }
            put(TCPOptionKind.timestamp); put(10)
            buffer.setBE32(timestamp.value, offset)
            buffer.setBE32(timestamp.echoReply, offset + 4)
            offset += 8
        } else if sackPermitted {
            put(TCPOptionKind.noOperation); put(TCPOptionKind.noOperation); put(TCPOptionKind.sackPermitted); put(2)
        }
        if let windowScale {
            put(TCPOptionKind.noOperation); put(TCPOptionKind.windowScale); put(3); put(windowScale)
        }
        segment.fillChecksum(pseudoHeaderSum: pseudoHeaderSum)
    }
}
