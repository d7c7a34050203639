// Ethernet II frames with up to two IEEE 802.1Q / 802.1ad VLAN tags: view, parsed value, emission.

/// An EtherType (IEEE 802.3 §3.2.6); open, so unknown values round-trip. Values below 0x0600 are
/// 802.3 lengths, not types.
@frozen
public struct EtherType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16

    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 (RFC 894).
    public static let ipv4 = EtherType(rawValue: 0x0800)
    /// ARP (RFC 826).
    public static let arp = EtherType(rawValue: 0x0806)
    /// Customer VLAN tag, IEEE 802.1Q-2018 §9.5 (C-TAG TPID).
    public static let vlan = EtherType(rawValue: 0x8100)
    /// Service VLAN tag, IEEE 802.1ad / 802.1Q-2018 §9.5 (S-TAG TPID), the outer tag of QinQ.
    public static let serviceVLAN = EtherType(rawValue: 0x88A8)
    /// IPv6 (RFC 2464 §3).
    public static let ipv6 = EtherType(rawValue: 0x86DD)

    /// True for the TPIDs that introduce a VLAN tag (0x8100, 0x88a8).
    @inlinable public var isVLANTag: Bool { rawValue == 0x8100 || rawValue == 0x88A8 }
}

/// One VLAN tag: its TPID and the tag control information (IEEE 802.1Q-2018 §9.6).
@frozen
public struct VLANTag: Hashable, Sendable {
    /// The tag protocol identifier, `.vlan` or `.serviceVLAN`.
    public var tpid: EtherType
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    public var tci: UInt16

    /// A tag from its TPID and raw TCI.
    @inlinable public init(tpid: EtherType = .vlan, tci: UInt16) {
        self.tpid = tpid
        self.tci = tci
    }

    /// A tag from its fields; `vlanID` is truncated to 12 bits and `priority` to 3.
    @inlinable public init(tpid: EtherType = .vlan, priority: UInt8 = 0, dropEligible: Bool = false, vlanID: UInt16) {
        self.tpid = tpid
        self.tci = UInt16(priority & 7) << 13 | (dropEligible ? 0x1000 : 0) | vlanID & 0x0FFF
    }

    /// Priority code point (PCP).
    @inlinable public var priority: UInt8 { UInt8(truncatingIfNeeded: tci >> 13) }
    /// Drop eligible indicator (DEI).
    @inlinable public var dropEligible: Bool { tci & 0x1000 != 0 }
    /// VLAN identifier (VID), 0...4095.
    @inlinable public var vlanID: UInt16 { tci & 0x0FFF }
}

/// Field offsets and sizes of an Ethernet header (IEEE 802.3 §3.1.1).
@usableFromInline
enum EthernetField {
    @usableFromInline static let destination = 0
    @usableFromInline static let source = 6
    @usableFromInline static let typeOrTPID = 12
    @usableFromInline static let untaggedLength = 14
    @usableFromInline static let tagLength = 4
    @usableFromInline static let maximumTags = 2
}

/// A read-only view of an Ethernet frame; the header length (14, 18 or 22 with tags) is found once.
@frozen
public struct EthernetFrame {
    /// The whole frame.
    public let bytes: UnsafeRawBufferPointer
    /// Bytes before the payload: 14 plus 4 per VLAN tag.
    public let headerLength: Int

    /// A view of `bytes`, or nil when they are shorter than the header they announce. At most
    /// two tags are taken; a third TPID is reported as the EtherType.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= EthernetField.untaggedLength else { return nil }
        var typeOffset = EthernetField.typeOrTPID
        var tags = 0
        while tags < EthernetField.maximumTags, EtherType(rawValue: bytes.be16(typeOffset)).isVLANTag {
            guard bytes.count >= typeOffset + EthernetField.tagLength + 2 else { return nil }
            typeOffset += EthernetField.tagLength
            tags += 1
        }
        self.bytes = bytes
        self.headerLength = typeOffset + 2
    }

    /// Destination address.
    @inlinable public var destination: MACAddress { MACAddress(loading: bytes.baseAddress! + EthernetField.destination) }
    /// Source address.
    @inlinable public var source: MACAddress { MACAddress(loading: bytes.baseAddress! + EthernetField.source) }
    /// Number of VLAN tags, 0...2.
    @inlinable public var tagCount: Int { (headerLength - EthernetField.untaggedLength) / EthernetField.tagLength }
    /// The first (outer) tag, if any.
    @inlinable public var outerTag: VLANTag? {
        tagCount >= 1 ? VLANTag(tpid: EtherType(rawValue: bytes.be16(12)), tci: bytes.be16(14)) : nil
    }
    /// The second (inner, customer) tag of a QinQ frame, if any.
    @inlinable public var innerTag: VLANTag? {
        tagCount >= 2 ? VLANTag(tpid: EtherType(rawValue: bytes.be16(16)), tci: bytes.be16(18)) : nil
    }
    /// The EtherType after all tags: what the payload is.
    @inlinable public var etherType: EtherType { EtherType(rawValue: bytes.be16(headerLength - 2)) }
    /// The bytes after the header (may include Ethernet padding).
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.suffix(from: headerLength) }
}

