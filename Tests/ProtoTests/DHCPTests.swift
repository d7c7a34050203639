// DHCPMessage: parse and emit against scapy's golden DHCP frames (make_dhcp_golden.py), and what parse rejects.
import TestSupport
import XCTest
@testable import Proto

final class DHCPTests: XCTestCase {
    static let gateway = IPv4Address(192, 168, 107, 1)
    static let leased = IPv4Address(192, 168, 107, 50)
    static let clientID: [UInt8] = [0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

    /// The DHCP message (UDP payload) of a golden frame, through our own Ethernet/IPv4/UDP views.
    static func dhcpPayload(_ frame: [UInt8]) -> [UInt8] {
        frame.withUnsafeBytes { bytes in
            let ethernet = EthernetFrame(validating: bytes)!
            let ip = IPv4Header(validating: ethernet.payload)!
            return Array(UDPHeader(validating: ip.payload)!.payload)
        }
    }

    static func parse(_ payload: [UInt8]) -> DHCPMessage? {
        payload.withUnsafeBytes { DHCPMessage.parse($0) }
    }

    func testDeconstructRequest() throws {
        let message = try XCTUnwrap(Self.parse(Self.dhcpPayload(DHCPGolden.discoverRequest)))
        XCTAssertEqual(message.op, .request)
        XCTAssertEqual(message.htype, 1)
        XCTAssertEqual(message.hlen, 6)
        XCTAssertEqual(message.xid, 0x1234_ABCD)
        XCTAssertEqual(message.secs, 3)
        XCTAssertTrue(message.broadcast)
        XCTAssertEqual(message.flags, 0x8000)
        XCTAssertEqual(message.ciaddr, IPv4Address(rawValue: 0))
        XCTAssertEqual(message.clientMAC, Addr.b)
        XCTAssertEqual(message.chaddr, Addr.b.octets + [UInt8](repeating: 0, count: 10))
        XCTAssertEqual(message.messageType, .discover)
        XCTAssertEqual(message.requestedIPAddress, Self.leased)
        XCTAssertEqual(message.maximumMessageSize, 1500)
        XCTAssertEqual(message.parameterRequestList?.map(\.rawValue), [1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59])
        XCTAssertEqual(message.clientIdentifier, Self.clientID)
        XCTAssertEqual(message.hostName, Array("guest1".utf8))
        XCTAssertNil(message.serverIdentifier)
        XCTAssertEqual(message.options.map(\.code), [.messageType, .requestedIPAddress, .maximumMessageSize,
                                                      .parameterRequestList, .clientIdentifier, .hostName])
    }

    func testDeconstructReply() throws {
        let message = try XCTUnwrap(Self.parse(Self.dhcpPayload(DHCPGolden.discoverReply)))
        XCTAssertEqual(message.op, .reply)
        XCTAssertEqual(message.messageType, .offer)
        XCTAssertEqual(message.yiaddr, Self.leased)
        XCTAssertEqual(message.serverIdentifier, Self.gateway)
        XCTAssertEqual(message.leaseTime, 3600)
        XCTAssertEqual(message.renewalTime, 1800)
        XCTAssertEqual(message.rebindingTime, 3150)
        XCTAssertEqual(message.subnetMask, IPv4Address(255, 255, 255, 0))
        XCTAssertEqual(message.broadcastAddress, IPv4Address(192, 168, 107, 255))
        XCTAssertEqual(message.routers, [Self.gateway])
        XCTAssertEqual(message.domainNameServers, [Self.gateway])
        XCTAssertEqual(message.domainName, "default.internal")
        XCTAssertEqual(message.interfaceMTU, 1500)
        XCTAssertEqual(message.hostName, Array("guest1".utf8))
        XCTAssertEqual(message.clientIdentifier, Self.clientID)
        let nak = try XCTUnwrap(Self.parse(Self.dhcpPayload(DHCPGolden.requestForeignReply)))
        XCTAssertEqual(nak.messageType, .nak)
        XCTAssertEqual(nak.message, "10.0.0.5 is not on this network")
    }

    /// The OFFER written field by field, then by `emit`, equals scapy's bytes (0xa5 prefill shows gaps).
    func testEmitMatchesGolden() throws {
        let golden = Self.dhcpPayload(DHCPGolden.discoverReply)
        let offer = DHCPMessage(
            op: .reply, xid: 0x1234_ABCD, flags: 0x8000, yiaddr: Self.leased, chaddr: Addr.b.octets,
            options: [
                DHCPOption(.messageType, [DHCPMessageType.offer.rawValue]),
                DHCPOption(.serverIdentifier, address: Self.gateway),
                DHCPOption(.leaseTime, uint32: 3600), DHCPOption(.renewalTime, uint32: 1800),
                DHCPOption(.rebindingTime, uint32: 3150),
                DHCPOption(.subnetMask, address: IPv4Address(255, 255, 255, 0)),
                DHCPOption(.broadcastAddress, address: IPv4Address(192, 168, 107, 255)),
                DHCPOption(.router, address: Self.gateway), DHCPOption(.domainNameServer, address: Self.gateway),
                DHCPOption(.domainName, text: "default.internal"), DHCPOption(.hostName, text: "guest1"),
                DHCPOption(.interfaceMTU, uint16: 1500), DHCPOption(.clientIdentifier, Self.clientID),
            ])
        XCTAssertEqual(offer.emitLength, golden.count)
        let bytes = emitted(count: golden.count) { XCTAssertEqual(offer.emit(into: $0), golden.count) }
        XCTAssertEqual(bytes, golden)
        XCTAssertEqual(Self.parse(golden), offer)
    }

    /// Every golden message parses, emits and parses back to the same value; replies emit byte for byte.
    func testRoundTripEveryGolden() throws {
        let replies = [DHCPGolden.discoverReply, DHCPGolden.requestSelectingReply, DHCPGolden.requestInitRebootReply,
                       DHCPGolden.requestRenewingReply, DHCPGolden.requestRebindingReply, DHCPGolden.requestForeignReply,
                       DHCPGolden.informReply, DHCPGolden.discoverMinimalReply, DHCPGolden.discoverNoListVLANReply]
        for (name, frame) in DHCPGolden.requests.map({ ($0.name, $0.bytes) }) + replies.map({ ("reply", $0) }) {
            let payload = Self.dhcpPayload(frame)
            let message = try XCTUnwrap(Self.parse(payload), name)
            let bytes = emitted(count: message.emitLength) { message.emit(into: $0) }
            XCTAssertEqual(Self.parse(bytes), message, name)
            XCTAssertGreaterThanOrEqual(bytes.count, 300, name)
            if replies.contains(frame) { XCTAssertEqual(bytes, payload, name) }
        }
    }

    func testRejectsTruncation() throws {
        let payload = Self.dhcpPayload(DHCPGolden.discoverRequest)
        XCTAssertEqual(payload.last, 255, "scapy ends the options with End and no padding")
        for length in 0..<payload.count {
            XCTAssertNil(Self.parse(Array(payload.prefix(length))), "truncated to \(length)")
        }
        XCTAssertNotNil(Self.parse(payload))
    }

    func testRejectsBadCookieAndOptionLengths() throws {
        let payload = Self.dhcpPayload(DHCPGolden.discoverRequest)
        var badCookie = payload
        badCookie[239] ^= 1
        XCTAssertNil(Self.parse(badCookie))

        let header = Array(payload.prefix(240))
        func with(_ options: [UInt8]) -> DHCPMessage? { Self.parse(header + options) }
        XCTAssertNotNil(with([53, 1, 1, 255]))
        XCTAssertNil(with([53, 1, 1]), "no End")
        XCTAssertNil(with([53, 1, 1, 12, 10, 0x61, 255]), "host name overruns the packet")
        XCTAssertNil(with([53, 1, 1, 12]), "length octet missing")
        XCTAssertNil(with([53, 2, 1, 1, 255]), "message type of 2 octets")
        XCTAssertNil(with([53, 1, 1, 1, 3, 255, 255, 255, 255]), "subnet mask of 3 octets")
        XCTAssertNil(with([53, 1, 1, 3, 6, 1, 2, 3, 4, 5, 6, 255]), "router list not a multiple of 4")
        XCTAssertNil(with([53, 1, 1, 61, 1, 1, 255]), "client id of one octet (RFC 2132 §9.14)")
        XCTAssertNil(with([53, 1, 1, 26, 2, 0, 67, 255]), "MTU below 68")
        XCTAssertNil(with([53, 1, 1, 57, 2, 2, 63, 255]), "max message size below 576")
        XCTAssertNil(with([53, 1, 1, 55, 0, 255]), "empty parameter request list")
        XCTAssertNil(with([53, 1, 1, 50, 4, 1, 2, 3, 4, 50, 4, 5, 6, 7, 8, 255]),
                     "requested address twice concatenates to 8 octets")
        XCTAssertNotNil(with([53, 1, 1, 200, 0, 255]), "unknown options of any length are kept")
        XCTAssertNotNil(with([0, 0, 53, 1, 3, 0, 255, 0xde, 0xad]), "pad skipped, bytes after End ignored")
        XCTAssertEqual(with([53, 1, 1, 200, 3, 9, 9, 9, 255])?.option(DHCPOptionCode(rawValue: 200)), [9, 9, 9])
    }

    /// RFC 3396: repeated codes are concatenated on parse; long data is split on emit.
    func testLongOptions() throws {
        let header = Array(Self.dhcpPayload(DHCPGolden.discoverRequest).prefix(240))
        let split = try XCTUnwrap(Self.parse(header + [53, 1, 1, 12, 2, 0x61, 0x62, 61, 2, 1, 9, 12, 1, 0x63, 255]))
        XCTAssertEqual(split.hostName, Array("abc".utf8))
        XCTAssertEqual(split.options.map(\.code), [.messageType, .hostName, .clientIdentifier])

        let long = DHCPMessage(op: .reply, xid: 1, chaddr: [], options: [DHCPOption(DHCPOptionCode(rawValue: 224), Array(repeating: 7, count: 600))])
        let bytes = emitted(count: long.emitLength) { long.emit(into: $0) }
        XCTAssertEqual(bytes.count, 240 + 600 + 3 * 2 + 1)
        XCTAssertEqual(Array(bytes[240..<242]), [224, 255])
        XCTAssertEqual(Array(bytes[497..<499]), [224, 255])
        XCTAssertEqual(Array(bytes[754..<756]), [224, 90])
        XCTAssertEqual(Self.parse(bytes), long)
    }

    /// Option overload (52) is not supported: sname and file stay opaque, never read as options.
    func testOverloadIgnored() throws {
        var payload = Self.dhcpPayload(DHCPGolden.discoverMinimalRequest)
        payload[44] = 53; payload[45] = 1; payload[46] = 7     // a "message type RELEASE" in sname
        payload.removeLast()
        payload += [52, 1, 3, 255]
        let message = try XCTUnwrap(Self.parse(payload))
        XCTAssertEqual(message.messageType, .discover)
        XCTAssertEqual(message.option(.overload), [3])
        XCTAssertEqual(Array(message.sname.prefix(3)), [53, 1, 7])
    }

    func testBroadcastFlagAndClientMAC() {
        var message = DHCPMessage(op: .request, xid: 1, flags: 0x0001, chaddr: Addr.a.octets, options: [])
        XCTAssertFalse(message.broadcast)
        message.broadcast = true
        XCTAssertEqual(message.flags, 0x8001)
        message.broadcast = false
        XCTAssertEqual(message.flags, 0x0001)
        XCTAssertEqual(message.clientMAC, Addr.a)
        message.htype = 6
        XCTAssertNil(message.clientMAC)
    }

    /// Random mutations of every golden request: parse never traps, and what parses re-emits and re-parses equal.
    func testFuzzMutationsNeverCrash() {
        var random = SplitMix64(seed: 0xD4C9)
        var parsed = 0
        for (_, frame) in DHCPGolden.requests {
            let original = Self.dhcpPayload(frame)
            for _ in 0..<2000 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes.removeLast(Int.random(in: 0...min(40, bytes.count), using: &random))
                    case 2: if bytes.count > 240 { bytes[Int.random(in: 240..<bytes.count, using: &random)] = UInt8.random(in: 0...8, using: &random) }
                    default: bytes += (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                    }
                    if bytes.isEmpty { break }
                }
                if let message = Self.parse(bytes) {
                    parsed += 1
                    let again = emitted(count: message.emitLength) { message.emit(into: $0) }
                    XCTAssertEqual(Self.parse(again), message)
                }
            }
        }
        XCTAssertGreaterThan(parsed, 100)
    }
}
