// The responders allocate nothing per frame: every golden request and not-mine frame, counted by the interposed malloc.
import CMallocCounter
import Proto
import XCTest
@testable import Switch

final class ResponderAllocationTests: XCTestCase {
    func testRespondersAllocateNothing() throws {
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        let frames = ResponderGolden.pairs.map { hexBytes($0.request) } + ResponderGolden.notMine.map { hexBytes($0.frame) }
        var arp = ARPResponder(gateway: ResponderAddr.gateway()), ndp = NDPResponder(gateway: ResponderAddr.gateway())
        var echo = EchoResponder(gateway: ResponderAddr.gateway()), ra = RouterAdvertiser(gateway: ResponderAddr.gateway())
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { reply.deallocate() }
        var replies = 0
        malloc_counter_reset()
        malloc_counter_watch(malloc_counter_gettid())
        for round in 0..<1000 {
            for frame in frames {
                frame.withUnsafeBytes { input in
                    if case .reply = arp.respond(to: input, into: reply) { replies += 1 }
                    if case .reply = ndp.respond(to: input, into: reply) { replies += 1 }
                    if case .reply = echo.respond(to: input, into: reply) { replies += 1 }
                    if case .reply = ra.respond(to: input, into: reply, now: Double(round) * 4) { replies += 1 }
                }
            }
            _ = ra.unsolicited(into: reply)
            _ = ra.nextUnsolicited(after: Double(round), random: 0.5)
        }
        malloc_counter_watch(0)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations while answering \(replies) requests")
        XCTAssertEqual(replies, 1000 * ResponderGolden.pairs.count)
    }
}
