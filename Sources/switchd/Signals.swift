// Signals: SIGTERM, SIGINT and SIGHUP delivered synchronously to the main thread with sigwait.
import Glibc
import SwitchSys

/// The daemon's signals. `block()` must run before any thread starts, so every thread inherits the mask
/// and the signals wait for `next()` instead of interrupting whichever thread the kernel picks.
enum Signals {
    enum Event { case terminate, reload }

    private static var set: sigset_t = {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, signal) }
        return set
    }()

    /// Blocks the daemon's signals in the calling thread (and so in threads it starts later); ignores SIGPIPE.
    static func block() {
        var mask = set
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Waits up to `seconds` for the next signal; nil when none came in time.
    static func next(timeout seconds: Double) -> Event? {
        var mask = set
        let end = Double(Clock.monotonicNanoseconds()) / 1e9 + max(0, seconds)
        while true {
            let left = end - Double(Clock.monotonicNanoseconds()) / 1e9
            guard left > 0 else { return nil }
            var wait = timespec(tv_sec: Int(left), tv_nsec: Int((left - left.rounded(.down)) * 1e9))
            let received = sigtimedwait(&mask, nil, &wait)
            switch received {
            case SIGHUP: return .reload
            case SIGTERM, SIGINT: return .terminate
            default: continue  // EAGAIN (timeout: the loop ends it), EINTR
            }
        }
    }

    /// Waits for the next signal.
    static func next() -> Event {
        var mask = set
        while true {
            var received: Int32 = 0
            guard sigwait(&mask, &received) == 0 else { continue }
            switch received {
            case SIGHUP: return .reload
            case SIGTERM, SIGINT: return .terminate
            default: continue
            }
        }
    }
}
