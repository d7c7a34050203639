// Housekeeper: the thread that does the dataplane's file work (lease saves) so the forwarding thread never blocks on disk.
//
// Design: the forwarding thread hands over work with `submit`, which takes a mutex for a few
// instructions and signals a condition variable; it never waits for I/O. Work is coalesced per
// slot: a slot has at most one job running and one pending, and a newer submission replaces the
// pending one (a lease save is a whole snapshot, so only the latest matters). The thread runs
// jobs in slot order outside the mutex. `stop` runs whatever is still pending before it returns,
// so a SIGTERM (Dataplane.shutdown) still saves the last snapshot.
import Glibc

/// One background thread per Dataplane for blocking file work, with coalescing slots.
final class Housekeeper: @unchecked Sendable {
    /// A job: a closure that may block (write, fsync, rename).
    typealias Job = @Sendable () -> Void

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// The pending job of each slot (nil: nothing to do).
    private var pending: [Job?] = []
    private var pendingCount = 0
    /// True while a job taken from `pending` is running.
    private var busy = false
    private var stopping = false
    private var thread: pthread_t?
    /// Jobs run so far (for tests and logs).
    private var completedJobs = 0

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        stop()
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// A new coalescing slot; call before `start` (slots are never removed).
    func makeSlot() -> Int {
        locked {
            pending.append(nil)
            return pending.count - 1
        }
    }

    /// Starts the thread. Jobs submitted before it starts wait for it (or for `stop`).
    func start() throws(SwitchError) {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let housekeeper = Unmanaged<Housekeeper>.fromOpaque(arg!).takeRetainedValue()
            housekeeper.run()
            return nil
        }, box.toOpaque())
        guard r == 0 else {
            box.release()
            throw SwitchError("cannot start the housekeeping thread: \(errnoText(r))")
        }
        locked { thread = t }
    }

    /// Queues `job` in `slot`, replacing the job pending there (never waits for a running job).
    func submit(slot: Int, _ job: @escaping Job) {
        locked {
            guard pending.indices.contains(slot) else { return }
            if pending[slot] == nil { pendingCount += 1 }
            pending[slot] = job
            pthread_cond_signal(condition)
        }
    }

    /// Runs every pending job, then ends the thread. Idempotent; without a thread the pending jobs
    /// run on the caller's thread.
    func stop() {
        let running: pthread_t? = locked {
            stopping = true
            pthread_cond_signal(condition)
            defer { thread = nil }
            return thread
        }
        if let running {
            pthread_join(running, nil)
        }
        while let job = takeJob(waiting: false) { runJob(job) }
    }

    /// Waits until nothing is pending or running (for tests and orderly shutdown).
    func waitUntilIdle() {
        locked {
            while pendingCount > 0 || busy { pthread_cond_wait(condition, mutex) }
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
            pthread_cond_broadcast(condition)  // waitUntilIdle
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
                    pthread_cond_broadcast(condition)
                    return nil
                }
                pthread_cond_wait(condition, mutex)
            }
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
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
