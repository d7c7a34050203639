// Neighbor Discovery (RFC 4861): options, and Neighbor Solicitation / Advertisement values on ICMPv6.

/// An NDP option type (RFC 4861 §4.6; RFC 8106 §5.1); open, so unknown values round-trip.
@frozen
public struct NDPOptionType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Source Link-Layer Address (RFC 4861 §4.6.1).
    public static let sourceLinkLayerAddress = NDPOptionType(rawValue: 1)
    /// Target Link-Layer Address (RFC 4861 §4.6.1).
    public static let targetLinkLayerAddress = NDPOptionType(rawValue: 2)
    /// Prefix Information (RFC 4861 §4.6.2).
    public static let prefixInformation = NDPOptionType(rawValue: 3)
    /// Redirected Header (RFC 4861 §4.6.3).
    public static let redirectedHeader = NDPOptionType(rawValue: 4)
    /// MTU (RFC 4861 §4.6.4).
    public static let mtu = NDPOptionType(rawValue: 5)
    /// Recursive DNS Server (RFC 8106 §5.1).
    public static let recursiveDNSServer = NDPOptionType(rawValue: 25)
}

/// One NDP option: type, length in 8-octet units (never 0), and data.
@frozen
public struct NDPOption {
    /// The whole option, type and length included.
    public let bytes: UnsafeRawBufferPointer

    /// An option over bytes already walked by `NDPOptions`.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Type.
    @inlinable public var type: NDPOptionType { NDPOptionType(rawValue: bytes.byte(0)) }
    /// Length in units of 8 octets.
    @inlinable public var length: UInt8 { bytes.byte(1) }
    /// The bytes after type and length.
    @inlinable public var data: UnsafeRawBufferPointer { bytes.suffix(from: 2) }
    /// The address of a link-layer address option of length 1 (Ethernet, RFC 2464 §6), else nil.
    @inlinable public var linkLayerAddress: MACAddress? {
        length == 1 ? MACAddress(loading: bytes.baseAddress! + 2) : nil
    }
}

/// The options that follow a Neighbor Discovery message's fixed part, walked in order.
@frozen
public struct NDPOptions: Sequence, IteratorProtocol {
    @usableFromInline var rest: UnsafeRawBufferPointer

    /// The options in `bytes`, or nil when one has length 0 or runs past the end (RFC 4861 §4.6:
    /// such a message must be silently discarded).
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            guard offset + 2 <= bytes.count else { return nil }
            let length = Int(bytes.byte(offset + 1)) * 8
            guard length > 0, offset + length <= bytes.count else { return nil }
            offset += length
        }
        rest = bytes
    }

    /// The next option.
    @inlinable
    public mutating func next() -> NDPOption? {
        guard !rest.isEmpty else { return nil }
        let length = Int(rest.byte(1)) * 8
        let option = NDPOption(unchecked: rest.slice(0..<length))
        rest = rest.suffix(from: length)
        return option
    }
}

/// Neighbor Advertisement flags (RFC 4861 §4.4): the high bits of the first body word.
@frozen
public struct NeighborAdvertisementFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// R: the sender is a router.
    public static let router = NeighborAdvertisementFlags(rawValue: 0x8000_0000)
    /// S: sent in response to a solicitation.
    public static let solicited = NeighborAdvertisementFlags(rawValue: 0x4000_0000)
    /// O: override an existing cache entry.
    public static let override = NeighborAdvertisementFlags(rawValue: 0x2000_0000)
}

/// A parsed Neighbor Solicitation (RFC 4861 §4.3) or Neighbor Advertisement (§4.4) with its
/// link-layer address option, the only option these messages carry on Ethernet.
@frozen
public struct NeighborRepr: Hashable, Sendable {
    /// `.neighborSolicitation` or `.neighborAdvertisement`.
    public var type: ICMPv6Type
    /// Flags (advertisements only; zero in solicitations).
    public var flags: NeighborAdvertisementFlags
    /// Target Address.
    public var targetAddress: IPv6Address
    /// Source (solicitation) or Target (advertisement) Link-Layer Address option.
    public var linkLayerAddress: MACAddress?

    /// Offset of the Target Address and of the options in the message.
    @usableFromInline static let targetOffset = 8
    @usableFromInline static let optionsOffset = 24

    /// A message from its fields.
    @inlinable
    public init(type: ICMPv6Type, flags: NeighborAdvertisementFlags = [], targetAddress: IPv6Address,
                linkLayerAddress: MACAddress? = nil) {
        self.type = type
        self.flags = flags
        self.targetAddress = targetAddress
        self.linkLayerAddress = linkLayerAddress
    }

    /// The fields of a Neighbor Solicitation or Advertisement; nil for other types, code ≠ 0, a
    /// message shorter than 24 bytes or malformed options (RFC 4861 §7.1.1, §7.1.2). The checksum
    /// and the hop limit of 255 are the caller's to check.
    @inlinable
    public static func parse(_ message: ICMPv6Message) -> NeighborRepr? {
        let type = message.type
        guard type == .neighborSolicitation || type == .neighborAdvertisement, message.code == 0,
              message.bytes.count >= optionsOffset,
              let options = NDPOptions(validating: message.bytes.suffix(from: optionsOffset)) else { return nil }
        let wanted: NDPOptionType = type == .neighborSolicitation ? .sourceLinkLayerAddress : .targetLinkLayerAddress
        var linkLayerAddress: MACAddress? = nil
        for option in options where option.type == wanted {
            linkLayerAddress = option.linkLayerAddress
        }
        let flags = type == .neighborAdvertisement
            ? NeighborAdvertisementFlags(rawValue: message.restOfHeader & 0xE000_0000) : []
        return NeighborRepr(type: type, flags: flags,
                            targetAddress: IPv6Address(loading: message.bytes.baseAddress! + targetOffset),
                            linkLayerAddress: linkLayerAddress)
    }

    /// Bytes `emit` writes: 24, plus 8 for the link-layer address option.
    @inlinable public var length: Int { Self.optionsOffset + (linkLayerAddress == nil ? 0 : 8) }

    /// Writes the message at the start of `buffer` (at least `length` bytes) with its checksum over
    /// `pseudoHeaderSum` (for length `length`) and the `length` bytes written.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(buffer.count >= length)
        let message = buffer.slice(0..<length)
        message.setByte(type.rawValue, ICMPField.type)
        message.setByte(0, ICMPField.code)
        message.setBE32(flags.rawValue, ICMPField.restOfHeader)
        targetAddress.store(to: message.baseAddress! + Self.targetOffset)
        if let linkLayerAddress {
            let optionType: NDPOptionType = type == .neighborSolicitation ? .sourceLinkLayerAddress : .targetLinkLayerAddress
            message.setByte(optionType.rawValue, Self.optionsOffset)
            message.setByte(1, Self.optionsOffset + 1)
            linkLayerAddress.store(to: message.baseAddress! + Self.optionsOffset + 2)
        }
        message.setBE16(0, ICMPField.checksum)
        message.setBE16(InternetChecksum.checksum(message.readOnly, initial: pseudoHeaderSum), ICMPField.checksum)
    }
}
