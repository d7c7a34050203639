// Router Solicitation and Advertisement (RFC 4861 §4.1, §4.2) with the prefix information, MTU and
// Recursive DNS Server (RFC 8106) options: parsed values and emission, no allocation.

/// Router Advertisement flags (RFC 4861 §4.2): the octet after Cur Hop Limit.
@frozen
public struct RouterAdvertisementFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// M: addresses are available from DHCPv6 (RFC 4861 §4.2).
    public static let managed = RouterAdvertisementFlags(rawValue: 0x80)
    /// O: other configuration is available from DHCPv6 (RFC 4861 §4.2).
    public static let other = RouterAdvertisementFlags(rawValue: 0x40)
}

/// Field offsets and sizes of RS/RA messages and their options (RFC 4861 §4.1, §4.2, §4.6; RFC 8106 §5.1).
@usableFromInline
enum RouterField {
    /// RS: type, code, checksum, 4 reserved bytes, then options.
    @usableFromInline static let solicitationOptions = 8
    @usableFromInline static let curHopLimit = 4
    @usableFromInline static let flags = 5
    @usableFromInline static let routerLifetime = 6
    @usableFromInline static let reachableTime = 8
    @usableFromInline static let retransTimer = 12
    /// RA: the fixed part is 16 bytes, then options.
    @usableFromInline static let advertisementOptions = 16
    /// Prefix Information is 4 units of 8 octets (RFC 4861 §4.6.2).
    @usableFromInline static let prefixInformationLength = 32
    /// Link-layer address and MTU options are one unit (RFC 4861 §4.6.1, §4.6.4; RFC 2464 §6).
    @usableFromInline static let shortOptionLength = 8
    /// RDNSS with one address is 3 units (RFC 8106 §5.1).
    @usableFromInline static let rdnssOneAddressLength = 24
}

/// The Prefix Information option (RFC 4861 §4.6.2).
@frozen
public struct NDPPrefixInformation: Hashable, Sendable {
    /// Prefix Length: leading bits of `prefix` that are valid (0...128).
    public var prefixLength: UInt8
    /// L: the prefix is on-link.
    public var onLink: Bool
    /// A: the prefix may be used for stateless address autoconfiguration (RFC 4862 §5.5.3).
    public var autonomous: Bool
    /// Valid Lifetime in seconds (0xffffffff is infinity).
    public var validLifetime: UInt32
    /// Preferred Lifetime in seconds; no more than the valid lifetime.
    public var preferredLifetime: UInt32
    /// Prefix; bits after `prefixLength` are zero.
    public var prefix: IPv6Address

    /// Bytes `emit` writes.
    public static let length = RouterField.prefixInformationLength

    /// An option from its fields.
    @inlinable
    public init(prefixLength: UInt8, onLink: Bool, autonomous: Bool, validLifetime: UInt32, preferredLifetime: UInt32,
                prefix: IPv6Address) {
        self.prefixLength = prefixLength
        self.onLink = onLink
        self.autonomous = autonomous
        self.validLifetime = validLifetime
        self.preferredLifetime = preferredLifetime
        self.prefix = prefix
    }

    /// The fields of a Prefix Information option; nil for another type or a length other than 4.
    @inlinable
    public static func parse(_ option: NDPOption) -> NDPPrefixInformation? {
        guard option.type == .prefixInformation, option.length == 4 else { return nil }
        let bytes = option.bytes
        let flags = bytes.byte(3)
        return NDPPrefixInformation(prefixLength: bytes.byte(2), onLink: flags & 0x80 != 0, autonomous: flags & 0x40 != 0,
                                    validLifetime: bytes.be32(4), preferredLifetime: bytes.be32(8),
                                    prefix: IPv6Address(loading: bytes.baseAddress! + 16))
    }

    /// Writes the 32-byte option at the start of `buffer`; reserved fields are zero.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length)
        buffer.setByte(NDPOptionType.prefixInformation.rawValue, 0)
        buffer.setByte(4, 1)
        buffer.setByte(prefixLength, 2)
        buffer.setByte((onLink ? 0x80 : 0) | (autonomous ? 0x40 : 0), 3)
        buffer.setBE32(validLifetime, 4)
        buffer.setBE32(preferredLifetime, 8)
        buffer.setBE32(0, 12)
        prefix.store(to: buffer.baseAddress! + 16)
    }
}

/// A Recursive DNS Server option (RFC 8106 §5.1) with one server address.
@frozen
public struct NDPRecursiveDNSServer: Hashable, Sendable {
    /// Lifetime in seconds (0: stop using the servers; 0xffffffff: infinity).
    public var lifetime: UInt32
    /// The (first) server address.
    public var address: IPv6Address

    /// Bytes `emit` writes (one address).
    public static let length = RouterField.rdnssOneAddressLength

    /// An option from its fields.
    @inlinable public init(lifetime: UInt32, address: IPv6Address) {
        self.lifetime = lifetime
        self.address = address
    }

