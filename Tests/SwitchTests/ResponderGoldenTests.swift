// The responders against scapy's golden request/reply pairs, byte for byte, and frames that are no responder's.
import Proto
import XCTest
@testable import Switch

final class ResponderGoldenTests: XCTestCase {
    func testGoldenPairsByteForByte() {
        for pair in ResponderGolden.pairs {
            var responders = ResponderSet()
            let results = responders.run(hexBytes(pair.request))
            for result in results {
                if result.responder == pair.responder {
                    XCTAssertEqual(result.verdict, .reply(length: hexBytes(pair.reply).count), pair.name)
                    XCTAssertEqual(hexString(result.reply), pair.reply, pair.name)
                } else {
                    XCTAssertEqual(result.verdict, .notMine, "\(pair.name): \(result.responder)")
                }
            }
        }
    }

    func testNotMine() {
        for (name, frame) in ResponderGolden.notMine {
            var responders = ResponderSet()
            for result in responders.run(hexBytes(frame)) {
                XCTAssertEqual(result.verdict, .notMine, "\(name): \(result.responder)")
            }
            XCTAssertEqual(responders.arp.counters.malformed + responders.ndp.counters.malformed
                           + responders.echo.counters.malformed + responders.ra.counters.malformed, 0, name)
        }
    }

    func testUnsolicitedAdvertisements() {
        for (gateway, golden) in [(ResponderAddr.gateway(), ResponderGolden.raUnsolicited),
                                  (ResponderAddr.gateway(routesBeyondHost: true, mtu: 9000), ResponderGolden.raUnsolicitedShared)] {
            var advertiser = RouterAdvertiser(gateway: gateway)
            var buffer = [UInt8](repeating: 0xA5, count: 1500)
            let length = buffer.withUnsafeMutableBytes { advertiser.unsolicited(into: $0) }
            XCTAssertEqual(length, advertiser.replyLength)
            XCTAssertEqual(hexString(Array(buffer[0..<length])), golden)
            XCTAssertEqual(advertiser.counters.unsolicitedSent, 1)
            var small = [UInt8](repeating: 0, count: length - 1)
            XCTAssertEqual(small.withUnsafeMutableBytes { advertiser.unsolicited(into: $0) }, 0)
        }
    }

    func testCounters() {
        var responders = ResponderSet()
        for pair in ResponderGolden.pairs { _ = responders.run(hexBytes(pair.request), now: 1000) }
        XCTAssertEqual(responders.arp.counters.requestsAnswered, 2)
        XCTAssertEqual(responders.arp.counters.probesAnswered, 1)
        XCTAssertEqual(responders.ndp.counters.solicitationsAnswered, 3)
        XCTAssertEqual(responders.ndp.counters.duplicateAddressProbesAnswered, 1)
        XCTAssertEqual(responders.echo.counters.ipv4Answered, 2)
        XCTAssertEqual(responders.echo.counters.ipv6Answered, 2)
        XCTAssertEqual(responders.ra.counters.solicitationsAnswered, 2)
        XCTAssertEqual(responders.arp.counters.malformed + responders.ndp.counters.malformed
                       + responders.echo.counters.malformed + responders.ra.counters.malformed, 0)
        // Gratuitous ARP from a guest that claims the gateway's address: flooded, counted as a conflict.
        var claim = hexBytes(ResponderGolden.notMine.first { $0.name == "arpGratuitous" }!.frame)
        for offset in [28, 38] { claim.replaceSubrange(offset..<offset + 4, with: [192, 168, 107, 1]) }
        XCTAssertEqual(responders.verdict("arp", claim), .notMine)
        XCTAssertEqual(responders.arp.counters.conflicts, 1)
    }

    func testWithoutIPv6NothingIPv6IsMine() {
        var responders = ResponderSet(ResponderAddr.gateway(ipv6: false))
        for pair in ResponderGolden.pairs {
            let expected: Verdict = pair.responder == "arp" || pair.name.hasPrefix("echo4")
                ? .reply(length: hexBytes(pair.reply).count) : .notMine
            XCTAssertEqual(responders.verdict(pair.responder, hexBytes(pair.request)), expected, pair.name)
        }
        var buffer = [UInt8](repeating: 0, count: 1500)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { responders.ra.unsolicited(into: $0) }, 0)
        XCTAssertNil(responders.ra.advertisement)
    }

    func testEchoOnlyWhenIsolated() {
        var responders = ResponderSet(isolated: false)
        for pair in ResponderGolden.pairs where pair.responder == "echo" {
            XCTAssertEqual(responders.verdict("echo", hexBytes(pair.request)), .notMine, pair.name)
        }
        responders.echo.isolated = true
        let echo = ResponderGolden.pairs.first { $0.name == "echo4" }!
        XCTAssertEqual(responders.verdict("echo", hexBytes(echo.request)), .reply(length: hexBytes(echo.reply).count))
    }

    func testReplyBufferTooSmallIsDroppedAndCounted() {
        var responders = ResponderSet()
        for pair in ResponderGolden.pairs {
            let results = responders.run(hexBytes(pair.request), replyCapacity: hexBytes(pair.reply).count - 1)
            XCTAssertEqual(results.first { $0.responder == pair.responder }!.verdict, .consumed, pair.name)
        }
        XCTAssertEqual(responders.arp.counters.dropped, 3)
        XCTAssertEqual(responders.ndp.counters.dropped, 4)
        XCTAssertEqual(responders.echo.counters.dropped, 4)
        XCTAssertEqual(responders.ra.counters.dropped, 2)
    }
}
