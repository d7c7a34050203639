// MACAddress: a 48-bit IEEE 802 address held in the low bits of a UInt64.

/// A 48-bit Ethernet address, stored big-endian in the low 48 bits of `rawValue`
/// (so `0x0200_0000_0001` is `02:00:00:00:00:01`).
@frozen
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits, first octet most significant.
    public var rawValue: UInt64

    /// The address from its 48-bit value; higher bits are discarded.
    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    /// Reads six octets at `pointer` (no alignment needed).
    @inlinable
    public init(loading pointer: UnsafeRawPointer) {
        let hi = UInt64(UInt16(bigEndian: pointer.loadUnaligned(as: UInt16.self)))
        let lo = UInt64(UInt32(bigEndian: pointer.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        self.rawValue = hi << 32 | lo
    }

    /// The address from six octets.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        self.rawValue = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24 | UInt64(b3) << 16 | UInt64(b4) << 8 | UInt64(b5)
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); nil when malformed.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var value: UInt64 = 0
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return nil }
            value = value << 8 | UInt64(octet)
        }
        self.rawValue = value
    }

    /// Writes six octets at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: UInt16(truncatingIfNeeded: rawValue >> 32).bigEndian, as: UInt16.self)
        pointer.storeBytes(of: UInt32(truncatingIfNeeded: rawValue).bigEndian, toByteOffset: 2, as: UInt32.self)
    }

    /// The six octets, first on the wire first.
    public var octets: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64($0))) } }

    /// The group bit (IEEE 802-2014 §8.2): multicast and broadcast addresses.
    @inlinable public var isMulticast: Bool { rawValue & 0x0100_0000_0000 != 0 }
    /// ff:ff:ff:ff:ff:ff.
    @inlinable public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF_FFFF }
    /// 00:00:00:00:00:00, never a valid source.
    @inlinable public var isZero: Bool { rawValue == 0 }
    /// The locally administered bit.
    @inlinable public var isLocallyAdministered: Bool { rawValue & 0x0200_0000_0000 != 0 }

    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)

    public var description: String {
        octets.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }
}
