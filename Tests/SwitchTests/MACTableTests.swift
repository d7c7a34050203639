// MACTable: learning, lookups, moves, ageing, the per-port limit and flushing.
import XCTest
import Proto
@testable import Switch

final class MACTableTests: XCTestCase {
    private func mac(_ n: UInt64) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | n) }

    func testLearnsAndLooksUp() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: 300)
        defer { table.deallocate() }
        XCTAssertEqual(table.learn(mac(1), port: 3, generation: 7, now: 10), .learned)
        XCTAssertEqual(table.learn(mac(1), port: 3, generation: 7, now: 11), .known)
        XCTAssertEqual(table.lookup(mac(1), now: 12)?.port, 3)
        XCTAssertEqual(table.lookup(mac(1), now: 12)?.generation, 7)
        XCTAssertNil(table.lookup(mac(2), now: 12))
        XCTAssertEqual(table.count, 1)
    }

    func testMoveUpdatesPortAndCounts() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: 300)
        defer { table.deallocate() }
        _ = table.learn(mac(1), port: 1, generation: 0, now: 0)
        XCTAssertEqual(table.learn(mac(1), port: 2, generation: 0, now: 1), .moved(from: 1))
        XCTAssertEqual(table.lookup(mac(1), now: 1)?.port, 2)
        XCTAssertEqual(table.count(port: 1), 0)
        XCTAssertEqual(table.count(port: 2), 1)
        // A re-created port in the same slot (new generation) is a move too.
        XCTAssertEqual(table.learn(mac(1), port: 2, generation: 1, now: 2), .moved(from: 2))
        XCTAssertEqual(table.count(port: 2), 1)
    }

    func testAgeing() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: 30)
        defer { table.deallocate() }
        _ = table.learn(mac(1), port: 1, generation: 0, now: 100)
        _ = table.learn(mac(2), port: 1, generation: 0, now: 120)
        XCTAssertNotNil(table.lookup(mac(1), now: 129))
        XCTAssertNil(table.lookup(mac(1), now: 130), "an entry past its age is not used even before the sweep")
        XCTAssertEqual(table.age(now: 135), 1)
        XCTAssertEqual(table.count, 1)
        XCTAssertEqual(table.count(port: 1), 1)
        XCTAssertNotNil(table.lookup(mac(2), now: 135))
        // Seen again refreshes the age.
        _ = table.learn(mac(2), port: 1, generation: 0, now: 149)
        XCTAssertEqual(table.age(now: 170), 0)
    }

    func testPerPortLimit() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 3, ageing: 300)
        defer { table.deallocate() }
        for i in 1...3 { XCTAssertEqual(table.learn(mac(UInt64(i)), port: 1, generation: 0, now: 0), .learned) }
        XCTAssertEqual(table.learn(mac(4), port: 1, generation: 0, now: 0), .limitReached)
        XCTAssertNil(table.lookup(mac(4), now: 0))
        XCTAssertEqual(table.learn(mac(4), port: 2, generation: 0, now: 0), .learned, "other ports are not limited")
        XCTAssertEqual(table.learn(mac(4), port: 1, generation: 0, now: 0), .limitReached, "nor can a move exceed it")
    }

    func testTableFullRefusesInsteadOfLooping() {
        var table = MACTable(capacity: 16, maxPorts: 2, limitPerPort: 1000, ageing: 300)
        defer { table.deallocate() }
        var learned = 0
        for i in 1...40 where table.learn(mac(UInt64(i)), port: 0, generation: 0, now: 0) == .learned { learned += 1 }
        XCTAssertEqual(learned, 12, "fills to three quarters")
        XCTAssertEqual(table.learn(mac(99), port: 0, generation: 0, now: 0), .tableFull)
    }

    func testFlushAndDeletionKeepProbeRunsIntact() {
        // Many entries in a small table force long probe runs; removing some must not lose the others.
        var table = MACTable(capacity: 256, maxPorts: 4, limitPerPort: 1000, ageing: 300)
        defer { table.deallocate() }
        var rng = SystemRandomNumberGenerator()
        var macs: [(MACAddress, UInt16)] = []
        for i in 0..<180 {
            let m = mac(UInt64.random(in: 1...0xFF_FFFF_FFFF, using: &rng))
            let port = UInt16(i % 3)
            if table.learn(m, port: port, generation: 0, now: 0) == .learned { macs.append((m, port)) }
        }
        table.flush(port: 1)
        XCTAssertEqual(table.count(port: 1), 0)
        for (m, port) in macs {
            if port == 1 {
                XCTAssertNil(table.lookup(m, now: 0))
            } else {
                XCTAssertEqual(table.lookup(m, now: 0)?.port, port, "\(m) lost after flush")
            }
        }
        for (m, port) in macs where port == 0 { table.forget(m) }
        for (m, port) in macs where port == 2 { XCTAssertEqual(table.lookup(m, now: 0)?.port, 2) }
        XCTAssertEqual(table.count, macs.filter { $0.1 == 2 }.count)
    }

    func testSnapshotListsLiveEntries() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: 10)
        defer { table.deallocate() }
        _ = table.learn(mac(1), port: 1, generation: 0, now: 0)
        _ = table.learn(mac(2), port: 2, generation: 0, now: 5)
        let live = table.snapshot(now: 12)
        XCTAssertEqual(live.map(\.mac), [mac(2)])
        XCTAssertEqual(live.first?.age, 7)
    }
}
