// IPv6 headers (RFC 8200): fixed-header view, extension header walking, parsed values, emission.

/// Field offsets of the IPv6 fixed header (RFC 8200 §3).
@usableFromInline
enum IPv6Field {
    @usableFromInline static let versionClassLabel = 0
    @usableFromInline static let payloadLength = 4
    @usableFromInline static let nextHeader = 6
    @usableFromInline static let hopLimit = 7
    @usableFromInline static let source = 8
    @usableFromInline static let destination = 24
    /// Size of the fixed header.
    @usableFromInline static let length = 40
    /// Extension headers walked before giving up; RFC 8200 §4.1 recommends at most one of each
    /// kind (destination options twice), so eight is generous.
    @usableFromInline static let maximumExtensionHeaders = 8
}

/// What follows the IPv6 extension headers: found by `IPv6Header.upperLayer()`.
@frozen
public struct IPv6UpperLayer: Hashable, Sendable {
    /// The upper-layer protocol (or `.ipv6NoNextHeader`, `.esp`, or any unknown value).
    public var `protocol`: IPProtocol
    /// Offset of the upper-layer header from the start of the IPv6 header.
    public var offset: Int
    /// The Fragment header's fields when one was present.
    public var fragment: IPv6FragmentRepr?

    /// An upper layer from its fields.
    @inlinable
    public init(protocol: IPProtocol, offset: Int, fragment: IPv6FragmentRepr? = nil) {
        self.protocol = `protocol`
        self.offset = offset
        self.fragment = fragment
    }

    /// True when the upper-layer header is really at `offset`: not a fragment, or the first one.
    @inlinable public var hasUpperLayerHeader: Bool { fragment.map { $0.fragmentOffset == 0 } ?? true }
}

/// A read-only view of an IPv6 packet, trimmed to 40 + Payload Length.
@frozen
public struct IPv6Header {
    /// The packet from the fixed header to the end of Payload Length.
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil unless at least 40 bytes, version 6 and 40 + Payload Length ≤
    /// `bytes.count`. Jumbograms (RFC 2675, Payload Length 0) are not supported: they read as empty.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= IPv6Field.length, bytes.byte(0) >> 4 == 6 else { return nil }
        let total = IPv6Field.length + Int(bytes.be16(IPv6Field.payloadLength))
        guard total <= bytes.count else { return nil }
        self.bytes = bytes.slice(0..<total)
    }

    /// A view of bytes already known to be valid.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Version (6).
    @inlinable public var version: UInt8 { bytes.byte(0) >> 4 }
    /// Traffic Class (RFC 8200 §7): DSCP in the high 6 bits, ECN in the low 2.
    @inlinable public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.be32(0) >> 20) }
    /// Flow Label (RFC 6437), 20 bits.
    @inlinable public var flowLabel: UInt32 { bytes.be32(0) & 0xF_FFFF }
    /// Payload Length: bytes after the fixed header, extension headers included.
    @inlinable public var payloadLength: UInt16 { bytes.be16(IPv6Field.payloadLength) }
    /// Next Header: the first extension header or the upper-layer protocol.
    @inlinable public var nextHeader: IPProtocol { IPProtocol(rawValue: bytes.byte(IPv6Field.nextHeader)) }
    /// Hop Limit.
    @inlinable public var hopLimit: UInt8 { bytes.byte(IPv6Field.hopLimit) }
    /// Source Address.
    @inlinable public var source: IPv6Address { IPv6Address(loading: bytes.baseAddress! + IPv6Field.source) }
    /// Destination Address.
    @inlinable public var destination: IPv6Address { IPv6Address(loading: bytes.baseAddress! + IPv6Field.destination) }
    /// The bytes after the fixed header (extension headers included).
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: IPv6Field.length) }

    /// Walks the extension headers (hop-by-hop 0, routing 43, fragment 44, destination options 60,
    /// AH 51; RFC 8200 §4, RFC 4302 §2.2) to the upper layer. Nil when a header is truncated, when
    /// hop-by-hop is not first (RFC 8200 §4.3), or after more than eight extension headers.
    @inlinable
    public func upperLayer() -> IPv6UpperLayer? {
        var next = nextHeader
        var offset = IPv6Field.length
        var fragment: IPv6FragmentRepr? = nil
        for index in 0...IPv6Field.maximumExtensionHeaders {
            let length: Int
            switch next {
            case .hopByHop, .ipv6Route, .ipv6DestinationOptions:
                guard next != .hopByHop || index == 0, offset + 8 <= bytes.count else { return nil }
                length = (Int(bytes.byte(offset + 1)) + 1) * 8
            case .ipv6Fragment:
                guard let header = IPv6FragmentHeader(validating: bytes.suffix(from: offset)) else { return nil }
                fragment = IPv6FragmentRepr.parse(header)
                length = IPv6FragmentHeader.length
            case .authenticationHeader:
                guard offset + 8 <= bytes.count else { return nil }
                length = (Int(bytes.byte(offset + 1)) + 2) * 4
            default:
                return IPv6UpperLayer(protocol: next, offset: offset, fragment: fragment)
            }
            guard index < IPv6Field.maximumExtensionHeaders, offset + length <= bytes.count else { return nil }
            next = IPProtocol(rawValue: bytes.byte(offset))
            offset += length
        }
        return nil
    }
}

