// Neighbor Solicitation and Advertisement against scapy's golden frames.
import XCTest
@testable import Proto

final class NDPTests: XCTestCase {
    let solicit = NeighborRepr(type: .neighborSolicitation, targetAddress: Addr.v6a, linkLayerAddress: Addr.b)
    let advert = NeighborRepr(type: .neighborAdvertisement, flags: [.router, .solicited, .override],
                              targetAddress: Addr.v6a, linkLayerAddress: Addr.a)
    var solicitPseudoHeader: UInt16 {
        InternetChecksum.pseudoHeaderSum(source: Addr.v6b, destination: Addr.v6a.solicitedNodeMulticast, protocol: .icmpv6, length: 32)
    }
    var advertPseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v6a, destination: Addr.v6b, protocol: .icmpv6, length: 32) }

    func testDeconstruct() throws {
        try withSlice(Golden.ndpSolicit, 54...) { bytes in
            let message = try XCTUnwrap(ICMPv6Message(validating: bytes))
            XCTAssertEqual(message.type, .neighborSolicitation)
            XCTAssertTrue(message.isChecksumValid(pseudoHeaderSum: solicitPseudoHeader))
            XCTAssertEqual(IPv6Address(loading: bytes.baseAddress! + 8), Addr.v6a)
            let options = try XCTUnwrap(NDPOptions(validating: bytes.suffix(from: 24)))
            let all = Array(options)
            XCTAssertEqual(all.count, 1)
            XCTAssertEqual(all.first?.type, .sourceLinkLayerAddress)
            XCTAssertEqual(all.first?.length, 1)
            XCTAssertEqual(all.first?.linkLayerAddress, Addr.b)
        }
        try withSlice(Golden.ndpAdvert, 54...) { bytes in
            let message = try XCTUnwrap(ICMPv6Message(validating: bytes))
            XCTAssertEqual(message.type, .neighborAdvertisement)
            XCTAssertEqual(message.restOfHeader, 0xE000_0000)
            XCTAssertTrue(message.isChecksumValid(pseudoHeaderSum: advertPseudoHeader))
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 32) { buffer in
            let message = MutableICMPv6Message(validating: buffer)!
            message.type = .neighborSolicitation
            message.code = 0
            message.restOfHeader = 0
            Addr.v6a.store(to: buffer.baseAddress! + 8)
            buffer[24] = NDPOptionType.sourceLinkLayerAddress.rawValue
            buffer[25] = 1
            Addr.b.store(to: buffer.baseAddress! + 26)
            message.fillChecksum(pseudoHeaderSum: solicitPseudoHeader)
        }
        XCTAssertEqual(bytes, Array(Golden.ndpSolicit[54...]))
    }

    func testParse() throws {
        try withSlice(Golden.ndpSolicit, 54...) { XCTAssertEqual(NeighborRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))), solicit) }
        try withSlice(Golden.ndpAdvert, 54...) { XCTAssertEqual(NeighborRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))), advert) }
        try withSlice(Golden.ipv6ChainEcho, 78...) { XCTAssertNil(NeighborRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0)))) }
    }

    func testEmit() {
        XCTAssertEqual(solicit.length, 32)
        XCTAssertEqual(emitted(count: 32) { solicit.emit(into: $0, pseudoHeaderSum: solicitPseudoHeader) }, Array(Golden.ndpSolicit[54...]))
        XCTAssertEqual(emitted(count: 32) { advert.emit(into: $0, pseudoHeaderSum: advertPseudoHeader) }, Array(Golden.ndpAdvert[54...]))
    }

    func testInvalid() {
        let message = Array(Golden.ndpSolicit[54...])
        for length in 8..<24 { withSlice(message, 0..<length) { XCTAssertNil(NeighborRepr.parse(ICMPv6Message(validating: $0)!)) } }
        var zeroLength = message; zeroLength[25] = 0
        withSlice(zeroLength, 0...) { XCTAssertNil(NeighborRepr.parse(ICMPv6Message(validating: $0)!), "option length 0") }
        var longOption = message; longOption[25] = 2
        withSlice(longOption, 0...) { XCTAssertNil(NeighborRepr.parse(ICMPv6Message(validating: $0)!), "option past end") }
        var badCode = message; badCode[1] = 1
        withSlice(badCode, 0...) { XCTAssertNil(NeighborRepr.parse(ICMPv6Message(validating: $0)!)) }
        // No option at all (an unspecified-source DAD probe) parses with no address.
        withSlice(message, 0..<24) { XCTAssertEqual(NeighborRepr.parse(ICMPv6Message(validating: $0)!)?.linkLayerAddress, nil) }
    }
}
