// FuzzSupport: invariant checks, an input reader, exact-size buffers and checksum fix-ups for the targets.
import Proto

/// Stops the process (a libFuzzer crash with this input) when an invariant does not hold.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant: \(message())", file: file, line: line) }
}

/// Reads a fuzz input front to back: small control values first, the rest as data.
struct FuzzReader {
    var bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }
    var isEmpty: Bool { offset >= bytes.count }

    /// The next byte, 0 past the end.
    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// The next big-endian 16-bit value (0 bytes past the end).
    mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    /// The next `count` bytes (fewer at the end).
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let n = max(0, min(count, remaining))
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
    }

    /// Everything not read yet.
    mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}

/// Runs `body` with a fresh allocation of exactly `count` bytes filled with `fill`.
func withBuffer<R>(_ count: Int, fill: UInt8 = 0xA5, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: fill)
    return body(buffer)
}

/// Runs `body` with a fresh exact-size mutable copy of `bytes`.
func withCopy<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
    withBuffer(bytes.count) { copy in
        if bytes.count > 0 { copy.copyMemory(from: bytes) }
        return body(copy)
    }
}

/// True when two buffers hold the same bytes.
func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    a.count == b.count && a.elementsEqual(b)
}

/// Sum of all bytes, so that a read cannot be optimised away.
@inline(never)
func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Rewrites the IPv4 header checksum and the ICMP/ICMPv6/UDP/TCP checksum of an Ethernet frame
/// where the lengths allow, so that the responders' checks pass and the fuzzer reaches what lies
/// behind them (a coverage-guided fuzzer cannot guess a 16-bit checksum).
func fixChecksums(_ frame: UnsafeMutableRawBufferPointer) {
    guard let ethernet = MutableEthernetFrame(validating: frame) else { return }
    let l3 = ethernet.payload
    switch ethernet.etherType {
    case .ipv4:
        guard let ip = MutableIPv4Header(validating: l3) else { return }
        ip.headerChecksum = 0
        ip.fillChecksum()
        let header = ip.header
        guard !header.isFragment else { return }
        let payload = ip.payload
        switch header.protocol {
        case .icmp: MutableICMPv4Message(validating: payload)?.fillChecksum()
        case .udp: MutableUDPHeader(validating: payload)?.fillChecksum(pseudoHeaderSum: header.payloadPseudoHeaderSum)
        case .tcp: MutableTCPHeader(validating: payload)?.fillChecksum(pseudoHeaderSum: header.payloadPseudoHeaderSum)
        default: break
        }
    case .ipv6:
        guard let ip = MutableIPv6Header(validating: l3) else { return }
        let header = ip.header
        let payload = ip.payload
        let sum = InternetChecksum.pseudoHeaderSum(source: header.source, destination: header.destination,
                                                   protocol: header.nextHeader, length: payload.count)
        switch header.nextHeader {
        case .icmpv6: MutableICMPv6Message(validating: payload)?.fillChecksum(pseudoHeaderSum: sum)
        case .udp: MutableUDPHeader(validating: payload)?.fillChecksum(pseudoHeaderSum: sum)
        default: break
        }
    default:
        break
    }
}
