// Lock and Condition: the one mutex type of Switch and switchd (and the condition variable the housekeeping thread waits on).
//
// Why not `Synchronization.Mutex`: the housekeeping thread waits on a condition variable with a
// monotonic deadline, which needs the pthread mutex under it, and `Dataplane.runOnLoop` unlocks
// before it waits for the loop (a lock/unlock pair, not one closure). One small wrapper serves
// every shape, so there is one mutex type rather than two. Never taken per frame: the forwarding
// thread only tries one (`Mailbox.take`, once per tick) with `withLockIfAvailable`.
public import Glibc

/// A pthread mutex (default kind: not recursive). The storage is allocated once and never moves.
public final class Lock: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Takes the lock, waiting for it. Pair with `unlock()` on the same thread.
    @inlinable public func lock() { pthread_mutex_lock(mutex) }

    /// Releases the lock taken by `lock()` on this thread.
    @inlinable public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the lock.
    @inlinable
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Runs `body` holding the lock if it is free now; nil, without waiting, when it is not.
    @inlinable
    public func withLockIfAvailable<T>(_ body: () -> T) -> T? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// A condition variable bound to one `Lock`, whose timed waits use CLOCK_MONOTONIC (a wall-clock
/// step neither shortens nor stretches them). Every call is made holding that lock.
public final class Condition: @unchecked Sendable {
    private let lock: Lock
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init(_ lock: Lock) {
        self.lock = lock
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Releases the lock, waits for a signal (or a spurious wake-up), takes the lock again.
    public func wait() { pthread_cond_wait(condition, lock.mutex) }

    /// `wait()`, or until CLOCK_MONOTONIC reaches `deadline` nanoseconds (`Clock.monotonicNanoseconds`).
    public func wait(untilMonotonicNanoseconds deadline: Int64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        _ = pthread_cond_timedwait(condition, lock.mutex, &time)
    }

    /// Wakes one waiter.
    public func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiter.
    public func broadcast() { pthread_cond_broadcast(condition) }
}
