// IPv4Address and IPv4Subnet: addresses as host-order integers, parsed from and printed as dotted quads.

/// An IPv4 address; `rawValue` is in host order (`10.0.0.1` is `0x0A00_0001`).
@frozen
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses a dotted quad; nil when malformed.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        rawValue = value
    }

    /// Reads four octets in network order at `pointer`.
    @inlinable
    public init(loading pointer: UnsafeRawPointer) {
        rawValue = UInt32(bigEndian: pointer.loadUnaligned(as: UInt32.self))
    }

    /// Writes four octets in network order at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: rawValue.bigEndian, as: UInt32.self)
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xFF).\(rawValue >> 8 & 0xFF).\(rawValue & 0xFF)"
    }
}

/// An IPv4 network given as address and prefix length, e.g. `192.168.109.0/24`.
public struct IPv4Subnet: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public var network: IPv4Address
    public var prefixLength: Int

    /// Parses `A.B.C.D/N`; nil when malformed or when host bits are set.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(parts[1]), (0...32).contains(length)
        else { return nil }
        self.init(network: address, prefixLength: length)
        guard address == network else { return nil }
    }

    /// The subnet containing `network` with `prefixLength` bits (host bits are cleared).
    public init(network: IPv4Address, prefixLength: Int) {
        self.prefixLength = prefixLength
        self.network = IPv4Address(rawValue: network.rawValue & Self.mask(prefixLength))
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length) }

    public var mask: IPv4Address { IPv4Address(rawValue: Self.mask(prefixLength)) }
    public var broadcast: IPv4Address { IPv4Address(rawValue: network.rawValue | ~Self.mask(prefixLength)) }
    /// First usable host address (network + 1).
    public var firstHost: IPv4Address { IPv4Address(rawValue: network.rawValue + 1) }
    /// Last usable host address (broadcast - 1).
    public var lastHost: IPv4Address { IPv4Address(rawValue: broadcast.rawValue - 1) }

    public func contains(_ address: IPv4Address) -> Bool {
        address.rawValue & Self.mask(prefixLength) == network.rawValue
    }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        contains(other.network) || other.contains(network)
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
