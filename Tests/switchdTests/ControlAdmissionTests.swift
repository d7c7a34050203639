// ControlAdmissionTests: the control socket's connection accounting (per-uid caps, reserved slots) and its refusal log.
import XCTest
@testable import switchd

final class ControlAdmissionTests: XCTestCase {
    private let small = ConnectionLimits(total: 6, reserved: 2, perUID: 2, idleTimeout: 5)

    func testStandardLimitsAreTheDocumentedOnes() {
        let limits = ConnectionLimits.standard
        XCTAssertEqual(limits.total, 64)
        XCTAssertEqual(limits.reserved, 8)
        XCTAssertEqual(limits.perUID, 8)
        XCTAssertEqual(limits.unprivilegedTotal, 56)
        XCTAssertEqual(limits.idleTimeout, 5)
    }

    func testOneUnprivilegedUIDStopsAtItsCap() {
        var admission = ControlAdmission(limits: small)
        XCTAssertNil(admission.admit(uid: 1000, privileged: false))
        XCTAssertNil(admission.admit(uid: 1000, privileged: false))
        XCTAssertEqual(admission.admit(uid: 1000, privileged: false), "too many control connections for uid 1000 (limit 2)")
        XCTAssertEqual(admission.count(uid: 1000), 2)
        XCTAssertEqual(admission.total, 2, "a refusal takes no slot")
        // Another uid is not affected, and a released slot can be taken again.
        XCTAssertNil(admission.admit(uid: 1001, privileged: false))
        admission.release(uid: 1000, privileged: false)
        XCTAssertEqual(admission.count(uid: 1000), 1)
        XCTAssertNil(admission.admit(uid: 1000, privileged: false))
    }

    func testUnprivilegedUIDsTogetherLeaveTheReservedSlots() {
        var admission = ControlAdmission(limits: small)
        // Four uids could hold 8, but together they get total - reserved = 4.
        for uid: UInt32 in [1000, 1000, 1001, 1001] { XCTAssertNil(admission.admit(uid: uid, privileged: false)) }
        XCTAssertEqual(admission.admit(uid: 1002, privileged: false),
                       "too many control connections from unprivileged users (limit 4; 2 more are kept for root and controlGroup)")
        XCTAssertEqual(admission.unprivileged, 4)
        // Root (and controlGroup) get the reserved slots, and nothing beyond the total.
        XCTAssertNil(admission.admit(uid: 0, privileged: true))
        XCTAssertNil(admission.admit(uid: 1500, privileged: true))
        XCTAssertEqual(admission.admit(uid: 0, privileged: true), "too many control connections (limit 6)")
        // A privileged connection that closes gives its slot back to privileged peers only.
        admission.release(uid: 0, privileged: true)
        XCTAssertNotNil(admission.admit(uid: 1002, privileged: false))
        XCTAssertNil(admission.admit(uid: 0, privileged: true))
    }

    func testPrivilegedPeersHaveNoPerUIDCapAndCanUseEverySlot() {
        var admission = ControlAdmission(limits: small)
        for _ in 0..<6 { XCTAssertNil(admission.admit(uid: 0, privileged: true)) }
        XCTAssertEqual(admission.count(uid: 0), 6)
        // With every slot taken by privileged peers an unprivileged one is refused too.
        XCTAssertEqual(admission.admit(uid: 1000, privileged: false),
                       "too many control connections from unprivileged users (limit 4; 2 more are kept for root and controlGroup)")
    }

    func testReleaseOfWhatWasNeverTakenChangesNothing() {
        var admission = ControlAdmission(limits: small)
        admission.release(uid: 1000, privileged: false)
        XCTAssertEqual(admission.total, 0)
        XCTAssertEqual(admission.unprivileged, 0)
        for _ in 0..<2 { XCTAssertNil(admission.admit(uid: 1000, privileged: false)) }
        XCTAssertNotNil(admission.admit(uid: 1000, privileged: false))
    }

    func testRefusalLogWritesOneLineASecondPerUIDWithTheCountHeldBack() {
        var log = RefusalLog()
        let reason = "too many control connections for uid 1000 (limit 8)"
        XCTAssertEqual(log.refused(uid: 1000, pid: 42, reason: reason, now: 10.0),
                       "control socket: refused a connection from uid 1000 (pid 42): \(reason)")
        XCTAssertNil(log.refused(uid: 1000, pid: 42, reason: reason, now: 10.2))
        XCTAssertNil(log.refused(uid: 1000, pid: 43, reason: reason, now: 10.9))
        // Another uid has its own budget.
        XCTAssertNotNil(log.refused(uid: 1001, pid: 44, reason: reason, now: 10.5))
        XCTAssertEqual(log.flush(now: 10.95), [], "nothing is due before a second has passed")
        XCTAssertEqual(log.refused(uid: 1000, pid: 42, reason: reason, now: 11.0),
                       "control socket: refused a connection from uid 1000 (pid 42): \(reason) (and 2 more since the last line for this uid)")
    }

    func testRefusalLogFlushReportsWhatWasHeldBackOnce() {
        var log = RefusalLog()
        _ = log.refused(uid: 1000, pid: 42, reason: "r", now: 0)
        for t in [0.1, 0.2, 0.3] { XCTAssertNil(log.refused(uid: 1000, pid: 42, reason: "r", now: t)) }
        XCTAssertEqual(log.flush(now: 1.5), ["control socket: refused 3 more connections from uid 1000"])
        XCTAssertEqual(log.flush(now: 3), [])
        // Flushed and quiet: the next refusal is logged at once, with nothing held back.
        XCTAssertEqual(log.refused(uid: 1000, pid: 42, reason: "r", now: 3.1), "control socket: refused a connection from uid 1000 (pid 42): r")
    }
}
