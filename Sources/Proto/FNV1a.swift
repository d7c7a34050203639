// FNV1a: the 64-bit FNV-1a hash, for values that must be the same in every run (unlike `Hasher`).
//
// Stable MACs, the ULA prefix, DHCP address picks and the unix peer table hash with it; changing the
// constants or the byte order would change every derived address, so both are fixed here.
// Constants: the 64-bit offset basis and prime of Fowler, Noll and Vo (http://www.isthe.com/chongo/tech/comp/fnv/).

/// A running FNV-1a (64-bit) hash: start with `init()`, feed bytes in order, read `value`.
@frozen
public struct FNV1a {
    /// The 64-bit offset basis.
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The 64-bit FNV prime.
    public static let prime: UInt64 = 0x100_0000_01b3

    /// The hash of the bytes fed so far.
    public var value: UInt64

    /// An empty hash (the offset basis).
    @inlinable
    public init() { value = Self.offsetBasis }

    /// Feeds one byte: xor, then multiply (the "1a" order).
    @inlinable
    public mutating func combine(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* Self.prime }

    /// Feeds `bytes` in order.
    @inlinable
    public mutating func combine<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes { combine(byte) }
    }

    /// The hash of `bytes`.
    @inlinable
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash = FNV1a()
        hash.combine(contentsOf: bytes)
        return hash.value
    }
}
