// Thread: starting a POSIX thread that runs a Swift closure (the forwarding, housekeeping and DNS threads).
public import Glibc

/// The closure a new thread runs, carried through pthread_create's one pointer.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// POSIX threads for the daemon's long-running loops.
public enum PosixThread {
    /// Starts a joinable thread running `body`; `what` names it in the error ("cannot start the
    /// forwarding thread: ...").
    public static func start(_ what: String, _ body: @escaping () -> Void) throws(SysError) -> pthread_t {
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
}
