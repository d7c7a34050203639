// IPv6 fixed headers and extension header walking against scapy's golden frames.
import XCTest
@testable import Proto

final class IPv6Tests: XCTestCase {
    let hopFragRepr = IPv6Repr(source: Addr.v6a, destination: Addr.v6b, nextHeader: .hopByHop, payloadLength: 27,
                               hopLimit: 64, trafficClass: 0x20, flowLabel: 0x12345)
    let fragmentRepr = IPv6FragmentRepr(nextHeader: .udp, fragmentOffset: 0, moreFragments: false, identification: 0xDEAD_BEEF)

    func testDeconstruct() throws {
        try withSlice(Golden.ipv6HopFragUDP, 14...) { bytes in
            let header = try XCTUnwrap(IPv6Header(validating: bytes))
            XCTAssertEqual(header.version, 6)
            XCTAssertEqual(header.trafficClass, 0x20)
            XCTAssertEqual(header.flowLabel, 0x12345)
            XCTAssertEqual(header.payloadLength, 27)
            XCTAssertEqual(header.nextHeader, .hopByHop)
            XCTAssertEqual(header.hopLimit, 64)
            XCTAssertEqual(header.source, Addr.v6a)
            XCTAssertEqual(header.destination, Addr.v6b)
            XCTAssertEqual(header.payload.count, 27)
            let upper = try XCTUnwrap(header.upperLayer())
            XCTAssertEqual(upper.protocol, .udp)
            XCTAssertEqual(upper.offset, 56)
            XCTAssertEqual(upper.fragment, fragmentRepr)
            XCTAssertTrue(upper.hasUpperLayerHeader)
            let hopByHop = try XCTUnwrap(IPv6ExtensionHeader(validating: header.payload))
            XCTAssertEqual(hopByHop.nextHeader, .ipv6Fragment)
            XCTAssertEqual(hopByHop.headerExtensionLength, 0)
            XCTAssertEqual(hopByHop.headerLength, 8)
            XCTAssertEqual(Array(hopByHop.data), [1, 4, 0, 0, 0, 0])
            let fragment = try XCTUnwrap(IPv6FragmentHeader(validating: UnsafeRawBufferPointer(rebasing: header.bytes[48...])))
            XCTAssertEqual(fragment.nextHeader, .udp)
            XCTAssertEqual(fragment.fragmentOffset, 0)
            XCTAssertFalse(fragment.moreFragments)
            XCTAssertEqual(fragment.identification, 0xDEAD_BEEF)
        }
        try withSlice(Golden.ipv6DestOptTCP, 14...) { bytes in
            let upper = try XCTUnwrap(IPv6Header(validating: bytes)?.upperLayer())
            XCTAssertEqual(upper, IPv6UpperLayer(protocol: .tcp, offset: 48))
        }
        try withSlice(Golden.ipv6ChainEcho, 14...) { bytes in
            let header = try XCTUnwrap(IPv6Header(validating: bytes))
            XCTAssertEqual(header.hopLimit, 255)
            XCTAssertEqual(header.upperLayer(), IPv6UpperLayer(protocol: .icmpv6, offset: 64))
        }
        try withSlice(Golden.ndpSolicit, 14...) { bytes in
            let header = try XCTUnwrap(IPv6Header(validating: bytes))
            XCTAssertEqual(header.destination, Addr.v6a.solicitedNodeMulticast)
            XCTAssertEqual(header.destination.multicastMAC, MACAddress("33:33:ff:00:00:01"))
            XCTAssertEqual(header.upperLayer(), IPv6UpperLayer(protocol: .icmpv6, offset: 40))
        }
    }

    func testConstruct() {
        let packet = Array(Golden.ipv6HopFragUDP[14...])
        let bytes = emitted(count: packet.count, copying: Array(packet[56...]), at: 56) { buffer in
            let header = MutableIPv6Header(emptyPacket: buffer)
            header.setVersion(trafficClass: 0x20, flowLabel: 0x12345)
            header.payloadLength = 27
            header.nextHeader = .hopByHop
            header.hopLimit = 64
            header.source = Addr.v6a
            header.destination = Addr.v6b
            IPv6PaddingOptionsRepr(nextHeader: .ipv6Fragment).emit(into: header.payload)
            fragmentRepr.emit(into: UnsafeMutableRawBufferPointer(rebasing: header.payload[8...]))
        }
        XCTAssertEqual(bytes, packet)
    }

    func testParse() throws {
        try withSlice(Golden.ipv6HopFragUDP, 14...) { bytes in
            XCTAssertEqual(IPv6Repr.parse(try XCTUnwrap(IPv6Header(validating: bytes))), hopFragRepr)
            XCTAssertEqual(IPv6FragmentRepr.parse(try XCTUnwrap(IPv6FragmentHeader(validating: bytes.suffix(from: 48)))), fragmentRepr)
        }
    }

