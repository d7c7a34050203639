// Thread: starting a POSIX thread that runs a Swift closure (the forwarding, housekeeping and DNS threads).
import Glibc

/// The closure a new thread runs, carried through pthread_create's one pointer.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a joinable thread running `body`; `what` names it in the error ("the forwarding thread").
func startThread(_ what: String, _ body: @escaping () -> Void) throws(SwitchError) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var t = pthread_t()
    let r = pthread_create(&t, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, box.toOpaque())
    guard r == 0 else {
        box.release()
        throw SwitchError("cannot start \(what): \(errnoText(r))")
    }
    return t
}
