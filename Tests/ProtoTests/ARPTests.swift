// ARP request and reply against scapy's golden frames.
import XCTest
@testable import Proto

final class ARPTests: XCTestCase {
    let request = ARPRepr(operation: .request, senderHardwareAddress: Addr.b, senderProtocolAddress: Addr.v4b,
                          targetHardwareAddress: MACAddress(rawValue: 0), targetProtocolAddress: Addr.v4a)
    let reply = ARPRepr(operation: .reply, senderHardwareAddress: Addr.a, senderProtocolAddress: Addr.v4a,
                        targetHardwareAddress: Addr.b, targetProtocolAddress: Addr.v4b)

    func testDeconstruct() throws {
        try withSlice(Golden.arpRequest, 14...) { bytes in
            let packet = try XCTUnwrap(ARPPacket(validating: bytes))
            XCTAssertEqual(packet.hardwareType, 1)
            XCTAssertEqual(packet.protocolType, .ipv4)
            XCTAssertEqual(packet.hardwareLength, 6)
            XCTAssertEqual(packet.protocolLength, 4)
            XCTAssertEqual(packet.operation, .request)
            XCTAssertEqual(packet.senderHardwareAddress, Addr.b)
            XCTAssertEqual(packet.senderProtocolAddress, Addr.v4b)
            XCTAssertTrue(packet.targetHardwareAddress.isZero)
            XCTAssertEqual(packet.targetProtocolAddress, Addr.v4a)
        }
        try withSlice(Golden.arpReply, 14...) { bytes in
            let packet = try XCTUnwrap(ARPPacket(validating: bytes))
            XCTAssertEqual(packet.operation, .reply)
            XCTAssertEqual(packet.targetHardwareAddress, Addr.b)
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 28) { buffer in
            let packet = MutableARPPacket(emptyPacket: buffer)
            packet.hardwareType = 1
            packet.protocolType = .ipv4
            packet.hardwareLength = 6
            packet.protocolLength = 4
            packet.operation = .reply
            packet.senderHardwareAddress = Addr.a
            packet.senderProtocolAddress = Addr.v4a
            packet.targetHardwareAddress = Addr.b
            packet.targetProtocolAddress = Addr.v4b
        }
        XCTAssertEqual(bytes, Array(Golden.arpReply[14...]))
    }

    func testParse() throws {
        try withSlice(Golden.arpRequest, 14...) { XCTAssertEqual(ARPRepr.parse(try XCTUnwrap(ARPPacket(validating: $0))), request) }
        try withSlice(Golden.arpReply, 14...) { XCTAssertEqual(ARPRepr.parse(try XCTUnwrap(ARPPacket(validating: $0))), reply) }
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 28) { request.emit(into: $0) }, Array(Golden.arpRequest[14...]))
        XCTAssertEqual(emitted(count: 28) { reply.emit(into: $0) }, Array(Golden.arpReply[14...]))
    }

    func testInvalid() {
        for length in 0..<28 { withSlice(Golden.arpRequest, 14..<(14 + length)) { XCTAssertNil(ARPPacket(validating: $0)) } }
        for (offset, value) in [(14, UInt8(6)), (16, 0x86), (18, 8), (19, 16)] {   // htype, ptype, hlen, plen
            var bytes = Golden.arpRequest
            bytes[offset] = value
            withSlice(bytes, 14...) { XCTAssertNil(ARPPacket(validating: $0)) }
        }
        // Ethernet padding after the 28 bytes is not part of the packet.
        withSlice(Golden.arpRequest + [UInt8](repeating: 0, count: 18), 14...) {
            XCTAssertEqual(ARPPacket(validating: $0)?.bytes.count, 28)
        }
    }
}