/// A mutable view of an IPv6 packet.
@frozen
public struct MutableIPv6Header {
    /// The packet from the fixed header to the end of Payload Length.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of an existing packet, validated as `IPv6Header(validating:)` does and trimmed.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard let header = IPv6Header(validating: bytes.readOnly) else { return nil }
        self.bytes = bytes.slice(0..<header.bytes.count)
    }

    /// A view for building a packet in `bytes` (at least 40), whose contents are not read.
    @inlinable
    public init(emptyPacket bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= IPv6Field.length)
        self.bytes = bytes
    }

    /// The read-only view of the same bytes.
    @inlinable public var header: IPv6Header { IPv6Header(unchecked: bytes.readOnly) }

    /// Writes version, traffic class and flow label together.
    @inlinable
    public func setVersion(_ version: UInt8 = 6, trafficClass: UInt8, flowLabel: UInt32) {
        bytes.setBE32(UInt32(version & 0x0F) << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF, 0)
    }
    /// Payload Length.
    @inlinable public var payloadLength: UInt16 {
        get { header.payloadLength }
        nonmutating set { bytes.setBE16(newValue, IPv6Field.payloadLength) }
    }
    /// Next Header.
    @inlinable public var nextHeader: IPProtocol {
        get { header.nextHeader }
        nonmutating set { bytes.setByte(newValue.rawValue, IPv6Field.nextHeader) }
    }
    /// Hop Limit.
    @inlinable public var hopLimit: UInt8 {
        get { header.hopLimit }
        nonmutating set { bytes.setByte(newValue, IPv6Field.hopLimit) }
    }
    /// Source Address.
    @inlinable public var source: IPv6Address {
        get { header.source }
        nonmutating set { newValue.store(to: bytes.baseAddress! + IPv6Field.source) }
    }
    /// Destination Address.
    @inlinable public var destination: IPv6Address {
        get { header.destination }
        nonmutating set { newValue.store(to: bytes.baseAddress! + IPv6Field.destination) }
    }
    /// The bytes after the fixed header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: IPv6Field.length) }
}

/// A parsed IPv6 fixed header.
@frozen
public struct IPv6Repr: Hashable, Sendable {
    /// Source.
    public var source: IPv6Address
    /// Destination.
    public var destination: IPv6Address
    /// Next Header: the first extension header or the upper layer.
    public var nextHeader: IPProtocol
    /// Bytes after the fixed header, extension headers included.
    public var payloadLength: Int
    /// Hop limit.
    public var hopLimit: UInt8
    /// Traffic class.
    public var trafficClass: UInt8
    /// Flow label.
    public var flowLabel: UInt32

    /// Bytes `emit` writes.
    public static let headerLength = IPv6Field.length

    /// A header from its fields.
    @inlinable
    public init(source: IPv6Address, destination: IPv6Address, nextHeader: IPProtocol, payloadLength: Int,
                hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.source = source
        self.destination = destination
        self.nextHeader = nextHeader
        self.payloadLength = payloadLength
        self.hopLimit = hopLimit
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel
    }

    /// The fields of a validated header.
    @inlinable
    public static func parse(_ header: IPv6Header) -> IPv6Repr {
        IPv6Repr(source: header.source, destination: header.destination, nextHeader: header.nextHeader,
                 payloadLength: Int(header.payloadLength), hopLimit: header.hopLimit,
                 trafficClass: header.trafficClass, flowLabel: header.flowLabel)
    }

    /// Writes the 40-byte fixed header at the start of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(payloadLength >= 0 && payloadLength <= 0xFFFF)
        let header = MutableIPv6Header(emptyPacket: buffer)
        header.setVersion(trafficClass: trafficClass, flowLabel: flowLabel)
        header.payloadLength = UInt16(payloadLength)
        header.nextHeader = nextHeader
        header.hopLimit = hopLimit
        header.source = source
        header.destination = destination
    }
}

