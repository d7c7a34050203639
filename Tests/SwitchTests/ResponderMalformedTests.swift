// Malformed requests for the gateway are consumed and counted; random mutations of the goldens never crash a responder.
import Proto
import XCTest
@testable import Switch

final class ResponderMalformedTests: XCTestCase {
    private func request(_ name: String) -> [UInt8] { hexBytes(ResponderGolden.pairs.first { $0.name == name }!.request) }

    /// Runs `frame` through all four and asserts `owner` consumes it (the others: not mine); returns the set.
    @discardableResult
    private func assertConsumed(_ frame: [UInt8], by owner: String, _ message: String,
                                file: StaticString = #filePath, line: UInt = #line) -> ResponderSet {
        var responders = ResponderSet()
        for result in responders.run(frame) {
            XCTAssertEqual(result.verdict, result.responder == owner ? .consumed : .notMine,
                           "\(message): \(result.responder)", file: file, line: line)
        }
        return responders
    }

    func testARP() {
        let good = request("arpRequest")
        for length in 14..<42 {
            XCTAssertEqual(assertConsumed(Array(good[0..<length]), by: "arp", "truncated to \(length)").arp.counters.malformed, 1)
        }
        var badLength = good; badLength[18] = 8
        XCTAssertEqual(assertConsumed(badLength, by: "arp", "hardware length 8").arp.counters.malformed, 1)
        var badProtocol = good; badProtocol[16] = 0x86; badProtocol[17] = 0xDD
        XCTAssertEqual(assertConsumed(badProtocol, by: "arp", "protocol IPv6").arp.counters.malformed, 1)
        var multicastSender = good; multicastSender[22] = 0x01
        XCTAssertEqual(assertConsumed(multicastSender, by: "arp", "multicast sender").arp.counters.dropped, 1)
        // Broken ARP to another host's MAC is not ours to judge.
        var elsewhere = Array(good[0..<30]); elsewhere[0] = 0x52
        var responders = ResponderSet()
        XCTAssertEqual(responders.verdict("arp", elsewhere), .notMine)
    }

    func testNeighborSolicitation() {
        for name in ["nsLinkLocal", "nsGlobal", "nsUnicastNoOption", "nsDuplicateAddress"] {
            let good = request(name)
            var hopLimit = good; hopLimit[21] = 254
            XCTAssertEqual(assertConsumed(hopLimit, by: "ndp", "\(name) hop limit 254").ndp.counters.malformed, 1)
            var checksum = good; checksum[56] ^= 0x40
            XCTAssertEqual(assertConsumed(checksum, by: "ndp", "\(name) checksum").ndp.counters.malformed, 1)
            var code = good; code[55] = 1; fixICMPv6Checksum(&code)
            XCTAssertEqual(assertConsumed(code, by: "ndp", "\(name) code 1").ndp.counters.malformed, 1)
            for length in 55..<good.count {
                XCTAssertEqual(assertConsumed(Array(good[0..<length]), by: "ndp", "\(name) truncated to \(length)").ndp.counters.malformed, 1)
            }
        }
        var zeroOption = request("nsLinkLocal"); zeroOption[79] = 0; fixICMPv6Checksum(&zeroOption)
        XCTAssertEqual(assertConsumed(zeroOption, by: "ndp", "option length 0").ndp.counters.malformed, 1)
        // DAD with a link-layer option, or not to the solicited-node group (RFC 4861 §7.1.1).
        var dadWithOption = request("nsLinkLocal")
        dadWithOption.replaceSubrange(22..<38, with: [UInt8](repeating: 0, count: 16)); fixICMPv6Checksum(&dadWithOption)
        XCTAssertEqual(assertConsumed(dadWithOption, by: "ndp", "DAD with option").ndp.counters.malformed, 1)
        var dadUnicast = request("nsDuplicateAddress")
        dadUnicast.replaceSubrange(0..<6, with: ResponderAddr.gatewayMAC.octets)
        dadUnicast.replaceSubrange(38..<54, with: hexBytes("fd00123456789abc0000000000000001")); fixICMPv6Checksum(&dadUnicast)
        XCTAssertEqual(assertConsumed(dadUnicast, by: "ndp", "DAD to unicast").ndp.counters.malformed, 1)
        // A solicitation for the link-local target sent to the ULA's group is not addressed right.
        var wrongGroup = request("nsLinkLocal")
        wrongGroup.replaceSubrange(38..<54, with: hexBytes("ff0200000000000000000001ff000001")); fixICMPv6Checksum(&wrongGroup)
        wrongGroup.replaceSubrange(0..<6, with: [0x33, 0x33, 0xff, 0, 0, 1])
        XCTAssertEqual(assertConsumed(wrongGroup, by: "ndp", "wrong group").ndp.counters.malformed, 1)
    }

