// IPv4 headers (RFC 791): view with RFC-named fields, parsed value, emission and header checksum.

/// Field offsets of the IPv4 header (RFC 791 §3.1).
@usableFromInline
enum IPv4Field {
    @usableFromInline static let versionAndIHL = 0
    @usableFromInline static let typeOfService = 1
    @usableFromInline static let totalLength = 2
    @usableFromInline static let identification = 4
    @usableFromInline static let flagsAndFragmentOffset = 6
    @usableFromInline static let timeToLive = 8
    @usableFromInline static let `protocol` = 9
    @usableFromInline static let headerChecksum = 10
    @usableFromInline static let source = 12
    @usableFromInline static let destination = 16
    /// Header without options (IHL 5).
    @usableFromInline static let minimumLength = 20
    /// DF flag (RFC 791 §3.1, "Flags", bit 1).
    @usableFromInline static let dontFragment: UInt16 = 0x4000
    /// MF flag (RFC 791 §3.1, "Flags", bit 2).
    @usableFromInline static let moreFragments: UInt16 = 0x2000
}

/// A read-only view of an IPv4 packet, trimmed to its Total Length.
@frozen
public struct IPv4Header {
    /// The packet from the header to the end of Total Length (Ethernet padding excluded).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil unless: at least 20 bytes, version 4, IHL ≥ 5 (RFC 791 §3.1),
    /// and IHL·4 ≤ Total Length ≤ `bytes.count`. The header checksum is not checked here.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= IPv4Field.minimumLength else { return nil }
        let first = bytes.byte(IPv4Field.versionAndIHL)
        let headerLength = Int(first & 0x0F) * 4
        let totalLength = Int(bytes.be16(IPv4Field.totalLength))
        guard first >> 4 == 4, headerLength >= IPv4Field.minimumLength, headerLength <= totalLength,
              totalLength <= bytes.count else { return nil }
        self.bytes = bytes.slice(0..<totalLength)
    }

    /// A view of bytes already known to be valid and trimmed.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Version (4).
    @inlinable public var version: UInt8 { bytes.byte(IPv4Field.versionAndIHL) >> 4 }
    /// Header length in bytes: IHL · 4, 20...60.
    @inlinable public var headerLength: Int { Int(bytes.byte(IPv4Field.versionAndIHL) & 0x0F) * 4 }
    /// Differentiated Services Code Point (RFC 2474 §3): the high 6 bits of the old TOS octet.
    @inlinable public var dscp: UInt8 { bytes.byte(IPv4Field.typeOfService) >> 2 }
    /// Explicit Congestion Notification (RFC 3168 §5): the low 2 bits of the old TOS octet.
    @inlinable public var ecn: UInt8 { bytes.byte(IPv4Field.typeOfService) & 3 }
    /// Total Length: header plus data, in bytes.
    @inlinable public var totalLength: UInt16 { bytes.be16(IPv4Field.totalLength) }
    /// Identification.
    @inlinable public var identification: UInt16 { bytes.be16(IPv4Field.identification) }
    /// The DF flag.
    @inlinable public var dontFragment: Bool { bytes.be16(IPv4Field.flagsAndFragmentOffset) & IPv4Field.dontFragment != 0 }
    /// The MF flag.
    @inlinable public var moreFragments: Bool { bytes.be16(IPv4Field.flagsAndFragmentOffset) & IPv4Field.moreFragments != 0 }
    /// Fragment Offset, in units of 8 bytes.
    @inlinable public var fragmentOffset: UInt16 { bytes.be16(IPv4Field.flagsAndFragmentOffset) & 0x1FFF }
    /// True for any fragment (MF set or a non-zero offset): there may be no transport header here.
    @inlinable public var isFragment: Bool { bytes.be16(IPv4Field.flagsAndFragmentOffset) & 0x3FFF != 0 }
    /// Time to Live.
    @inlinable public var timeToLive: UInt8 { bytes.byte(IPv4Field.timeToLive) }
    /// Protocol of the payload.
    @inlinable public var `protocol`: IPProtocol { IPProtocol(rawValue: bytes.byte(IPv4Field.protocol)) }
    /// Header Checksum as stored.
    @inlinable public var headerChecksum: UInt16 { bytes.be16(IPv4Field.headerChecksum) }
    /// Source Address.
    @inlinable public var source: IPv4Address { IPv4Address(loading: bytes.baseAddress! + IPv4Field.source) }
    /// Destination Address.
    @inlinable public var destination: IPv4Address { IPv4Address(loading: bytes.baseAddress! + IPv4Field.destination) }
    /// The option bytes between the fixed header and the payload (often empty).
    @inlinable public var options: UnsafeRawBufferPointer { bytes.slice(IPv4Field.minimumLength..<headerLength) }
    /// The bytes after the header, up to Total Length.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: headerLength) }
    /// True when the header checksum verifies (RFC 791 §3.1, RFC 1071).
    @inlinable public var isChecksumValid: Bool {
        InternetChecksum.sum(bytes.slice(0..<headerLength)) == 0xFFFF
    }
    /// The pseudo-header sum for this packet's payload (`length` = payload bytes), for TCP/UDP checksums.
    @inlinable public var payloadPseudoHeaderSum: UInt16 {
        InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: self.protocol,
                                         length: bytes.count - headerLength)
    }
}