/// A mutable view of an Ethernet frame, for rewriting or emitting in place.
@frozen
public struct MutableEthernetFrame {
    /// The whole frame.
    public let bytes: UnsafeMutableRawBufferPointer
    /// Bytes before the payload: 14 plus 4 per VLAN tag.
    public let headerLength: Int

    /// A view of an existing frame, validated as `EthernetFrame(validating:)` does.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard let frame = EthernetFrame(validating: bytes.readOnly) else { return nil }
        self.bytes = bytes
        self.headerLength = frame.headerLength
    }

    /// A view for building a frame with `tagCount` tags in `bytes`, whose contents are not read.
    @inlinable
    public init(emptyFrame bytes: UnsafeMutableRawBufferPointer, tagCount: Int) {
        precondition((0...EthernetField.maximumTags).contains(tagCount)
                     && bytes.count >= EthernetField.untaggedLength + tagCount * EthernetField.tagLength)
        self.bytes = bytes
        self.headerLength = EthernetField.untaggedLength + tagCount * EthernetField.tagLength
    }

    /// The read-only view of the same frame.
    @inlinable public var frame: EthernetFrame { EthernetFrame(unchecked: bytes.readOnly, headerLength: headerLength) }

    /// Destination address.
    @inlinable public var destination: MACAddress {
        get { frame.destination }
        nonmutating set { newValue.store(to: bytes.baseAddress! + EthernetField.destination) }
    }
    /// Source address.
    @inlinable public var source: MACAddress {
        get { frame.source }
        nonmutating set { newValue.store(to: bytes.baseAddress! + EthernetField.source) }
    }
    /// Number of VLAN tags, 0...2.
    @inlinable public var tagCount: Int { frame.tagCount }
    /// Writes tag number `index` (0 is outer); the frame must have that many tags.
    @inlinable
    public func setTag(_ tag: VLANTag, at index: Int) {
        precondition(index < tagCount)
        bytes.setBE16(tag.tpid.rawValue, 12 + 4 * index)
        bytes.setBE16(tag.tci, 14 + 4 * index)
    }
    /// The EtherType after all tags.
    @inlinable public var etherType: EtherType {
        get { frame.etherType }
        nonmutating set { bytes.setBE16(newValue.rawValue, headerLength - 2) }
    }
    /// The bytes after the header.
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.suffix(from: headerLength) }
}

extension EthernetFrame {
    /// A view whose header length is already known; no checks.
    @inlinable
    init(unchecked bytes: UnsafeRawBufferPointer, headerLength: Int) {
        self.bytes = bytes
        self.headerLength = headerLength
    }
}

/// The parsed header of an Ethernet frame.
@frozen
public struct EthernetRepr: Hashable, Sendable {
    /// Destination.
    public var destination: MACAddress
    /// Source.
    public var source: MACAddress
    /// The first tag after the source address; nil for an untagged frame.
    public var outerTag: VLANTag?
    /// A second tag (QinQ); only meaningful with `outerTag`.
    public var innerTag: VLANTag?
    /// The EtherType after the tags.
    public var etherType: EtherType

    /// A header from its fields.
    @inlinable
    public init(destination: MACAddress, source: MACAddress, outerTag: VLANTag? = nil, innerTag: VLANTag? = nil,
                etherType: EtherType) {
        self.destination = destination
        self.source = source
        self.outerTag = outerTag
        self.innerTag = innerTag
        self.etherType = etherType
    }

    /// The header of a validated frame.
    @inlinable
    public static func parse(_ frame: EthernetFrame) -> EthernetRepr {
        EthernetRepr(destination: frame.destination, source: frame.source, outerTag: frame.outerTag,
                     innerTag: frame.innerTag, etherType: frame.etherType)
    }

    /// Bytes `emit` writes: 14, plus 4 per tag.
    @inlinable public var headerLength: Int {
        EthernetField.untaggedLength + (outerTag == nil ? 0 : 4) + (outerTag == nil || innerTag == nil ? 0 : 4)
    }

    /// Writes the header at the start of `buffer` (at least `headerLength` bytes); the payload is untouched.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        let tags = outerTag == nil ? 0 : (innerTag == nil ? 1 : 2)
        let frame = MutableEthernetFrame(emptyFrame: buffer, tagCount: tags)
        frame.destination = destination
        frame.source = source
        if let outerTag { frame.setTag(outerTag, at: 0) }
        if tags == 2, let innerTag { frame.setTag(innerTag, at: 1) }
        frame.etherType = etherType
    }
}
