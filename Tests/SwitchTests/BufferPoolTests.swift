// BufferPool: reference counting, the limit, and reuse of freed slots.
import XCTest
@testable import Switch

final class BufferPoolTests: XCTestCase {
    func testRetainReleaseAndLimit() throws {
        var pool = try BufferPool(capacity: 8, initialLimit: 3)
        defer { pool.destroy() }
        let a = try XCTUnwrap(pool.allocate())
        let b = try XCTUnwrap(pool.allocate())
        _ = try XCTUnwrap(pool.allocate())
        XCTAssertNil(pool.allocate(), "the limit holds")
        pool.retain(a)
        pool.release(a)
        XCTAssertEqual(pool.referenceCount(a), 1)
        pool.release(a)
        XCTAssertEqual(pool.available, 1)
        XCTAssertEqual(pool.allocate(), a, "freed slots are reused first")
        pool.setLimit(5)
        XCTAssertNotNil(pool.allocate())
        XCTAssertNotNil(pool.allocate())
        XCTAssertNil(pool.allocate())
        pool.setLimit(2)  // lowering below what is in use keeps those valid but hands out none
        XCTAssertNil(pool.allocate())
        pool.release(b)
        XCTAssertEqual(pool.inUse, 4)
        // Slots do not overlap.
        XCTAssertEqual(pool.pointer(1) - pool.pointer(0), BufferPool.slotSize)
    }
}

final class PortStateTests: XCTestCase {
    func testEveryDropReasonHasACounter() {
        XCTAssertGreaterThanOrEqual(MemoryLayout.size(ofValue: PortState().drops) / 8, DropReason.allCases.count)
        var port = PortState()
        for reason in DropReason.allCases { port.count(reason, UInt64(reason.rawValue + 1)) }
        for reason in DropReason.allCases { XCTAssertEqual(port.dropCount(reason), UInt64(reason.rawValue + 1)) }
    }
}
