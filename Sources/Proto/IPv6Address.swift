// IPv6Address: a 128-bit address as two host-order integers, parsed from and printed as RFC 5952 text.

/// An IPv6 address; `high` holds the first 8 octets and `low` the last 8, each in host order
/// (so `fd00::1` has `high == 0xFD00_0000_0000_0000`, `low == 1`).
@frozen
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first 64 bits (the prefix of a /64).
    public var high: UInt64
    /// The last 64 bits (the interface identifier of a /64).
    public var low: UInt64

    /// An address from its two halves.
    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Reads sixteen octets in network order at `pointer`.
    @inlinable
    public init(loading pointer: UnsafeRawPointer) {
        high = UInt64(bigEndian: pointer.loadUnaligned(as: UInt64.self))
        low = UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Writes sixteen octets in network order at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: high.bigEndian, as: UInt64.self)
        pointer.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// The unspecified address `::` (RFC 4291 §2.5.2).
    public static let unspecified = IPv6Address(high: 0, low: 0)
    /// All-nodes link-local multicast `ff02::1` (RFC 4291 §2.7.1).
    public static let allNodes = IPv6Address(high: 0xFF02_0000_0000_0000, low: 1)
    /// All-routers link-local multicast `ff02::2` (RFC 4291 §2.7.1).
    public static let allRouters = IPv6Address(high: 0xFF02_0000_0000_0000, low: 2)

    /// The eight 16-bit groups, first on the wire first.
    public var groups: [UInt16] {
        (0..<8).map { i in UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> (48 - 16 * UInt64(i % 4))) }
    }

    /// The address from eight 16-bit groups.
    public init(groups g: [UInt16]) {
        precondition(g.count == 8)
        high = g[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = g[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    /// Multicast, `ff00::/8` (RFC 4291 §2.7).
    @inlinable public var isMulticast: Bool { high >> 56 == 0xFF }
    /// Link-local unicast, `fe80::/10` (RFC 4291 §2.5.6).
    @inlinable public var isLinkLocal: Bool { high >> 54 == 0xFE80 >> 6 }
    /// The unspecified address `::`.
    @inlinable public var isUnspecified: Bool { high == 0 && low == 0 }
    /// The solicited-node multicast group of this address, `ff02::1:ffXX:XXXX` (RFC 4291 §2.7.1).
    @inlinable public var solicitedNodeMulticast: IPv6Address {
        IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x0000_0001_FF00_0000 | low & 0xFF_FFFF)
    }
    /// The Ethernet multicast address for this multicast group, `33:33` + low 32 bits (RFC 2464 §7).
    @inlinable public var multicastMAC: MACAddress { MACAddress(rawValue: 0x3333_0000_0000 | low & 0xFFFF_FFFF) }

    /// Parses RFC 4291 §2.2 text (`::` compression allowed; embedded dotted quads are not); nil when malformed.
    public init?(_ text: some StringProtocol) {
        func parseGroups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for field in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        let string = Substring(text)
        let halves = string.components(separatedBy: "::")
        switch halves.count {
        case 1:
            guard let groups = parseGroups(string), groups.count == 8 else { return nil }
            self.init(groups: groups)
        case 2:
            guard let head = parseGroups(halves[0]), let tail = parseGroups(halves[1]),
                  head.count + tail.count <= 7 else { return nil }
            self.init(groups: head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail)
        default:
            return nil
        }
    }

    public static func < (a: Self, b: Self) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// RFC 5952 §4 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`.
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 1, runStart = -1
        for i in 0...8 {
            if i < 8 && g[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String { g[range].map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension Substring {
    /// Splits on a multi-character separator (no Foundation).
    fileprivate func components(separatedBy separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = self[...]
        while let range = rest.firstRange(of: separator) {
            parts.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}
