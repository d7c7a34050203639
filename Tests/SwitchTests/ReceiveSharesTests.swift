// ReceiveShares and BufferRing bookkeeping: a port's ring holds its share, running dry is that
// port's budget (or the pool's shortage), a refill re-arms it, and a torn-down ring gives back
// exactly the slots the kernel did not take.
import XCTest
@testable import Switch
import SwitchSys

final class ReceiveSharesTests: XCTestCase {
    func testShareRunsDryRefillsAndTearsDown() throws {
        let uring = try IOUring(queueDepth: 8)
        let entries = ReceiveShares.ringEntries
        var pool = try BufferPool(capacity: 4 * entries, initialLimit: 2 * entries)
        defer { pool.destroy() }
        var shares = ReceiveShares(maxPorts: 4)
        defer { shares.deallocate() }

        try shares.open(2, uring: uring, pool: &pool)
        XCTAssertTrue(shares.hasRing(2))
        XCTAssertFalse(shares.hasRing(1))
        XCTAssertEqual(shares.group(of: 2), 3, "a port's group is its slot + 1")
        XCTAssertEqual(shares.group(of: 1), BufferRing.sharedGroup)
        XCTAssertEqual(pool.inUse, entries, "the ring is filled when it opens")

        // The kernel takes the whole share in ring order (slots as handed out), the loop forwards
        // and releases each one; then the read ends with ENOBUFS: the port's budget, not the pool's.
        var taken: [UInt32] = []
        for slot in try takeAll(shares: &shares, pool: &pool, port: 2, count: entries) { taken.append(slot) }
        XCTAssertTrue(shares.starve(2), "a full ring run dry is the port's budget (rxBudget)")
        shares.refill(from: &pool) { _ in true }
        XCTAssertEqual(shares.readyCount, 1)
        XCTAssertEqual(shares.ready(0), 2, "its read is re-armed after the refill")
        XCTAssertEqual(pool.inUse, entries, "topped up again")

        // Half taken, then the port goes: the other half goes back to the pool.
        _ = try takeAll(shares: &shares, pool: &pool, port: 2, count: entries / 2)
        shares.refill(from: &pool) { _ in false }  // closing: left for the teardown
        XCTAssertEqual(shares.readyCount, 0)
        XCTAssertEqual(pool.inUse, entries / 2)
        XCTAssertTrue(shares.close(2, uring: uring, pool: &pool))
        XCTAssertFalse(shares.close(2, uring: uring, pool: &pool))
        XCTAssertEqual(pool.inUse, 0, "no slot leaked")

        // A ring the pool cannot fill runs dry for want of buffers (noBuffer), and is retried.
        pool.setLimit(entries / 4)
        try shares.open(2, uring: uring, pool: &pool)
        _ = try takeAll(shares: &shares, pool: &pool, port: 2, count: entries / 4)
        XCTAssertFalse(shares.starve(2), "a short ring run dry is the pool's shortage (noBuffer)")
        pool.setLimit(entries)
        shares.refill(from: &pool) { _ in true }
        XCTAssertEqual(shares.readyCount, 1)
        XCTAssertEqual(pool.inUse, entries)
        XCTAssertTrue(shares.close(2, uring: uring, pool: &pool))
        XCTAssertEqual(pool.inUse, 0)
    }

    func testOutOfOrderTakeKeepsTheRest() throws {
        let uring = try IOUring(queueDepth: 8)
        var pool = try BufferPool(capacity: 16, initialLimit: 8)
        defer { pool.destroy() }
        var ring = try BufferRing(uring: uring, group: 9, entries: 8)
        ring.refill(from: &pool)
        XCTAssertEqual(ring.count, 8)
        // Slots 0...7 went in in that order; take 5 first, as a kernel that skipped ahead would.
        ring.taken(5)
        pool.release(5)
        ring.tearDown(uring: uring, pool: &pool)
        XCTAssertEqual(pool.inUse, 0, "the seven slots still in the ring went back, not slot 5 twice")
    }

    func testThrottleLogIsForPortsOverTheirShareMostTurns() {
        var shares = ReceiveShares(maxPorts: 2)
        defer { shares.deallocate() }
        // 150 of 1000 turns: a bulk flow's bursts, not logged.
        XCTAssertNil(shares.throttled(1, budget: 150, loopTurns: 1000, now: 1))
        // 600 of 1000: logged, then not again within the interval, then again.
        XCTAssertEqual(shares.throttled(1, budget: 750, loopTurns: 1000, now: 2), 600)
        XCTAssertNil(shares.throttled(1, budget: 1350, loopTurns: 1000, now: 3))
        XCTAssertEqual(shares.throttled(1, budget: 1950, loopTurns: 1000, now: 2 + ReceiveShares.throttleLogInterval), 600)
        // Every turn of a quiet second, but only a few of them.
        XCTAssertNil(shares.throttled(0, budget: 20, loopTurns: 20, now: 30))
    }

    /// Stands in for the kernel: takes `count` slots in ring order (the pool's LIFO order is known
    /// only to the ring, so ask it by what the pool hands back) and releases them as the loop does.
    private func takeAll(shares: inout ReceiveShares, pool: inout BufferPool, port: UInt16, count: Int) throws -> [UInt32] {
        var slots: [UInt32] = []
        for _ in 0..<count {
            let slot = try XCTUnwrap(shares.peekHead(port), "the ring has a slot")
            shares.taken(slot, port: port)
            pool.release(slot)
            slots.append(slot)
        }
        return slots
    }
}
