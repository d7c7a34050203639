// InternetChecksum: RFC 1071 ones'-complement sums, a word at a time, plus pseudo-headers and RFC 1624 updates.
//
// The fast path sums 32-bit native-order loads into 64-bit accumulators, which cannot overflow for
// any buffer under 16 GiB and which LLVM vectorises. Loads are unaligned and pair bytes from the
// start of the buffer, never from an aligned address, so an odd start address cannot swap the
// bytes of the result (RFC 1071 §2(B): the sum in native order is the byte-swapped network sum).

/// RFC 1071 internet checksum arithmetic.
///
/// A *sum* here is a folded, uncomplemented 16-bit ones'-complement sum in network order; a
/// *checksum* is its complement, the value stored on the wire. Sums of buffers chain through
/// `initial` as long as every buffer but the last has an even length.
public enum InternetChecksum {
    /// The ones'-complement sum of `bytes` as big-endian 16-bit words (an odd last byte is padded
    /// with zero, RFC 1071 §4.1), added to `initial`.
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        guard let base = bytes.baseAddress else { return initial }
        let count = bytes.count
        var a0: UInt64 = 0, a1: UInt64 = 0, a2: UInt64 = 0, a3: UInt64 = 0
        var offset = 0
        while offset + 16 <= count {
            a0 &+= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            a1 &+= UInt64(base.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            a2 &+= UInt64(base.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            a3 &+= UInt64(base.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            offset += 16
        }
        while offset + 4 <= count {
            a0 &+= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += 4
        }
        if offset + 2 <= count {
            a1 &+= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The odd byte is the high half of a big-endian word: [b, 0] read in native order.
            let odd = UInt16(base.load(fromByteOffset: offset, as: UInt8.self)) << 8
            a2 &+= UInt64(UInt16(bigEndian: odd))
        }
        // Each accumulator is below 2^62, so the total cannot overflow.
        let native = fold(a0 + a1 + a2 + a3)
        return add(UInt16(bigEndian: native), initial)
    }

    /// The checksum (complemented sum) of `bytes`, starting from the partial sum `initial`.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        ~sum(bytes, initial: initial)
    }

    /// Ones'-complement addition of two 16-bit sums.
    @inlinable
    public static func add(_ a: UInt16, _ b: UInt16) -> UInt16 {
        let total = UInt32(a) + UInt32(b)
        return UInt16(truncatingIfNeeded: (total & 0xFFFF) + (total >> 16))
    }

    /// Folds a 64-bit accumulation of 16-bit words to 16 bits with end-around carry (RFC 1071 §4.1).
    @inlinable
    public static func fold(_ value: UInt64) -> UInt16 {
        var total = (value & 0xFFFF_FFFF) + (value >> 32)
        total = (total & 0xFFFF_FFFF) + (total >> 32)
        while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        return UInt16(truncatingIfNeeded: total)
    }

    /// The sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768): source, destination, zero,
    /// protocol and `length`, the upper-layer length in bytes (header plus data).
    @inlinable
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address,
                                       protocol: IPProtocol, length: Int) -> UInt16 {
        let total = UInt64(source.rawValue >> 16) + UInt64(source.rawValue & 0xFFFF)
            + UInt64(destination.rawValue >> 16) + UInt64(destination.rawValue & 0xFFFF)
            + UInt64(`protocol`.rawValue) + UInt64(UInt32(truncatingIfNeeded: length))
        return fold(total)
    }

    /// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the 32-bit
    /// upper-layer packet length (`length`, without extension headers), zeros and next header.
    @inlinable
    public static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address,
                                       protocol: IPProtocol, length: Int) -> UInt16 {
        @inline(__always) func halves(_ x: UInt64) -> UInt64 { (x >> 32) + (x & 0xFFFF_FFFF) }
        let total = halves(source.high) + halves(source.low) + halves(destination.high) + halves(destination.low)
            + UInt64(UInt32(truncatingIfNeeded: length)) + UInt64(`protocol`.rawValue)
        return fold(total)
    }

    /// The checksum after a 16-bit field covered by it changes from `old` to `new`
    /// (RFC 1624 §3, eqn. 3: HC' = ~(~HC + ~m + m')).
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        ~add(add(~checksum, ~old), new)
    }

    /// The checksum after a 32-bit field (an IPv4 address, a sequence number) changes (RFC 1624 §3).
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt32, with new: UInt32) -> UInt16 {
        let high = update(checksum, replacing: UInt16(truncatingIfNeeded: old >> 16), with: UInt16(truncatingIfNeeded: new >> 16))
        return update(high, replacing: UInt16(truncatingIfNeeded: old), with: UInt16(truncatingIfNeeded: new))
    }
}
