// EventFD: the eventfd that wakes a thread blocked in poll or io_uring (the DNS thread, the forwarding loop).
internal import CSwitchShims
internal import Glibc

/// eventfd(2) as a wake-up: one thread signals, the one blocked on the fd wakes.
public enum EventFD {
    /// A new close-on-exec eventfd with count 0.
    public static func open() throws(SysError) -> Int32 {
        let fd = sw_eventfd()
        guard fd >= 0 else { throw SysError("eventfd", errno: Errno(result: fd)) }
        return fd
    }

    /// Adds 1 to the count, waking a reader (EINTR retried).
    public static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        while write(fd, &one, MemoryLayout<UInt64>.size) < 0 && errno == EINTR {}
    }
}

extension PosixThread {
    /// The calling thread's Linux thread id (gettid).
    public static func currentID() -> Int32 { sw_gettid() }
}