    func testRouterSolicitation() {
        for name in ["rs", "rsUnspecified"] {
            let good = request(name)
            var hopLimit = good; hopLimit[21] = 1
            XCTAssertEqual(assertConsumed(hopLimit, by: "ra", "\(name) hop limit 1").ra.counters.malformed, 1)
            var checksum = good; checksum[57] ^= 0x01
            XCTAssertEqual(assertConsumed(checksum, by: "ra", "\(name) checksum").ra.counters.malformed, 1)
            var code = good; code[55] = 3; fixICMPv6Checksum(&code)
            XCTAssertEqual(assertConsumed(code, by: "ra", "\(name) code 3").ra.counters.malformed, 1)
            for length in 55..<good.count {
                XCTAssertEqual(assertConsumed(Array(good[0..<length]), by: "ra", "\(name) truncated to \(length)").ra.counters.malformed, 1)
            }
        }
        var unspecifiedWithOption = request("rs")
        unspecifiedWithOption.replaceSubrange(22..<38, with: [UInt8](repeating: 0, count: 16)); fixICMPv6Checksum(&unspecifiedWithOption)
        XCTAssertEqual(assertConsumed(unspecifiedWithOption, by: "ra", ":: with option").ra.counters.malformed, 1)
    }

    func testEcho() {
        let v4 = request("echo4")
        var headerChecksum = v4; headerChecksum[24] ^= 1
        XCTAssertEqual(assertConsumed(headerChecksum, by: "echo", "IPv4 header checksum").echo.counters.malformed, 1)
        var icmpChecksum = v4; icmpChecksum[36] ^= 1
        XCTAssertEqual(assertConsumed(icmpChecksum, by: "echo", "ICMP checksum").echo.counters.malformed, 1)
        for length in [34, 35, 41, v4.count - 1] {
            XCTAssertEqual(assertConsumed(Array(v4[0..<length]), by: "echo", "IPv4 truncated to \(length)").echo.counters.malformed, 1)
        }
        var fragment = v4; fragment[20] = 0x20; fragment[24] = 0; fragment[25] = 0
        fragment.withUnsafeMutableBytes { MutableIPv4Header(validating: UnsafeMutableRawBufferPointer(rebasing: $0[14...]))!.fillChecksum() }
        XCTAssertEqual(assertConsumed(fragment, by: "echo", "fragment").echo.counters.dropped, 1)
        var broadcastSource = v4; broadcastSource.replaceSubrange(26..<30, with: [192, 168, 107, 255])
        broadcastSource.withUnsafeMutableBytes { MutableIPv4Header(validating: UnsafeMutableRawBufferPointer(rebasing: $0[14...]))!.fillChecksum() }
        XCTAssertEqual(assertConsumed(broadcastSource, by: "echo", "broadcast source").echo.counters.malformed, 1)

        let v6 = request("echo6Global")
        var v6Checksum = v6; v6Checksum[56] ^= 0x10
        XCTAssertEqual(assertConsumed(v6Checksum, by: "echo", "ICMPv6 checksum").echo.counters.malformed, 1)
        // Cut before the ICMPv6 type, it cannot be told from any other IPv6 frame to the gateway.
        var responders = ResponderSet()
        XCTAssertEqual(responders.verdict("echo", Array(v6[0..<54])), .notMine)
        for length in [55, 61, v6.count - 1] {
            XCTAssertEqual(assertConsumed(Array(v6[0..<length]), by: "echo", "IPv6 truncated to \(length)").echo.counters.malformed, 1)
        }
        var multicastSource = v6; multicastSource[22] = 0xFF; fixICMPv6Checksum(&multicastSource)
        XCTAssertEqual(assertConsumed(multicastSource, by: "echo", "multicast source").echo.counters.malformed, 1)
    }

    /// Random mutations (bit flips, byte changes, truncations, extensions) of every golden frame
    /// through every responder: no crash, replies fit and are answered only to unicast-looking frames.
    func testFuzzedGoldensNeverCrash() {
        var frames = ResponderGolden.pairs.map { hexBytes($0.request) } + ResponderGolden.notMine.map { hexBytes($0.frame) }
        frames += [hexBytes(ResponderGolden.raUnsolicited)]
        var generator = FuzzRandom(seed: 0x5EED_4)
        var responders = ResponderSet()
        var replies = 0
        for iteration in 0..<40_000 {
            var frame = frames[iteration % frames.count]
            switch generator.next() % 4 {
            case 0:
                for _ in 0...(generator.next() % 4) {
                    let index = Int(generator.next() % UInt64(frame.count))
                    frame[index] ^= UInt8(1) << (generator.next() % 8)
                }
            case 1:
                let index = Int(generator.next() % UInt64(frame.count))
                frame[index] = UInt8(truncatingIfNeeded: generator.next())
            case 2:
                frame = Array(frame[0..<Int(generator.next() % UInt64(frame.count + 1))])
            default:
                frame += (0..<(generator.next() % 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                let index = 14 + Int(generator.next() % UInt64(frame.count - 14))
                frame[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            let capacity = generator.next() % 8 == 0 ? Int(generator.next() % 200) : 2048
            let results = responders.run(frame, replyCapacity: capacity, now: Double(iteration))
            XCTAssertLessThanOrEqual(results.filter { $0.verdict != .notMine }.count, 1, "claimed twice: \(hexString(frame))")
            for result in results where !result.reply.isEmpty {
                replies += 1
                XCTAssertLessThanOrEqual(result.reply.count, capacity)
                XCTAssertEqual(Array(result.reply[6..<12]), ResponderAddr.gatewayMAC.octets)
            }
        }
        XCTAssertGreaterThan(replies, 1000, "mutations that keep a request valid still get replies")
    }
}

/// SplitMix64, so the fuzz test repeats exactly.
struct FuzzRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
