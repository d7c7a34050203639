// ReceiveShares: each port that reads its own fd receives into a small buffer ring of its own,
// refilled once per loop turn, so a port that floods drops its own frames, not the others'.
//
// Design note. TAP, link and attached dgram ports receive with a multishot read, and the kernel
// fills it from a provided-buffer ring as frames arrive, before the loop sees any of them. With
// one ring for all, a port sending small frames as fast as it can took the whole ring each turn;
// the other ports' reads ended with ENOBUFS and their flows collapsed (bench/flood.sh). Here every
// such port has a ring of `ringEntries` pool slots under a buffer group of its own (its slot + 1;
// group 0 stays the shared ring of the listening dgram sockets). A port that fills its ring within
// a turn ends its own read with ENOBUFS; the loop counts that on the port (`rxBudget`), refills the
// ring at the end of the turn and re-arms the read, so each port takes at most `ringEntries`
// frames per turn: round-robin between ports, with no per-frame accounting. Its frames wait in its
// own kernel queue meanwhile (a TAP's holds 500), and the kernel drops them there when it is full.
//
// The pool's limit grows by `ringEntries` per ring (the loop does that when it opens one), so the
// rings of all ports always fit beside the send queues; a ring that cannot be registered leaves
// its port on the shared ring, as before. A ring is torn down when its port's slot is freed: its
// read has ended by then, so nothing selects from it, and the slots still in it go back to the pool.
//
// Nothing here allocates after `init`: the rings' shadow arrays are allocated when a port is added.
import SwitchSys

/// The receive share of one port slot.
struct PortReceiveShare {
    /// The port's ring; nil for ports that do not read their own fd (or whose ring could not be registered).
    var ring: BufferRing? = nil
    /// The port's read ended with ENOBUFS: re-arm it once the ring has buffers again.
    var starved = false
    /// The last refill could not fill the ring (the pool was short): an ENOBUFS is then `noBuffer`.
    var short = false
    /// In the list of rings to refill at the end of the turn.
    var listed = false
    /// The `rxBudget` count at the last throttle check, and when the port was last logged as throttled.
    var budgetChecked: UInt64 = 0
    var loggedAt: UInt32 = 0
    var logged = false
}

struct ReceiveShares {
    /// Buffers in each port's ring: what one port may receive per loop turn. A port flooding
    /// minimum-size frames gets 32 per turn, as many as any other port; 32 frames of a TAP are up
    /// to 32 super-frames (2 MiB), more than a TCP flow puts in its TAP between two turns but for
    /// the odd burst, which then waits a turn. Measured with bench/flood.sh against 64 on a busy
    /// two-core box (interleaved, 5 runs each): an iperf3 flow kept a median 0.51 of its no-flood
    /// rate with 32, 0.37 with 64, since the flood's share of each turn is what the flow waits on.
    /// 16 was too few: the TCP flow itself hit the budget about once per turn.
    static let ringEntries = 32
    /// A port whose read ran dry in at least this many turns within a second, and in at least half
    /// of that second's turns, is logged as throttled: a port that sends faster than its share all
    /// the time, not a bulk flow whose burst overran the share now and then.
    static let throttleLogTurns: UInt64 = 100
    /// Seconds between two throttle log lines of the same port.
    static let throttleLogInterval: UInt32 = 10

    private let shares: UnsafeMutablePointer<PortReceiveShare>
    private let list: UnsafeMutablePointer<UInt16>
    private var listCount = 0
    /// The ports whose reads `refill` found ready to re-arm, for the loop to arm.
    private let readyList: UnsafeMutablePointer<UInt16>
    private(set) var readyCount = 0
    private let capacity: Int

    init(maxPorts: Int) {
        capacity = maxPorts
        shares = .allocate(capacity: maxPorts)
        shares.initialize(repeating: PortReceiveShare(), count: maxPorts)
        list = .allocate(capacity: maxPorts)
        readyList = .allocate(capacity: maxPorts)
    }

    /// Frees everything (the loop is exiting; rings still open are unmapped, their slots go with the pool).
    func deallocate() {
        for s in 0..<capacity { shares[s].ring?.destroy() }
        shares.deinitialize(count: capacity)
        shares.deallocate()
        list.deallocate()
        readyList.deallocate()
    }

    /// The buffer group port `s` reads into: its own ring's, or the shared one.
    @inline(__always)
    func group(of s: UInt16) -> UInt16 { shares[Int(s)].ring?.group ?? BufferRing.sharedGroup }