    /// Number of addresses in an RDNSS option of `length` units: (length − 1) / 2 (RFC 8106 §5.1).
    @inlinable public static func addressCount(_ option: NDPOption) -> Int { (Int(option.length) - 1) / 2 }

    /// The lifetime and first address of an RDNSS option; nil for another type or a length that is
    /// even or below 3 (RFC 8106 §5.1: such an option is invalid).
    @inlinable
    public static func parse(_ option: NDPOption) -> NDPRecursiveDNSServer? {
        guard option.type == .recursiveDNSServer, option.length >= 3, option.length & 1 == 1 else { return nil }
        return NDPRecursiveDNSServer(lifetime: option.bytes.be32(4), address: IPv6Address(loading: option.bytes.baseAddress! + 8))
    }

    /// Writes the 24-byte option at the start of `buffer`; the reserved field is zero.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length)
        buffer.setByte(NDPOptionType.recursiveDNSServer.rawValue, 0)
        buffer.setByte(3, 1)
        buffer.setBE16(0, 2)
        buffer.setBE32(lifetime, 4)
        address.store(to: buffer.baseAddress! + 8)
    }
}

extension NDPOption {
    /// The MTU of an MTU option (RFC 4861 §4.6.4), or nil for another type or a length other than 1.
    @inlinable public var mtu: UInt32? { type == .mtu && length == 1 ? bytes.be32(4) : nil }
}

/// A parsed Router Solicitation (RFC 4861 §4.1).
@frozen
public struct RouterSolicitationRepr: Hashable, Sendable {
    /// The Source Link-Layer Address option, when present.
    public var sourceLinkLayerAddress: MACAddress?

    /// Bytes `emit` writes: 8, plus 8 for the link-layer address option.
    @inlinable public var length: Int { RouterField.solicitationOptions + (sourceLinkLayerAddress == nil ? 0 : 8) }

    /// A solicitation from its fields.
    @inlinable public init(sourceLinkLayerAddress: MACAddress? = nil) { self.sourceLinkLayerAddress = sourceLinkLayerAddress }

    /// The fields of a Router Solicitation; nil for another type, code ≠ 0 or malformed options
    /// (RFC 4861 §6.1.1). The checksum, the hop limit of 255 and the rule that an unspecified
    /// source carries no link-layer option are the caller's to check.
    @inlinable
    public static func parse(_ message: ICMPv6Message) -> RouterSolicitationRepr? {
        guard message.type == .routerSolicitation, message.code == 0,
              let options = NDPOptions(validating: message.bytes.suffix(from: RouterField.solicitationOptions))
        else { return nil }
        var address: MACAddress? = nil
        for option in options where option.type == .sourceLinkLayerAddress { address = option.linkLayerAddress }
        return RouterSolicitationRepr(sourceLinkLayerAddress: address)
    }

    /// Writes the message at the start of `buffer` (at least `length` bytes) with its checksum.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(buffer.count >= length)
        let message = buffer.slice(0..<length)
        message.setByte(ICMPv6Type.routerSolicitation.rawValue, ICMPField.type)
        message.setByte(0, ICMPField.code)
        message.setBE32(0, ICMPField.restOfHeader)
        if let sourceLinkLayerAddress {
            message.setByte(NDPOptionType.sourceLinkLayerAddress.rawValue, 8)
            message.setByte(1, 9)
            sourceLinkLayerAddress.store(to: message.baseAddress! + 10)
        }
        message.setBE16(0, ICMPField.checksum)
        message.setBE16(InternetChecksum.checksum(message.readOnly, initial: pseudoHeaderSum), ICMPField.checksum)
    }
}

/// A parsed Router Advertisement (RFC 4861 §4.2) with at most one each of the options a gateway
/// sends: source link-layer address, MTU, prefix information and RDNSS. `emit` writes them in
/// that order; `parse` keeps the first of each kind and skips unknown options (RFC 4861 §4.6).
@frozen
public struct RouterAdvertisementRepr: Hashable, Sendable {
    /// Cur Hop Limit (0: unspecified).
    public var curHopLimit: UInt8
    /// M and O flags; other bits are sent as zero.
    public var flags: RouterAdvertisementFlags
    /// Router Lifetime in seconds (0: not a default router; at most 9000, RFC 4861 §6.2.1).
    public var routerLifetime: UInt16
    /// Reachable Time in milliseconds (0: unspecified).
    public var reachableTime: UInt32
    /// Retrans Timer in milliseconds (0: unspecified).
    public var retransTimer: UInt32
    /// Source Link-Layer Address option.
    public var sourceLinkLayerAddress: MACAddress?
    /// MTU option.
    public var mtu: UInt32?
    /// Prefix Information option.
    public var prefixInformation: NDPPrefixInformation?
    /// Recursive DNS Server option (RFC 8106).
    public var recursiveDNSServer: NDPRecursiveDNSServer?

