// RFC 4861 §6.2.4 timing of unsolicited advertisements, and §6.2.6 rate limiting of all-nodes answers.
import Proto
import XCTest
@testable import Switch

final class RouterAdvertiserTimingTests: XCTestCase {
    private func send(_ advertiser: inout RouterAdvertiser) {
        var buffer = [UInt8](repeating: 0, count: 1500)
        XCTAssertGreaterThan(buffer.withUnsafeMutableBytes { advertiser.unsolicited(into: $0) }, 0)
    }

    func testDefaults() {
        let advertiser = RouterAdvertiser(gateway: ResponderAddr.gateway())
        XCTAssertEqual(advertiser.maxInterval, 200)
        XCTAssertEqual(advertiser.minInterval, 66, accuracy: 1e-9)
        XCTAssertEqual(advertiser.advertisement?.routerLifetime, 0)
        XCTAssertEqual(RouterAdvertiser(gateway: ResponderAddr.gateway(routesBeyondHost: true)).advertisement?.routerLifetime, 600)
        XCTAssertEqual(advertiser.advertisement?.recursiveDNSServer?.lifetime, 600)
        XCTAssertEqual(RouterAdvertiser(gateway: ResponderAddr.gateway(), maxInterval: 1).maxInterval, 4)
        XCTAssertEqual(RouterAdvertiser(gateway: ResponderAddr.gateway(), maxInterval: 1e6).maxInterval, 1800)
    }

    func testFirstThreeAreAtMostSixteenSecondsApart() {
        var advertiser = RouterAdvertiser(gateway: ResponderAddr.gateway())
        var now = 50.0
        for _ in 0..<RouterAdvertiser.maxInitialAdvertisements {
            XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 0.999) - now, 16, accuracy: 1e-9)
            XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 0) - now, 16, accuracy: 1e-9)
            now += 16
            send(&advertiser)
        }
        // From the fourth on: uniform in [MinRtrAdvInterval, MaxRtrAdvInterval].
        XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 0) - now, 66, accuracy: 1e-9)
        XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 0.5) - now, 133, accuracy: 1e-9)
        XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 1) - now, 200, accuracy: 1e-9)
        // Out-of-range randomness is clamped.
        XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: -3) - now, 66, accuracy: 1e-9)
        XCTAssertEqual(advertiser.nextUnsolicited(after: now, random: 7) - now, 200, accuracy: 1e-9)
    }

    func testSmallMaxIntervalKeepsInitialIntervalsBelowSixteen() {
        var advertiser = RouterAdvertiser(gateway: ResponderAddr.gateway(), maxInterval: 10)
        XCTAssertEqual(advertiser.nextUnsolicited(after: 0, random: 1), 10, accuracy: 1e-9)
        XCTAssertEqual(advertiser.nextUnsolicited(after: 0, random: 0), 3.3, accuracy: 1e-9)
        send(&advertiser)
        XCTAssertEqual(advertiser.nextUnsolicited(after: 100, random: 0.5), 100 + 3.3 + 0.5 * 6.7, accuracy: 1e-9)
    }

    func testRandomScheduleStaysInBounds() {
        var advertiser = RouterAdvertiser(gateway: ResponderAddr.gateway())
        var generator = SystemRandomNumberGenerator()
        var now = 0.0
        for index in 0..<1000 {
            let next = advertiser.nextUnsolicited(after: now, random: Double.random(in: 0..<1, using: &generator))
            let interval = next - now
            if index < 3 { XCTAssertEqual(interval, 16, accuracy: 1e-9) }
            else { XCTAssertTrue((66...200).contains(interval), "\(interval)") }
            now = next
            send(&advertiser)
        }
    }

    func testAllNodesAnswersAreRateLimited() {
        let solicitation = hexBytes(ResponderGolden.pairs.first { $0.name == "rsUnspecified" }!.request)
        let unicast = hexBytes(ResponderGolden.pairs.first { $0.name == "rs" }!.request)
        var responders = ResponderSet()
        XCTAssertNotEqual(responders.verdict("ra", solicitation, now: 10), .consumed)
        XCTAssertEqual(responders.verdict("ra", solicitation, now: 11), .consumed)
        XCTAssertEqual(responders.verdict("ra", solicitation, now: 12.99), .consumed)
        // Unicast answers are not limited.
        XCTAssertNotEqual(responders.verdict("ra", unicast, now: 12.99), .consumed)
        XCTAssertNotEqual(responders.verdict("ra", solicitation, now: 13), .consumed)
        XCTAssertEqual(responders.ra.counters.rateLimited, 2)
        XCTAssertEqual(responders.ra.counters.solicitationsAnswered, 3)
    }
}