/// A read-only view of a Hop-by-Hop, Routing or Destination Options header (RFC 8200 §4.3, §4.4,
/// §4.6): Next Header, Hdr Ext Len in 8-octet units not counting the first 8, then data.
@frozen
public struct IPv6ExtensionHeader {
    /// The bytes of this header only.
    public let bytes: UnsafeRawBufferPointer

    /// A view of the header at the start of `bytes`, or nil when truncated.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 8 else { return nil }
        let length = (Int(bytes.byte(1)) + 1) * 8
        guard length <= bytes.count else { return nil }
        self.bytes = bytes.slice(0..<length)
    }

    /// Next Header.
    @inlinable public var nextHeader: IPProtocol { IPProtocol(rawValue: bytes.byte(0)) }
    /// Hdr Ext Len: 8-octet units after the first 8.
    @inlinable public var headerExtensionLength: UInt8 { bytes.byte(1) }
    /// Length of this header in bytes.
    @inlinable public var headerLength: Int { bytes.count }
    /// The bytes after Next Header and Hdr Ext Len (options, or routing type and data).
    @inlinable public var data: UnsafeRawBufferPointer { bytes.suffix(from: 2) }
}

/// Writes a Hop-by-Hop or Destination Options header holding only padding (RFC 8200 §4.2 Pad1/PadN).
@frozen
public struct IPv6PaddingOptionsRepr: Hashable, Sendable {
    /// Next header.
    public var nextHeader: IPProtocol
    /// Total header length in bytes, a multiple of 8 (8...2048).
    public var headerLength: Int

    /// A padding-only options header.
    @inlinable public init(nextHeader: IPProtocol, headerLength: Int = 8) {
        self.nextHeader = nextHeader
        self.headerLength = headerLength
    }

    /// Writes the header at the start of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(headerLength % 8 == 0 && (8...2048).contains(headerLength) && buffer.count >= headerLength)
        buffer.setByte(nextHeader.rawValue, 0)
        buffer.setByte(UInt8(headerLength / 8 - 1), 1)
        // PadN (type 1) with length headerLength − 4 covers the remaining bytes; Pad1 is for one byte only.
        buffer.setByte(1, 2)
        buffer.setByte(UInt8(headerLength - 4), 3)
        for index in 4..<headerLength { buffer.setByte(0, index) }
    }
}

/// A read-only view of an IPv6 Fragment header (RFC 8200 §4.5).
@frozen
public struct IPv6FragmentHeader {
    /// Size of the header.
    public static let length = 8

    /// The 8 bytes of the header.
    public let bytes: UnsafeRawBufferPointer

    /// A view of the header at the start of `bytes`, or nil when shorter than 8.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length else { return nil }
        self.bytes = bytes.slice(0..<Self.length)
    }

    /// Next Header.
    @inlinable public var nextHeader: IPProtocol { IPProtocol(rawValue: bytes.byte(0)) }
    /// Fragment Offset in 8-octet units.
    @inlinable public var fragmentOffset: UInt16 { bytes.be16(2) >> 3 }
    /// The M flag: more fragments follow.
    @inlinable public var moreFragments: Bool { bytes.be16(2) & 1 != 0 }
    /// Identification.
    @inlinable public var identification: UInt32 { bytes.be32(4) }
}

/// A parsed IPv6 Fragment header.
@frozen
public struct IPv6FragmentRepr: Hashable, Sendable {
    /// Next header.
    public var nextHeader: IPProtocol
    /// Fragment Offset in 8-octet units.
    public var fragmentOffset: UInt16
    /// More fragments.
    public var moreFragments: Bool
    /// Identification.
    public var identification: UInt32

    /// A Fragment header from its fields.
    @inlinable
    public init(nextHeader: IPProtocol, fragmentOffset: UInt16, moreFragments: Bool, identification: UInt32) {
        self.nextHeader = nextHeader
        self.fragmentOffset = fragmentOffset
        self.moreFragments = moreFragments
        self.identification = identification
    }

    /// The fields of a validated header.
    @inlinable
    public static func parse(_ header: IPv6FragmentHeader) -> IPv6FragmentRepr {
        IPv6FragmentRepr(nextHeader: header.nextHeader, fragmentOffset: header.fragmentOffset,
                         moreFragments: header.moreFragments, identification: header.identification)
    }

    /// Writes the 8-byte header at the start of `buffer`; reserved fields are zero.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= IPv6FragmentHeader.length)
        buffer.setByte(nextHeader.rawValue, 0)
        buffer.setByte(0, 1)
        buffer.setBE16(fragmentOffset << 3 | (moreFragments ? 1 : 0), 2)
        buffer.setBE32(identification, 4)
    }
}
