// Thread: starting and joining a POSIX thread that runs a Swift closure (the forwarding, housekeeping and DNS threads), and sleeping.
public import Glibc

/// The closure a new thread runs, carried through pthread_create's one pointer.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// POSIX threads for the daemon's long-running loops.
public enum PosixThread {
    /// A started thread, to `join`.
    public typealias Handle = pthread_t

    /// Starts a joinable thread running `body`; `what` names it in the error ("cannot start the
    /// forwarding thread: ...").
    public static func start(_ what: String, _ body: @escaping () -> Void) throws(SysError) -> Handle {
        let box = Unmanaged.passRetained(ThreadBody(body))
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard r == 0 else {
            box.release()
            throw SysError("cannot start \(what)", errno: Errno(rawValue: r))
        }
        return t
    }

    /// Waits for thread `t` (started by `start`) to end.
    public static func join(_ t: Handle) { _ = pthread_join(t, nil) }

    /// Sleeps the calling thread for `milliseconds` (a back-off after a failing call; not a timer).
    public static func sleep(milliseconds: Int) {
        var time = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&time, &left) < 0 && errno == EINTR { time = left }
    }
}
