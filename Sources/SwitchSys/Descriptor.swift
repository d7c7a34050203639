// Descriptor: calls on a bare file descriptor (close, its flags, duplicating it) and poll(2) over several.
public import Glibc

/// A bare fd's calls. Switch keeps fds as `Int32` (in preallocated port storage, io_uring requests);
/// these are the few calls made on them outside io_uring.
public enum Descriptor {
    /// Closes `fd`. EINTR is not retried: on Linux the fd is released even then (close(2), NOTES).
    @inlinable public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Sets or clears close-on-exec (FD_CLOEXEC).
    public static func setCloseOnExec(_ fd: Int32, _ on: Bool = true) {
        _ = fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0)
    }

    /// Adds O_NONBLOCK to the file status flags.
    public static func setNonBlocking(_ fd: Int32) throws(SysError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SysError("fcntl(O_NONBLOCK)") }
    }

    /// A duplicate of `fd` numbered `lowest` or above (F_DUPFD: close-on-exec clear).
    public static func duplicate(_ fd: Int32, atLeast lowest: Int32) throws(SysError) -> Int32 {
        let copy = fcntl(fd, F_DUPFD, lowest)
        guard copy >= 0 else { throw SysError("fcntl(F_DUPFD)") }
        return copy
    }

    /// Makes `target` a duplicate of `fd` (dup2: close-on-exec clear on `target`), EINTR retried.
    public static func duplicate(_ fd: Int32, onto target: Int32) throws(SysError) {
        while dup2(fd, target) < 0 {
            guard errno == EINTR else { throw SysError("dup2") }
        }
    }
}

/// poll(2) over a list of `pollfd`s.
public enum Poll {
    /// Waits up to `milliseconds` (-1: forever) for an event on `fds`; the number of entries with
    /// `revents` set, 0 on timeout or when a signal interrupted the wait (EINTR).
    public static func wait(_ fds: inout [pollfd], milliseconds: Int32) throws(SysError) -> Int {
        let ready = poll(&fds, nfds_t(fds.count), milliseconds)
        if ready >= 0 { return Int(ready) }
        if errno == EINTR { return 0 }
        throw SysError("poll")
    }
}