    func testEmit() {
        let packet = Array(Golden.ipv6HopFragUDP[14...])
        XCTAssertEqual(emitted(count: packet.count, copying: Array(packet[40...]), at: 40) { hopFragRepr.emit(into: $0) }, packet)
        XCTAssertEqual(emitted(count: 8) { fragmentRepr.emit(into: $0) }, Array(packet[48..<56]))
        XCTAssertEqual(emitted(count: 8) { IPv6PaddingOptionsRepr(nextHeader: .ipv6Fragment).emit(into: $0) }, Array(packet[40..<48]))
        let chain = Array(Golden.ipv6ChainEcho[14...])
        XCTAssertEqual(emitted(count: 8) { IPv6PaddingOptionsRepr(nextHeader: .icmpv6).emit(into: $0) }, Array(chain[56..<64]))
    }

    func testInvalid() {
        let packet = Array(Golden.ipv6HopFragUDP[14...])
        for length in 0..<packet.count { withSlice(packet, 0..<length) { XCTAssertNil(IPv6Header(validating: $0)) } }
        var v4 = packet; v4[0] = 0x42
        withSlice(v4, 0...) { XCTAssertNil(IPv6Header(validating: $0)) }
        // Payload Length cut short so that each extension header in turn is truncated.
        for payloadLength in 0..<16 {
            var cut = packet
            cut[5] = UInt8(payloadLength)
            withSlice(cut, 0...) { XCTAssertNil(IPv6Header(validating: $0)!.upperLayer(), "payload \(payloadLength)") }
        }
        // Hdr Ext Len pointing past the end.
        var long = packet; long[41] = 9
        withSlice(long, 0...) { XCTAssertNil(IPv6Header(validating: $0)!.upperLayer()) }
        // Hop-by-hop anywhere but first (RFC 8200 §4.3).
        var late = packet; late[48] = 0
        withSlice(late, 0...) { XCTAssertNil(IPv6Header(validating: $0)!.upperLayer()) }
    }

    func testWalkIsBounded() {
        // Eight destination options headers are walked; nine are refused.
        func chain(_ count: Int) -> [UInt8] {
            var header = Array(Golden.ipv6DestOptTCP[14..<54])
            header[6] = 60
            var extensions: [UInt8] = []
            for index in 0..<count { extensions += [index == count - 1 ? 59 : 60, 0, 1, 4, 0, 0, 0, 0] }
            header[4] = UInt8(extensions.count >> 8); header[5] = UInt8(extensions.count & 0xFF)
            return header + extensions
        }
        withSlice(chain(8), 0...) { XCTAssertEqual(IPv6Header(validating: $0)?.upperLayer(), IPv6UpperLayer(protocol: .ipv6NoNextHeader, offset: 104)) }
        withSlice(chain(9), 0...) { XCTAssertNotNil(IPv6Header(validating: $0)); XCTAssertNil(IPv6Header(validating: $0)!.upperLayer()) }
    }

    func testAuthenticationHeaderAndLaterFragment() {
        var packet = Array(Golden.ipv6DestOptTCP[14..<54])
        packet[6] = 51
        // AH with Payload Len 1 → (1 + 2) · 4 = 12 bytes, then a non-first fragment of UDP.
        let ah: [UInt8] = [44, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
        let fragment: [UInt8] = [17, 0, 0x00, 0x11, 0, 0, 0, 7]   // offset 2, M=1
        let body = ah + fragment + [UInt8](repeating: 0, count: 16)
        packet[4] = 0; packet[5] = UInt8(body.count)
        withSlice(packet + body, 0...) {
            let upper = IPv6Header(validating: $0)!.upperLayer()
            XCTAssertEqual(upper?.protocol, .udp)
            XCTAssertEqual(upper?.offset, 60)
            XCTAssertEqual(upper?.fragment, IPv6FragmentRepr(nextHeader: .udp, fragmentOffset: 2, moreFragments: true, identification: 7))
            XCTAssertEqual(upper?.hasUpperLayerHeader, false)
        }
    }

    func testAddressText() {
        XCTAssertEqual(Addr.v6a.description, "fd00:1234:5678:9abc::1")
        XCTAssertEqual(Addr.v6b.description, "fd00:1234:5678:9abc:5054:ff:fe12:3456")
        XCTAssertEqual(IPv6Address("::")?.description, "::")
        XCTAssertEqual(IPv6Address("::1"), IPv6Address(high: 0, low: 1))
        XCTAssertEqual(IPv6Address("fe80::")?.isLinkLocal, true)
        XCTAssertEqual(IPv6Address("2001:db8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")   // RFC 5952 §4.2.3
        XCTAssertEqual(IPv6Address("2001:db8:0:1:1:1:1:1")?.description, "2001:db8:0:1:1:1:1:1") // §4.2.2
        XCTAssertEqual(IPv6Address.allNodes.description, "ff02::1")
        XCTAssertTrue(IPv6Address.allNodes.isMulticast)
        for bad in ["", ":", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "g::", "1:2:3:4:5:6:7::8"] {
            XCTAssertNil(IPv6Address(bad), bad)
        }
    }
}
