// Helpers shared by the Proto tests: addresses used by make_golden.py and buffer scaffolding.
import XCTest
@testable import Proto

/// The addresses make_golden.py puts in its frames.
enum Addr {
    static let a = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let b = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    static let v4a = IPv4Address(192, 168, 107, 1)
    static let v4b = IPv4Address(192, 168, 107, 23)
    static let v6a = IPv6Address("fd00:1234:5678:9abc::1")!
    static let v6b = IPv6Address("fd00:1234:5678:9abc:5054:ff:fe12:3456")!
}

/// Runs `body` over `bytes[range]` as a read-only buffer.
func withSlice<R>(_ bytes: [UInt8], _ range: PartialRangeFrom<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
}

/// Runs `body` over `bytes[range]` as a read-only buffer.
func withSlice<R>(_ bytes: [UInt8], _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
}

/// A buffer of `count` bytes prefilled with 0xa5 (so an unwritten field shows), with `copy`
/// copied over it first (the payload a header is emitted in front of), after `body` wrote into it.
func emitted(count: Int, copying copy: [UInt8] = [], at copyOffset: Int = 0,
             _ body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> [UInt8] {
    var buffer = [UInt8](repeating: 0xA5, count: count)
    buffer.replaceSubrange(copyOffset..<copyOffset + copy.count, with: copy)
    try buffer.withUnsafeMutableBytes { try body($0) }
    return buffer
}

/// A small deterministic generator (SplitMix64) so random tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The reference checksum sum: big-endian byte pairs, one at a time (RFC 1071 §4.1 as written).
func referenceSum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
    var sum = UInt32(initial)
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}
