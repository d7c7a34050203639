// GatewayFrames: parsing a guest's UDP/TCP to the gateway and emitting answers with valid checksums.
import Proto
import XCTest
@testable import Switch

final class GatewayFramesTests: XCTestCase {
    let gatewayMAC = MACAddress(rawValue: 0x0200_0000_0001), guestMAC = MACAddress(rawValue: 0x0200_0000_0042)

    private func frame(_ body: (UnsafeMutableRawBufferPointer) -> Int?) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xa5, count: 1600)
        let n = try XCTUnwrap(bytes.withUnsafeMutableBytes(body))
        return Array(bytes[..<n])
    }

    private func checkUDP(_ bytes: [UInt8], source: IPAddress, destination: IPAddress, line: UInt = #line) throws {
        try bytes.withUnsafeBytes { raw in
            let segment = try XCTUnwrap(GatewayFrames.segment(in: raw), line: line)
            XCTAssertEqual(segment.protocol, .udp, line: line)
            XCTAssertEqual(segment.source.address, source, line: line)
            XCTAssertEqual(segment.destination, destination, line: line)
            XCTAssertEqual(Array(segment.payload), Array("hello".utf8), line: line)
            let ethernet = try XCTUnwrap(EthernetFrame(validating: raw))
            switch (source, destination) {
            case (.v4(let s), .v4(let d)):
                let ip = try XCTUnwrap(IPv4Header(validating: ethernet.payload))
                XCTAssertTrue(ip.isChecksumValid, line: line)
                let udp = try XCTUnwrap(UDPHeader(validating: ip.payload))
                XCTAssertTrue(udp.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                    source: s, destination: d, protocol: .udp, length: ip.payload.count)), line: line)
            case (.v6(let s), .v6(let d)):
                let ip = try XCTUnwrap(IPv6Header(validating: ethernet.payload))
                let udp = try XCTUnwrap(UDPHeader(validating: ip.payload))
                XCTAssertTrue(udp.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                    source: s, destination: d, protocol: .udp, length: ip.payload.count)), line: line)
            default:
                XCTFail("mixed families", line: line)
            }
        }
    }

    func testUDPRoundTripsOverIPv4AndIPv6() throws {
        let payload = Array("hello".utf8)
        for (gateway, guest) in [(IPAddress("10.0.0.1")!, IPAddress("10.0.0.9")!),
                                 (IPAddress("fd00::1")!, IPAddress("fd00::9")!)] {
            let endpoint = GuestEndpoint(mac: guestMAC, address: guest, port: 40000)
            let bytes = try frame { out in
                payload.withUnsafeBytes { GatewayFrames.udp(from: self.gatewayMAC, gateway, port: 53, to: endpoint, payload: $0, into: out) }
            }
            try checkUDP(bytes, source: gateway, destination: guest)
        }
        // Families must match.
        let mixed = GuestEndpoint(mac: guestMAC, address: IPAddress("fd00::9")!, port: 1)
        var out = [UInt8](repeating: 0, count: 100)
        XCTAssertNil(out.withUnsafeMutableBytes { o in
            payload.withUnsafeBytes { GatewayFrames.udp(from: gatewayMAC, IPAddress("10.0.0.1")!, port: 53, to: mixed, payload: $0, into: o) }
        })
    }

    func testResetRefusesASyn() throws {
        // A SYN from the guest to the gateway's port 53, built with Proto's emitters.
        let guest = IPv4Address(10, 0, 0, 9), gateway = IPv4Address(10, 0, 0, 1)
        var syn = [UInt8](repeating: 0, count: 14 + 20 + 20)
        syn.withUnsafeMutableBytes { out in
            EthernetRepr(destination: gatewayMAC, source: guestMAC, etherType: .ipv4).emit(into: out)
            IPv4Repr(source: guest, destination: gateway, protocol: .tcp, payloadLength: 20)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[14...]))
            TCPRepr(sourcePort: 41000, destinationPort: 53, sequenceNumber: 1000, flags: [.syn], window: 1000)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[34...]),
                      pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(source: guest, destination: gateway, protocol: .tcp, length: 20))
        }
        let rst = try syn.withUnsafeBytes { raw in
            let segment = try XCTUnwrap(GatewayFrames.segment(in: raw))
            return try frame { GatewayFrames.reset(refusing: segment, from: self.gatewayMAC, into: $0) }
        }
        try rst.withUnsafeBytes { raw in
            let ip = try XCTUnwrap(IPv4Header(validating: try XCTUnwrap(EthernetFrame(validating: raw)).payload))
            XCTAssertEqual(ip.source, gateway)
            XCTAssertEqual(ip.destination, guest)
            let tcp = try XCTUnwrap(TCPHeader(validating: ip.payload))
            XCTAssertEqual(tcp.flags, [.rst, .ack])
            XCTAssertEqual(tcp.acknowledgmentNumber, 1001)
            XCTAssertEqual(tcp.sourcePort, 53)
            XCTAssertEqual(tcp.destinationPort, 41000)
            XCTAssertTrue(tcp.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                source: gateway, destination: guest, protocol: .tcp, length: ip.payload.count)))
        }
        // Anything but an opening SYN gets no reset.
        syn[14 + 20 + 13] = 0x10  // ACK
        syn.withUnsafeBytes { raw in
            let segment = GatewayFrames.segment(in: raw)!
            var out = [UInt8](repeating: 0, count: 100)
            XCTAssertNil(out.withUnsafeMutableBytes { GatewayFrames.reset(refusing: segment, from: gatewayMAC, into: $0) })
        }
    }
}
