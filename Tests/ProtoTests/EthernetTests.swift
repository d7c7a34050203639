// Ethernet and VLAN tags against scapy's golden frames.
import XCTest
@testable import Proto

final class EthernetTests: XCTestCase {
    let vlanRepr = EthernetRepr(destination: Addr.b, source: Addr.a,
                                outerTag: VLANTag(tpid: .vlan, priority: 5, dropEligible: true, vlanID: 100),
                                etherType: .ipv4)
    let qinqRepr = EthernetRepr(destination: Addr.b, source: Addr.a,
                                outerTag: VLANTag(tpid: .serviceVLAN, priority: 3, vlanID: 10),
                                innerTag: VLANTag(tpid: .vlan, vlanID: 20), etherType: .ipv4)

    func testDeconstruct() throws {
        try withSlice(Golden.vlanUDP, 0...) { bytes in
            let frame = try XCTUnwrap(EthernetFrame(validating: bytes))
            XCTAssertEqual(frame.destination, Addr.b)
            XCTAssertEqual(frame.source, Addr.a)
            XCTAssertEqual(frame.tagCount, 1)
            XCTAssertEqual(frame.headerLength, 18)
            XCTAssertEqual(frame.outerTag?.tpid, .vlan)
            XCTAssertEqual(frame.outerTag?.priority, 5)
            XCTAssertEqual(frame.outerTag?.dropEligible, true)
            XCTAssertEqual(frame.outerTag?.vlanID, 100)
            XCTAssertNil(frame.innerTag)
            XCTAssertEqual(frame.etherType, .ipv4)
            XCTAssertEqual(frame.payload.count, Golden.vlanUDP.count - 18)
            XCTAssertEqual(frame.payload.first, 0x45)
        }
        try withSlice(Golden.qinqICMP, 0...) { bytes in
            let frame = try XCTUnwrap(EthernetFrame(validating: bytes))
            XCTAssertEqual(frame.headerLength, 22)
            XCTAssertEqual(frame.outerTag, VLANTag(tpid: .serviceVLAN, priority: 3, vlanID: 10))
            XCTAssertEqual(frame.innerTag, VLANTag(tpid: .vlan, vlanID: 20))
            XCTAssertEqual(frame.etherType, .ipv4)
        }
        try withSlice(Golden.arpRequest, 0...) { bytes in
            let frame = try XCTUnwrap(EthernetFrame(validating: bytes))
            XCTAssertEqual(frame.destination, .broadcast)
            XCTAssertTrue(frame.destination.isMulticast)
            XCTAssertEqual(frame.tagCount, 0)
            XCTAssertNil(frame.outerTag)
            XCTAssertEqual(frame.etherType, .arp)
            XCTAssertEqual(frame.payload.count, 28)
        }
    }

    func testConstruct() {
        let bytes = emitted(count: Golden.vlanUDP.count, copying: Array(Golden.vlanUDP[18...]), at: 18) { buffer in
            let frame = MutableEthernetFrame(emptyFrame: buffer, tagCount: 1)
            frame.destination = Addr.b
            frame.source = Addr.a
            frame.setTag(VLANTag(tci: 0xB064), at: 0)
            frame.etherType = .ipv4
            XCTAssertEqual(frame.payload.count, Golden.vlanUDP.count - 18)
        }
        XCTAssertEqual(bytes, Golden.vlanUDP)
    }

    func testParse() throws {
        try withSlice(Golden.vlanUDP, 0...) { XCTAssertEqual(EthernetRepr.parse(try XCTUnwrap(EthernetFrame(validating: $0))), vlanRepr) }
        try withSlice(Golden.qinqICMP, 0...) { XCTAssertEqual(EthernetRepr.parse(try XCTUnwrap(EthernetFrame(validating: $0))), qinqRepr) }
        try withSlice(Golden.arpReply, 0...) {
            XCTAssertEqual(EthernetRepr.parse(try XCTUnwrap(EthernetFrame(validating: $0))),
                           EthernetRepr(destination: Addr.b, source: Addr.a, etherType: .arp))
        }
    }

    func testEmit() {
        XCTAssertEqual(vlanRepr.headerLength, 18)
        XCTAssertEqual(emitted(count: Golden.vlanUDP.count, copying: Array(Golden.vlanUDP[18...]), at: 18) { vlanRepr.emit(into: $0) },
                       Golden.vlanUDP)
        XCTAssertEqual(qinqRepr.headerLength, 22)
        XCTAssertEqual(emitted(count: Golden.qinqICMP.count, copying: Array(Golden.qinqICMP[22...]), at: 22) { qinqRepr.emit(into: $0) },
                       Golden.qinqICMP)
    }

    func testRewriteInPlace() throws {
        var bytes = Golden.qinqICMP
        try bytes.withUnsafeMutableBytes { buffer in
            let frame = try XCTUnwrap(MutableEthernetFrame(validating: buffer))
            XCTAssertEqual(frame.tagCount, 2)
            frame.setTag(VLANTag(tpid: .serviceVLAN, vlanID: 11), at: 0)
            frame.source = Addr.b
        }
        withSlice(bytes, 0...) { bytes in
            let frame = EthernetFrame(validating: bytes)!
            XCTAssertEqual(frame.outerTag?.vlanID, 11)
            XCTAssertEqual(frame.innerTag?.vlanID, 20)
            XCTAssertEqual(frame.source, Addr.b)
        }
    }

    func testInvalid() {
        for length in 0..<14 { withSlice(Golden.arpRequest, 0..<length) { XCTAssertNil(EthernetFrame(validating: $0)) } }
        // A tag announced but cut short, at every length the tags claim.
        for length in 14..<18 { withSlice(Golden.vlanUDP, 0..<length) { XCTAssertNil(EthernetFrame(validating: $0)) } }
        for length in 18..<22 { withSlice(Golden.qinqICMP, 0..<length) { XCTAssertNil(EthernetFrame(validating: $0)) } }
        withSlice(Golden.vlanUDP, 0..<18) { XCTAssertEqual(EthernetFrame(validating: $0)?.payload.count, 0) }
        // Three tags: the third TPID is reported as the EtherType, not walked.
        var triple = Array(Golden.qinqICMP[0..<22])
        triple[20] = 0x81; triple[21] = 0x00
        triple += [0x00, 0x05, 0x08, 0x00]
        withSlice(triple, 0...) { XCTAssertEqual(EthernetFrame(validating: $0)?.etherType, .vlan) }
    }
}
