// Signals: SIGTERM, SIGINT and SIGHUP delivered synchronously to the main thread with sigwait.
import Glibc
import SwitchSys

/// The daemon's signals. `block()` must run before any thread starts, so every thread inherits the mask
/// and the signals wait for `next()` instead of interrupting whichever thread the kernel picks.
enum Signals {
    enum Event { case terminate, reload }

    private static let set = SignalSet([SIGTERM, SIGINT, SIGHUP])

    /// Blocks the daemon's signals in the calling thread (and so in threads it starts later); ignores SIGPIPE.
    static func block() {
        set.block()
        SignalSet.ignore(SIGPIPE)
    }

    /// Waits up to `seconds` for the next signal; nil when none came in time.
    static func next(timeout seconds: Double) -> Event? {
        let end = Double(Clock.monotonicNanoseconds()) / 1e9 + max(0, seconds)
        while true {
            let left = end - Double(Clock.monotonicNanoseconds()) / 1e9
            guard left > 0 else { return nil }
            let received = set.wait(seconds: Int(left), nanoseconds: Int((left - left.rounded(.down)) * 1e9))
            switch received {
            case SIGHUP: return .reload
            case SIGTERM, SIGINT: return .terminate
            default: continue  // EAGAIN (timeout: the loop ends it), EINTR
            }
        }
    }

    /// Waits for the next signal.
    static func next() -> Event {
        while true {
            guard let received = set.wait() else { continue }
            switch received {
            case SIGHUP: return .reload
            case SIGTERM, SIGINT: return .terminate
            default: continue
            }
        }
    }
}
