// Router Solicitation and Advertisement with their options against scapy's golden messages.
import XCTest
@testable import Proto

final class RouterAdvertisementTests: XCTestCase {
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
        return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
    }

    let solicitationBytes = bytes(RouterGolden.solicitation)
    let advertisementBytes = bytes(RouterGolden.advertisement)
    let guestLinkLocal = IPv6Address("fe80::5054:ff:fe12:3456")!
    let gatewayLinkLocal = IPv6Address("fe80::5eff:fea1:b2c3")!
    let gatewayMAC = MACAddress("02:00:5e:a1:b2:c3")!
    var solicitationPseudoHeader: UInt16 {
        InternetChecksum.pseudoHeaderSum(source: guestLinkLocal, destination: .allRouters, protocol: .icmpv6, length: 16)
    }
    var advertisementPseudoHeader: UInt16 {
        InternetChecksum.pseudoHeaderSum(source: gatewayLinkLocal, destination: .allNodes, protocol: .icmpv6, length: 88)
    }
    var advertisement: RouterAdvertisementRepr {
        RouterAdvertisementRepr(curHopLimit: 64, flags: [], routerLifetime: 600, reachableTime: 0, retransTimer: 0,
                                sourceLinkLayerAddress: gatewayMAC, mtu: 9000,
                                prefixInformation: NDPPrefixInformation(prefixLength: 64, onLink: true, autonomous: true,
                                                                        validLifetime: 86400, preferredLifetime: 14400,
                                                                        prefix: IPv6Address("fd00:1234:5678:9abc::")!),
                                recursiveDNSServer: NDPRecursiveDNSServer(lifetime: 600, address: IPv6Address("fd00:1234:5678:9abc::1")!))
    }

    func testDeconstruct() throws {
        try withSlice(advertisementBytes, 0...) { bytes in
            let message = try XCTUnwrap(ICMPv6Message(validating: bytes))
            XCTAssertEqual(message.type, .routerAdvertisement)
            XCTAssertTrue(message.isChecksumValid(pseudoHeaderSum: advertisementPseudoHeader))
            let options = Array(try XCTUnwrap(NDPOptions(validating: bytes.suffix(from: 16))))
            XCTAssertEqual(options.map(\.type), [.sourceLinkLayerAddress, .mtu, .prefixInformation, .recursiveDNSServer])
            XCTAssertEqual(options[1].mtu, 9000)
            XCTAssertNil(options[0].mtu)
            XCTAssertEqual(NDPRecursiveDNSServer.addressCount(options[3]), 1)
        }
        withSlice(solicitationBytes, 0...) { bytes in
            XCTAssertTrue(ICMPv6Message(validating: bytes)!.isChecksumValid(pseudoHeaderSum: solicitationPseudoHeader))
        }
    }

    func testParse() throws {
        try withSlice(advertisementBytes, 0...) {
            XCTAssertEqual(RouterAdvertisementRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))), advertisement)
            XCTAssertNil(RouterSolicitationRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))))
        }
        try withSlice(solicitationBytes, 0...) {
            XCTAssertEqual(RouterSolicitationRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))),
                           RouterSolicitationRepr(sourceLinkLayerAddress: MACAddress("52:54:00:12:34:56")!))
            XCTAssertNil(RouterAdvertisementRepr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))))
        }
        withSlice(solicitationBytes, 0..<8) {
            XCTAssertEqual(RouterSolicitationRepr.parse(ICMPv6Message(validating: $0)!), RouterSolicitationRepr())
        }
    }

    func testEmit() {
        XCTAssertEqual(advertisement.length, 88)
        XCTAssertEqual(emitted(count: 88) { advertisement.emit(into: $0, pseudoHeaderSum: advertisementPseudoHeader) },
                       advertisementBytes)
        let solicitation = RouterSolicitationRepr(sourceLinkLayerAddress: MACAddress("52:54:00:12:34:56")!)
        XCTAssertEqual(solicitation.length, 16)
        XCTAssertEqual(emitted(count: 16) { solicitation.emit(into: $0, pseudoHeaderSum: solicitationPseudoHeader) },
                       solicitationBytes)
        // Without options: the fixed part only, and nothing past it is written.
        let bare = RouterAdvertisementRepr(routerLifetime: 0)
        let out = emitted(count: 20) { bare.emit(into: $0, pseudoHeaderSum: 0) }
        XCTAssertEqual(Array(out[16...]), [0xA5, 0xA5, 0xA5, 0xA5])
    }

    func testInvalid() {
        for length in 8..<16 {
            withSlice(advertisementBytes, 0..<length) { XCTAssertNil(RouterAdvertisementRepr.parse(ICMPv6Message(validating: $0)!)) }
        }
        var badCode = advertisementBytes; badCode[1] = 1
        withSlice(badCode, 0...) { XCTAssertNil(RouterAdvertisementRepr.parse(ICMPv6Message(validating: $0)!)) }
        var zeroOption = advertisementBytes; zeroOption[17] = 0
        withSlice(zeroOption, 0...) { XCTAssertNil(RouterAdvertisementRepr.parse(ICMPv6Message(validating: $0)!)) }
        withSlice(advertisementBytes, 0..<84) { XCTAssertNil(RouterAdvertisementRepr.parse(ICMPv6Message(validating: $0)!)) }
        var badSolicitation = solicitationBytes; badSolicitation[9] = 0
        withSlice(badSolicitation, 0...) { XCTAssertNil(RouterSolicitationRepr.parse(ICMPv6Message(validating: $0)!)) }
        // Options of the wrong size parse as absent (RFC 8106 §5.1: RDNSS length ≥ 3 and odd).
        var evenRDNSS = advertisementBytes; evenRDNSS[65] = 2
        evenRDNSS.removeLast(8)
        withSlice(evenRDNSS, 0...) {
            let parsed = RouterAdvertisementRepr.parse(ICMPv6Message(validating: $0)!)
            XCTAssertNotNil(parsed?.prefixInformation)
            XCTAssertNil(parsed?.recursiveDNSServer)
        }
        // An MTU option of length 2 and a prefix option of length 3 are not those options.
        let odd: [UInt8] = [5, 2, 0, 0, 0, 0, 0x23, 0x28] + [UInt8](repeating: 0, count: 8) + [3, 3] + [UInt8](repeating: 0, count: 22)
        withSlice(odd, 0...) { bytes in
            let options = Array(NDPOptions(validating: bytes)!)
            XCTAssertEqual(options.count, 2)
            XCTAssertNil(options[0].mtu)
            XCTAssertNil(NDPPrefixInformation.parse(options[1]))
            XCTAssertNil(NDPRecursiveDNSServer.parse(options[1]))
        }
    }
}