    /// An advertisement from its fields.
    @inlinable
    public init(curHopLimit: UInt8 = 64, flags: RouterAdvertisementFlags = [], routerLifetime: UInt16 = 0,
                reachableTime: UInt32 = 0, retransTimer: UInt32 = 0, sourceLinkLayerAddress: MACAddress? = nil,
                mtu: UInt32? = nil, prefixInformation: NDPPrefixInformation? = nil,
                recursiveDNSServer: NDPRecursiveDNSServer? = nil) {
        self.curHopLimit = curHopLimit
        self.flags = flags
        self.routerLifetime = routerLifetime
        self.reachableTime = reachableTime
        self.retransTimer = retransTimer
        self.sourceLinkLayerAddress = sourceLinkLayerAddress
        self.mtu = mtu
        self.prefixInformation = prefixInformation
        self.recursiveDNSServer = recursiveDNSServer
    }

    /// The fields of a Router Advertisement; nil for another type, code ≠ 0, fewer than 16 bytes
    /// or malformed options (RFC 4861 §6.1.2). Checksum and hop limit are the caller's to check.
    @inlinable
    public static func parse(_ message: ICMPv6Message) -> RouterAdvertisementRepr? {
        let bytes = message.bytes
        guard message.type == .routerAdvertisement, message.code == 0, bytes.count >= RouterField.advertisementOptions,
              let options = NDPOptions(validating: bytes.suffix(from: RouterField.advertisementOptions)) else { return nil }
        var repr = RouterAdvertisementRepr(curHopLimit: bytes.byte(RouterField.curHopLimit),
                                           flags: RouterAdvertisementFlags(rawValue: bytes.byte(RouterField.flags) & 0xC0),
                                           routerLifetime: bytes.be16(RouterField.routerLifetime),
                                           reachableTime: bytes.be32(RouterField.reachableTime),
                                           retransTimer: bytes.be32(RouterField.retransTimer))
        for option in options {
            switch option.type {
            case .sourceLinkLayerAddress where repr.sourceLinkLayerAddress == nil:
                repr.sourceLinkLayerAddress = option.linkLayerAddress
            case .mtu where repr.mtu == nil:
                repr.mtu = option.mtu
            case .prefixInformation where repr.prefixInformation == nil:
                repr.prefixInformation = NDPPrefixInformation.parse(option)
            case .recursiveDNSServer where repr.recursiveDNSServer == nil:
                repr.recursiveDNSServer = NDPRecursiveDNSServer.parse(option)
            default:
                continue
            }
        }
        return repr
    }

    /// Bytes `emit` writes: the 16-byte fixed part and the options present.
    @inlinable public var length: Int {
        RouterField.advertisementOptions
            + (sourceLinkLayerAddress == nil ? 0 : RouterField.shortOptionLength)
            + (mtu == nil ? 0 : RouterField.shortOptionLength)
            + (prefixInformation == nil ? 0 : NDPPrefixInformation.length)
            + (recursiveDNSServer == nil ? 0 : NDPRecursiveDNSServer.length)
    }

    /// Writes the message at the start of `buffer` (at least `length` bytes) with its checksum over
    /// `pseudoHeaderSum` (for length `length`) and the bytes written.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(buffer.count >= length)
        let message = buffer.slice(0..<length)
        message.setByte(ICMPv6Type.routerAdvertisement.rawValue, ICMPField.type)
        message.setByte(0, ICMPField.code)
        message.setByte(curHopLimit, RouterField.curHopLimit)
        message.setByte(flags.rawValue & 0xC0, RouterField.flags)
        message.setBE16(routerLifetime, RouterField.routerLifetime)
        message.setBE32(reachableTime, RouterField.reachableTime)
        message.setBE32(retransTimer, RouterField.retransTimer)
        var offset = RouterField.advertisementOptions
        if let sourceLinkLayerAddress {
            message.setByte(NDPOptionType.sourceLinkLayerAddress.rawValue, offset)
            message.setByte(1, offset + 1)
            sourceLinkLayerAddress.store(to: message.baseAddress! + offset + 2)
            offset += RouterField.shortOptionLength
        }
        if let mtu {
            message.setByte(NDPOptionType.mtu.rawValue, offset)
            message.setByte(1, offset + 1)
            message.setBE16(0, offset + 2)
            message.setBE32(mtu, offset + 4)
            offset += RouterField.shortOptionLength
        }
        if let prefixInformation {
            prefixInformation.emit(into: message.suffix(from: offset))
            offset += NDPPrefixInformation.length
        }
        if let recursiveDNSServer {
            recursiveDNSServer.emit(into: message.suffix(from: offset))
        }
        message.setBE16(0, ICMPField.checksum)
        message.setBE16(InternetChecksum.checksum(message.readOnly, initial: pseudoHeaderSum), ICMPField.checksum)
    }
}