/// A mutable view of an IPv4 packet, for rewriting (TTL, addresses, lengths) or emitting.
@frozen
public struct MutableIPv4Header {
    /// The packet from the header to the end of Total Length.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of an existing packet, validated as `IPv4Header(validating:)` does and trimmed to Total Length.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard let header = IPv4Header(validating: bytes.readOnly) else { return nil }
        self.bytes = bytes.slice(0..<header.bytes.count)
    }

    /// A view for building a packet in `bytes` (header plus payload, at least 20), whose contents are not read.
    @inlinable
    public init(emptyPacket bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= IPv4Field.minimumLength)
        self.bytes = bytes
    }

    /// The read-only view of the same bytes (valid once the header has been written).
    @inlinable public var header: IPv4Header { IPv4Header(unchecked: bytes.readOnly) }

    /// Version.
    @inlinable public var version: UInt8 {
        get { header.version }
        nonmutating set { bytes.setByte(newValue << 4 | bytes.readOnly.byte(0) & 0x0F, IPv4Field.versionAndIHL) }
    }
    /// Header length in bytes (a multiple of 4, 20...60).
    @inlinable public var headerLength: Int {
        get { header.headerLength }
        nonmutating set {
            bytes.setByte(bytes.readOnly.byte(0) & 0xF0 | UInt8(truncatingIfNeeded: newValue / 4) & 0x0F, IPv4Field.versionAndIHL)
        }
    }
    /// DSCP.
    @inlinable public var dscp: UInt8 {
        get { header.dscp }
        nonmutating set { bytes.setByte(newValue << 2 | bytes.readOnly.byte(1) & 3, IPv4Field.typeOfService) }
    }
    /// ECN.
    @inlinable public var ecn: UInt8 {
        get { header.ecn }
        nonmutating set { bytes.setByte(bytes.readOnly.byte(1) & 0xFC | newValue & 3, IPv4Field.typeOfService) }
    }
    /// Total Length.
    @inlinable public var totalLength: UInt16 {
        get { header.totalLength }
        nonmutating set { bytes.setBE16(newValue, IPv4Field.totalLength) }
    }
    /// Identification.
    @inlinable public var identification: UInt16 {
        get { header.identification }
        nonmutating set { bytes.setBE16(newValue, IPv4Field.identification) }
    }
    /// Writes the flags and fragment offset (in units of 8 bytes) together; the reserved bit is cleared.
    @inlinable
    public func setFragment(dontFragment: Bool, moreFragments: Bool, offset: UInt16) {
        let value = (dontFragment ? IPv4Field.dontFragment : 0) | (moreFragments ? IPv4Field.moreFragments : 0) | offset & 0x1FFF
        bytes.setBE16(value, IPv4Field.flagsAndFragmentOffset)
    }
    /// Time to Live.
    @inlinable public var timeToLive: UInt8 {
        get { header.timeToLive }
        nonmutating set { bytes.setByte(newValue, IPv4Field.timeToLive) }
    }
    /// Protocol.
    @inlinable public var `protocol`: IPProtocol {
        get { header.protocol }
        nonmutating set { bytes.setByte(newValue.rawValue, IPv4Field.protocol) }
    }
    /// Header Checksum.
    @inlinable public var headerChecksum: UInt16 {
        get { header.headerChecksum }
        nonmutating set { bytes.setBE16(newValue, IPv4Field.headerChecksum) }
    }
    /// Source Address.
    @inlinable public var source: IPv4Address {
        get { header.source }
        nonmutating set { newValue.store(to: bytes.baseAddress! + IPv4Field.source) }
    }
    /// Destination Address.
    @inlinable public var destination: IPv4Address {
        get { header.destination }
        nonmutating set { newValue.store(to: bytes.baseAddress! + IPv4Field.destination) }
    }
    /// The bytes after the header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: headerLength) }

    /// Computes and stores the header checksum over `headerLength` bytes (RFC 791 §3.1).
    @inlinable
    public func fillChecksum() {
        headerChecksum = 0
        headerChecksum = InternetChecksum.checksum(bytes.readOnly.slice(0..<headerLength))
    }
}

