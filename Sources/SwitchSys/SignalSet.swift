// SignalSet: the daemon's signal mask and its synchronous waits (sigwait, sigtimedwait), and ignoring a signal.
internal import Glibc

/// A set of signals, blocked in the threads and taken synchronously with `wait`.
public struct SignalSet: @unchecked Sendable {
    private var set = sigset_t()

    public init(_ signals: [Int32]) {
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
    }

    /// Blocks the set in the calling thread (and so in the threads it starts later).
    public func block() {
        var mask = set
        pthread_sigmask(SIG_BLOCK, &mask, nil)
    }

    /// Waits for one of the (blocked) signals; nil when the wait failed.
    public func wait() -> Int32? {
        var mask = set
        var received: Int32 = 0
        return sigwait(&mask, &received) == 0 ? received : nil
    }

    /// Waits at most `seconds` (and `nanoseconds`) for one of the signals; nil at the timeout
    /// (EAGAIN) or when another signal interrupted the wait (EINTR).
    public func wait(seconds: Int, nanoseconds: Int) -> Int32? {
        var mask = set
        var timeout = timespec(tv_sec: seconds, tv_nsec: nanoseconds)
        let received = sigtimedwait(&mask, nil, &timeout)
        return received > 0 ? received : nil
    }

    /// Ignores `signal` in the whole process (SIG_IGN), e.g. SIGPIPE.
    public static func ignore(_ signal: Int32) { _ = Glibc.signal(signal, SIG_IGN) }
}
