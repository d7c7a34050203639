// Clock: the one place that reads the system clocks (monotonic for intervals and deadlines, realtime for timestamps).
public import Glibc

/// The system clocks, read with clock_gettime (a vDSO call, no syscall).
public enum Clock {
    /// CLOCK_MONOTONIC in nanoseconds (since boot, excluding suspend).
    @inlinable @inline(__always)
    public static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// CLOCK_MONOTONIC in whole seconds.
    @inlinable @inline(__always)
    public static func monotonicSeconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec
    }

    /// CLOCK_MONOTONIC_COARSE in whole seconds: the last tick's time, cheaper than a full read (the
    /// forwarding loop's per-turn clock).
    @inlinable @inline(__always)
    public static func monotonicCoarseSeconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return ts.tv_sec
    }

    /// CLOCK_MONOTONIC as a timespec (for pthread_cond_timedwait with a monotonic condattr and the like).
    @inlinable @inline(__always)
    public static func monotonic() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts
    }

    /// CLOCK_REALTIME: wall-clock time since the Unix epoch.
    @inlinable @inline(__always)
    public static func realtime() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    /// CLOCK_REALTIME in nanoseconds since the Unix epoch.
    @inlinable @inline(__always)
    public static func realtimeNanoseconds() -> UInt64 {
        let ts = realtime()
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