    @inline(__always)
    func hasRing(_ s: UInt16) -> Bool { shares[Int(s)].ring != nil }

    /// Registers a ring for port `s` (buffer group s + 1) and fills it from `pool`, whose limit
    /// the caller has raised by `ringEntries`.
    mutating func open(_ s: UInt16, uring: IOUring, pool: inout BufferPool) throws(SwitchError) {
        let share = shares + Int(s)
        precondition(share.pointee.ring == nil, "receive ring of slot \(s) opened twice")
        var ring = try BufferRing(uring: uring, group: s &+ 1, entries: Self.ringEntries)
        ring.refill(from: &pool)
        let listed = share.pointee.listed  // a freed slot may still be in the list: it stays there once
        share.pointee = PortReceiveShare()
        share.pointee.ring = ring
        share.pointee.listed = listed
        share.pointee.short = ring.count < Self.ringEntries
        if share.pointee.short { enlist(s) }
    }

    /// Tears port `s`'s ring down (its read has ended): unregistered, its slots back in `pool`.
    /// Returns whether it had one (the caller lowers the pool's limit again).
    mutating func close(_ s: UInt16, uring: IOUring, pool: inout BufferPool) -> Bool {
        let share = shares + Int(s)
        guard share.pointee.ring != nil else { return false }
        share.pointee.ring!.tearDown(uring: uring, pool: &pool)
        share.pointee.ring = nil
        share.pointee.starved = false
        return true
    }

    /// The kernel took `slot` from port `s`'s ring (a completion named it).
    @inline(__always)
    mutating func taken(_ slot: UInt32, port s: UInt16) {
        shares[Int(s)].ring!.taken(slot)
        enlist(s)
    }

    /// The slot the kernel takes next from port `s`'s ring.
    func peekHead(_ s: UInt16) -> UInt32? { shares[Int(s)].ring?.next }

    /// Port `s`'s read ended with ENOBUFS: its ring is empty. True when that is its share running
    /// out within a turn (`rxBudget`), false when the pool could not fill the ring (`noBuffer`).
    mutating func starve(_ s: UInt16) -> Bool {
        shares[Int(s)].starved = true
        enlist(s)
        return !shares[Int(s)].short
    }

    @inline(__always)
    private mutating func enlist(_ s: UInt16) {
        guard !shares[Int(s)].listed else { return }
        shares[Int(s)].listed = true
        list[listCount] = s
        listCount += 1
    }

    /// Once per loop turn: tops up every ring that gave out buffers, and lists as `ready(_:)` each
    /// port whose read ended for want of them and whose ring has some again (the loop re-arms
    /// them). `active` says whether a port still receives (a closing port's ring waits for its teardown).
    mutating func refill(from pool: inout BufferPool, active: (UInt16) -> Bool) {
        var kept = 0
        readyCount = 0
        for i in 0..<listCount {
            let s = list[i]
            let share = shares + Int(s)
            guard share.pointee.ring != nil, active(s) else {
                share.pointee.listed = false
                continue
            }
            share.pointee.ring!.refill(from: &pool)
            let count = share.pointee.ring!.count
            share.pointee.short = count < Self.ringEntries
            if share.pointee.starved && count > 0 {
                share.pointee.starved = false
                readyList[readyCount] = s
                readyCount += 1
            }
            if share.pointee.short || share.pointee.starved {
                list[kept] = s  // the pool was short: try again next turn
                kept += 1
            } else {
                share.pointee.listed = false
            }
        }
        listCount = kept
    }

    /// The `i`-th port `refill` found ready to re-arm.
    @inline(__always)
    func ready(_ i: Int) -> UInt16 { readyList[i] }

    /// Once a second: whether port `s`, whose `rxBudget` count is now `budget`, ran out of its
    /// share often enough in the last second, whose loop turns were `loopTurns`, to be logged (at
    /// most every `throttleLogInterval`). Returns the turns in which it ran out.
    mutating func throttled(_ s: UInt16, budget: UInt64, loopTurns: UInt64, now: UInt32) -> UInt64? {
        let share = shares + Int(s)
        let turns = budget &- share.pointee.budgetChecked
        share.pointee.budgetChecked = budget
        guard turns >= Self.throttleLogTurns, turns &* 2 >= loopTurns,
              !share.pointee.logged || now &- share.pointee.loggedAt >= Self.throttleLogInterval else { return nil }
        share.pointee.logged = true
        share.pointee.loggedAt = now
        return turns
    }
}