/// A parsed IPv4 header without options.
@frozen
public struct IPv4Repr: Hashable, Sendable {
    /// Source.
    public var source: IPv4Address
    /// Destination.
    public var destination: IPv4Address
    /// Protocol of the payload.
    public var `protocol`: IPProtocol
    /// Bytes after the header (Total Length − header length).
    public var payloadLength: Int
    /// Time to Live.
    public var timeToLive: UInt8
    /// Identification.
    public var identification: UInt16
    /// DSCP (RFC 2474 §3).
    public var dscp: UInt8
    /// ECN (RFC 3168 §5).
    public var ecn: UInt8
    /// The DF flag.
    public var dontFragment: Bool
    /// More fragments.
    public var moreFragments: Bool
    /// Fragment Offset in units of 8 bytes.
    public var fragmentOffset: UInt16

    /// Bytes `emit` writes (no options).
    public static let headerLength = IPv4Field.minimumLength

    /// A header from its fields.
    @inlinable
    public init(source: IPv4Address, destination: IPv4Address, protocol: IPProtocol, payloadLength: Int,
                timeToLive: UInt8 = 64, identification: UInt16 = 0, dscp: UInt8 = 0, ecn: UInt8 = 0,
                dontFragment: Bool = false, moreFragments: Bool = false, fragmentOffset: UInt16 = 0) {
        self.source = source
        self.destination = destination
        self.protocol = `protocol`
        self.payloadLength = payloadLength
        self.timeToLive = timeToLive
        self.identification = identification
        self.dscp = dscp
        self.ecn = ecn
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
    }

    /// The fields of a validated header; options are skipped and the checksum is not checked
    /// (use `IPv4Header.isChecksumValid`).
    @inlinable
    public static func parse(_ header: IPv4Header) -> IPv4Repr {
        IPv4Repr(source: header.source, destination: header.destination, protocol: header.protocol,
                 payloadLength: header.bytes.count - header.headerLength, timeToLive: header.timeToLive,
                 identification: header.identification, dscp: header.dscp, ecn: header.ecn,
                 dontFragment: header.dontFragment, moreFragments: header.moreFragments,
                 fragmentOffset: header.fragmentOffset)
    }

    /// Writes the 20-byte header, with its checksum, at the start of `buffer`; the payload is untouched.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(payloadLength >= 0 && payloadLength <= 0xFFFF - IPv4Field.minimumLength)
        let header = MutableIPv4Header(emptyPacket: buffer)
        buffer.setByte(0x45, IPv4Field.versionAndIHL)
        buffer.setByte(dscp << 2 | ecn & 3, IPv4Field.typeOfService)
        header.totalLength = UInt16(IPv4Field.minimumLength + payloadLength)
        header.identification = identification
        header.setFragment(dontFragment: dontFragment, moreFragments: moreFragments, offset: fragmentOffset)
        header.timeToLive = timeToLive
        header.protocol = `protocol`
        header.source = source
        header.destination = destination
        header.headerChecksum = 0
        header.headerChecksum = InternetChecksum.checksum(buffer.readOnly.slice(0..<IPv4Field.minimumLength))
    }
}
