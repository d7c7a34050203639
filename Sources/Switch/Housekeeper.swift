// Housekeeper: the thread that does the dataplane's file work (lease saves) so the forwarding thread never blocks on disk.
//
// Design: the forwarding thread hands over work with `submit`, which takes a mutex for a few
// instructions and signals a condition variable; it never waits for I/O. Work is coalesced per
// slot: a slot has at most one job running and one pending, and a newer submission replaces the
// pending one (a lease save is a whole snapshot, so only the latest matters). The thread runs
// jobs in slot order outside the mutex. `stop` runs whatever is still pending before it returns,
// so a SIGTERM (Dataplane.shutdown) still saves the last snapshot. Periodic jobs (the resolv.conf
// check) run on the same thread between them; `Mailbox` carries their results back to the loop,
// which only ever tries its lock.
import SwitchSys

/// One background thread per Dataplane for blocking file work, with coalescing slots.
final class Housekeeper: @unchecked Sendable {
    /// A job: a closure that may block (write, fsync, rename).
    typealias Job = @Sendable () -> Void

    private let mutex = Lock()
    /// Signalled on new work and on `stop`, broadcast when a job ends; timed waits are monotonic.
    private let condition: Condition
    /// The pending job of each slot (nil: nothing to do).
    private var pending: [Job?] = []
    private var pendingCount = 0
    /// True while a job taken from `pending` is running.
    private var busy = false
    private var stopping = false
    private var thread: PosixThread.Handle?
    /// Jobs run so far (for tests and logs).
    private var completedJobs = 0
    /// Jobs run every `interval` nanoseconds (CLOCK_MONOTONIC) while the thread runs.
    private var periodic: [(interval: Int64, next: Int64, job: Job)] = []

    init() {
        condition = Condition(mutex)   // timed waits ignore wall-clock steps
    }

    deinit {
        stop()
    }

    /// A new coalescing slot; call before `start` (slots are never removed).
    func makeSlot() -> Int {
        locked {
            pending.append(nil)
            return pending.count - 1
        }
    }

    /// Runs `job` on the thread every `seconds`, the first time `seconds` after `start` (not at `stop`).
    func every(seconds: Int, _ job: @escaping Job) {
        let interval = Int64(max(seconds, 1)) * 1_000_000_000
        locked { periodic.append((interval, Self.monotonicNanoseconds() + interval, job)) }
    }

    /// Starts the thread. Jobs submitted before it starts wait for it (or for `stop`).
    func start() throws(SwitchError) {
        let t: PosixThread.Handle
        do { t = try PosixThread.start("the housekeeping thread") { self.run() } } catch { throw SwitchError(error) }
        locked { thread = t }
    }

    /// Queues `job` in `slot`, replacing the job pending there (never waits for a running job).
    func submit(slot: Int, _ job: @escaping Job) {
        locked {
            guard pending.indices.contains(slot) else { return }
            if pending[slot] == nil { pendingCount += 1 }
            pending[slot] = job
            condition.signal()
        }
    }

    /// Runs every pending job, then ends the thread. Idempotent; without a thread the pending jobs
    /// run on the caller's thread.
    func stop() {
        let running: PosixThread.Handle? = locked {
            stopping = true
            condition.signal()
            defer { thread = nil }
            return thread
        }
        if let running {
            PosixThread.join(running)
        }
        while let job = takeJob(waiting: false) { runJob(job) }
    }

    /// Waits until nothing is pending or running (for tests and orderly shutdown).
    func waitUntilIdle() {
        locked {
            while pendingCount > 0 || busy { condition.wait() }
        }
    }

    /// Jobs run so far.
    var completed: Int { locked { completedJobs } }

    private func run() {
        while let job = takeJob(waiting: true) { runJob(job) }
    }

    private func runJob(_ job: Job) {
        job()
        locked {
            busy = false
            completedJobs += 1
            condition.broadcast()  // waitUntilIdle
        }
    }

    /// The next pending job (lowest slot first), marking the housekeeper busy; nil when there is none
    /// and either `waiting` is false or the housekeeper is stopping.
    private func takeJob(waiting: Bool) -> Job? {
        locked {
            while true {
                if pendingCount > 0, let slot = pending.firstIndex(where: { $0 != nil }), let job = pending[slot] {
                    pending[slot] = nil
                    pendingCount -= 1
                    busy = true
                    return job
                }
                if !waiting || stopping {
                    condition.broadcast()
                    return nil
                }
                guard let due = periodic.indices.min(by: { periodic[$0].next < periodic[$1].next }) else {
                    condition.wait()
                    continue
                }
                let now = Self.monotonicNanoseconds()
                if periodic[due].next <= now {
                    periodic[due].next = now + periodic[due].interval
                    busy = true
                    return periodic[due].job
                }
                condition.wait(untilMonotonicNanoseconds: periodic[due].next)
            }
        }
    }

    private static func monotonicNanoseconds() -> Int64 { Clock.monotonicNanoseconds() }

    private func locked<T>(_ body: () -> T) -> T { mutex.withLock(body) }
}

/// The latest value a housekeeping job produced, for the forwarding thread to pick up without
/// ever waiting: `take` only tries the lock (a busy lock means "nothing yet", next tick again).
final class Mailbox<Value: Sendable & Equatable>: @unchecked Sendable {
    private let mutex = Lock()
    private var value: Value?
    /// What was posted last (or given at first), so an unchanged value is not posted again.
    private var last: Value

    init(initial: Value) {
        last = initial
    }

    /// Leaves `value` for the next `take`, replacing one not yet taken, unless it equals the last
    /// value posted (housekeeping thread).
    func post(_ value: Value) {
        mutex.withLock {
            if value != last {
                last = value
                self.value = value
            }
        }
    }

    /// The value posted since the last take, if any and if the lock is free; never blocks.
    func take() -> Value? {
        mutex.withLockIfAvailable { () -> Value? in
            defer { value = nil }
            return value
        } ?? nil
    }
}

/// A `LeaseStore` whose saves happen on a `Housekeeper`: loading reads the file at once (the
/// control thread builds the server), saving hands the snapshot over and returns.
final class BackgroundLeaseStore: LeaseStore, @unchecked Sendable {
    /// The store that is written (a `FileLeaseStore`, or a recording one in tests).
    let target: any LeaseStore & Sendable
    private let housekeeper: Housekeeper
    private let slot: Int

    init(file target: any LeaseStore & Sendable, housekeeper: Housekeeper) {
        self.target = target
        self.housekeeper = housekeeper
        slot = housekeeper.makeSlot()
    }

    func load() -> [Lease] { target.load() }

    /// Queues `leases` to be written; a later save before the write starts replaces it.
    func save(_ leases: [Lease]) {
        let target = self.target
        housekeeper.submit(slot: slot) { target.save(leases) }
    }
}
