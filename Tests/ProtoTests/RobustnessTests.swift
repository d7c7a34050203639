// Every validating initialiser and parser over truncated, corrupted and random frames: nil, never a crash.
import XCTest
@testable import Proto

final class RobustnessTests: XCTestCase {
    static let frames: [[UInt8]] = [
        Golden.vlanUDP, Golden.qinqICMP, Golden.arpRequest, Golden.arpReply, Golden.icmpEchoRequest, Golden.icmpEchoReply,
        Golden.tcpSYN, Golden.tcpData, Golden.udp, Golden.ipv6HopFragUDP, Golden.ipv6DestOptTCP, Golden.ipv6ChainEcho,
        Golden.ndpSolicit, Golden.ndpAdvert,
    ]

    /// Walks a frame through every layer the way a responder would, touching every accessor.
    @discardableResult
    static func walk(_ bytes: UnsafeRawBufferPointer) -> Int {
        var touched = 0
        guard let frame = EthernetFrame(validating: bytes) else { return touched }
        touched += 1
        _ = EthernetRepr.parse(frame)
        switch frame.etherType {
        case .arp:
            if let packet = ARPPacket(validating: frame.payload) { _ = ARPRepr.parse(packet); touched += 1 }
        case .ipv4:
            guard let ip = IPv4Header(validating: frame.payload) else { return touched }
            touched += 1
            _ = IPv4Repr.parse(ip)
            _ = ip.isChecksumValid
            _ = ip.options
            touched += walkUpper(ip.protocol, ip.payload, pseudoHeaderSum: ip.payloadPseudoHeaderSum)
        case .ipv6:
            guard let ip = IPv6Header(validating: frame.payload) else { return touched }
            touched += 1
            _ = IPv6Repr.parse(ip)
            guard let upper = ip.upperLayer(), upper.hasUpperLayerHeader else { return touched }
            let payload = ip.bytes.suffix(from: upper.offset)
            let sum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                       protocol: upper.protocol, length: payload.count)
            touched += walkUpper(upper.protocol, payload, pseudoHeaderSum: sum)
        default:
            break
        }
        return touched
    }

    static func walkUpper(_ proto: IPProtocol, _ payload: UnsafeRawBufferPointer, pseudoHeaderSum: UInt16) -> Int {
        switch proto {
        case .udp:
            guard let udp = UDPHeader(validating: payload) else { return 0 }
            _ = UDPRepr.parse(udp)
            return udp.isChecksumValid(pseudoHeaderSum: pseudoHeaderSum) ? 2 : 1
        case .tcp:
            guard let tcp = TCPHeader(validating: payload) else { return 0 }
            _ = TCPRepr.parse(tcp)
            return tcp.isChecksumValid(pseudoHeaderSum: pseudoHeaderSum) ? 2 : 1
        case .icmp:
            guard let icmp = ICMPv4Message(validating: payload) else { return 0 }
            _ = ICMPv4Repr.parse(icmp)
            return icmp.isChecksumValid ? 2 : 1
        case .icmpv6:
            guard let icmp = ICMPv6Message(validating: payload) else { return 0 }
            _ = ICMPv6Repr.parse(icmp)
            _ = NeighborRepr.parse(icmp)
            return icmp.isChecksumValid(pseudoHeaderSum: pseudoHeaderSum) ? 2 : 1
        default:
            return 0
        }
    }

    /// Each golden frame walks to a valid upper-layer checksum (scapy and we agree on every layer).
    func testGoldenFramesWalkCompletely() {
        for (index, frame) in Self.frames.enumerated() {
            let touched = frame.withUnsafeBytes { Self.walk($0) }
            let expected = frame == Golden.arpRequest || frame == Golden.arpReply ? 2 : 4
            XCTAssertEqual(touched, expected, "frame \(index)")
        }
    }

    func testEveryTruncation() {
        for frame in Self.frames {
            for length in 0..<frame.count {
                // Copy so the buffer really ends where the truncation does.
                let cut = Array(frame[0..<length])
                _ = cut.withUnsafeBytes { Self.walk($0) }
            }
        }
    }

    func testEverySingleByteCorruption() {
        for frame in Self.frames {
            for index in frame.indices {
                for value in [UInt8(0x00), 0xFF, 0x0F, 0x80] {
                    var corrupt = frame
                    corrupt[index] = value
                    _ = corrupt.withUnsafeBytes { Self.walk($0) }
                }
            }
        }
    }

    func testRandomFrames() {
        var generator = SplitMix64(seed: 0xF0221)
        let etherTypes: [[UInt8]] = [[0x08, 0x00], [0x86, 0xDD], [0x08, 0x06], [0x81, 0x00], [0x88, 0xA8]]
        for _ in 0..<20000 {
            let length = Int.random(in: 0...200, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Steer most frames past the Ethernet layer, and IP versions into range.
            if length >= 14 { bytes.replaceSubrange(12..<14, with: etherTypes.randomElement(using: &generator)!) }
            if length >= 15 && Bool.random(using: &generator) { bytes[14] = bytes[13] == 0x00 ? 0x45 : 0x60 }
            _ = bytes.withUnsafeBytes { Self.walk($0) }
        }
    }
}
