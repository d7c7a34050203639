// IPv4 headers against scapy's golden frames.
import XCTest
@testable import Proto

final class IPv4Tests: XCTestCase {
    /// The IPv4 packet inside the VLAN-tagged UDP frame: DSCP 46 (EF), DF, id 0x1234.
    let vlanRepr = IPv4Repr(source: Addr.v4a, destination: Addr.v4b, protocol: .udp, payloadLength: 20,
                            timeToLive: 64, identification: 0x1234, dscp: 46, ecn: 0, dontFragment: true)
    let echoRepr = IPv4Repr(source: Addr.v4b, destination: Addr.v4a, protocol: .icmp, payloadLength: 40,
                            timeToLive: 64, identification: 0xBEEF, dontFragment: true)

    func testDeconstruct() throws {
        try withSlice(Golden.vlanUDP, 18...) { bytes in
            let header = try XCTUnwrap(IPv4Header(validating: bytes))
            XCTAssertEqual(header.version, 4)
            XCTAssertEqual(header.headerLength, 20)
            XCTAssertEqual(header.dscp, 46)
            XCTAssertEqual(header.ecn, 0)
            XCTAssertEqual(header.totalLength, 40)
            XCTAssertEqual(header.identification, 0x1234)
            XCTAssertTrue(header.dontFragment)
            XCTAssertFalse(header.moreFragments)
            XCTAssertEqual(header.fragmentOffset, 0)
            XCTAssertFalse(header.isFragment)
            XCTAssertEqual(header.timeToLive, 64)
            XCTAssertEqual(header.protocol, .udp)
            XCTAssertEqual(header.headerChecksum, 0xD06F)
            XCTAssertTrue(header.isChecksumValid)
            XCTAssertEqual(header.source, Addr.v4a)
            XCTAssertEqual(header.destination, Addr.v4b)
            XCTAssertEqual(header.options.count, 0)
            XCTAssertEqual(header.payload.count, 20)
        }
        for frame in [Golden.udp, Golden.icmpEchoRequest, Golden.icmpEchoReply, Golden.tcpSYN, Golden.tcpData] {
            try withSlice(frame, 14...) { XCTAssertTrue(try XCTUnwrap(IPv4Header(validating: $0)).isChecksumValid) }
        }
        try withSlice(Golden.qinqICMP, 22...) { XCTAssertTrue(try XCTUnwrap(IPv4Header(validating: $0)).isChecksumValid) }
    }

    func testConstruct() {
        let bytes = emitted(count: 40, copying: Array(Golden.vlanUDP[38...]), at: 20) { buffer in
            let header = MutableIPv4Header(emptyPacket: buffer)
            header.version = 4
            header.headerLength = 20
            header.dscp = 46
            header.ecn = 0
            header.totalLength = 40
            header.identification = 0x1234
            header.setFragment(dontFragment: true, moreFragments: false, offset: 0)
            header.timeToLive = 64
            header.protocol = .udp
            header.source = Addr.v4a
            header.destination = Addr.v4b
            header.fillChecksum()
        }
        XCTAssertEqual(bytes, Array(Golden.vlanUDP[18...]))
    }

    func testParse() throws {
        try withSlice(Golden.vlanUDP, 18...) { XCTAssertEqual(IPv4Repr.parse(try XCTUnwrap(IPv4Header(validating: $0))), vlanRepr) }
        try withSlice(Golden.icmpEchoRequest, 14...) { XCTAssertEqual(IPv4Repr.parse(try XCTUnwrap(IPv4Header(validating: $0))), echoRepr) }
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 40, copying: Array(Golden.vlanUDP[38...]), at: 20) { vlanRepr.emit(into: $0) },
                       Array(Golden.vlanUDP[18...]))
        XCTAssertEqual(emitted(count: 60, copying: Array(Golden.icmpEchoRequest[34...]), at: 20) { echoRepr.emit(into: $0) },
                       Array(Golden.icmpEchoRequest[14...]))
    }

    func testRewriteKeepsChecksumWithIncrementalUpdate() throws {
        var bytes = Array(Golden.icmpEchoRequest[14...])
        try bytes.withUnsafeMutableBytes { buffer in
            let header = try XCTUnwrap(MutableIPv4Header(validating: buffer))
            // Decrement TTL and update the checksum per RFC 1624, as a router would.
            let oldWord = UInt16(header.timeToLive) << 8 | UInt16(header.protocol.rawValue)
            header.timeToLive -= 1
            let newWord = UInt16(header.timeToLive) << 8 | UInt16(header.protocol.rawValue)
            header.headerChecksum = InternetChecksum.update(header.headerChecksum, replacing: oldWord, with: newWord)
            let oldSource = header.source.rawValue
            header.source = IPv4Address(10, 0, 0, 99)
            header.headerChecksum = InternetChecksum.update(header.headerChecksum, replacing: oldSource,
                                                            with: header.source.rawValue)
            XCTAssertTrue(header.header.isChecksumValid)
            let incremental = header.headerChecksum
            header.fillChecksum()
            XCTAssertEqual(header.headerChecksum, incremental)
        }
    }

    func testInvalid() {
        let packet = Array(Golden.udp[14...])
        for length in 0..<packet.count { withSlice(packet, 0..<length) { XCTAssertNil(IPv4Header(validating: $0)) } }
        func mutated(_ offset: Int, _ value: UInt8) -> [UInt8] { var p = packet; p[offset] = value; return p }
        withSlice(mutated(0, 0x65), 0...) { XCTAssertNil(IPv4Header(validating: $0), "version 6") }
        withSlice(mutated(0, 0x44), 0...) { XCTAssertNil(IPv4Header(validating: $0), "IHL 4") }
        withSlice(mutated(0, 0x4F), 0...) { XCTAssertNil(IPv4Header(validating: $0), "IHL 15 beyond total length") }
        withSlice(mutated(3, 19), 0...) { XCTAssertNil(IPv4Header(validating: $0), "total length below header") }
        withSlice(mutated(3, UInt8(packet.count + 1)), 0...) { XCTAssertNil(IPv4Header(validating: $0), "total length past end") }
        withSlice(mutated(8, 63), 0...) { XCTAssertEqual(IPv4Header(validating: $0)?.isChecksumValid, false) }
        // Ethernet padding is trimmed by Total Length.
        withSlice(packet + [0, 0, 0], 0...) { XCTAssertEqual(IPv4Header(validating: $0)?.bytes.count, packet.count) }
        // Options: IHL 6 with a 4-byte option (NOP NOP NOP EOL) is accepted and exposed.
        var withOptions = Array(packet[0..<20]) + [1, 1, 1, 0] + Array(packet[20...])
        withOptions[0] = 0x46
        withOptions[3] = UInt8(withOptions.count)
        withSlice(withOptions, 0...) {
            let header = IPv4Header(validating: $0)
            XCTAssertEqual(header?.options.count, 4)
            XCTAssertEqual(header?.payload.count, packet.count - 20)
        }
    }
}
