// CaptureSocket: the syscalls of captures: the SOCK_SEQPACKET socketpair, the record sendmsg, the clock.
public import Glibc

/// The capture records' socket pair and send, and their timestamps.
public enum CaptureSocket {
    /// Send buffer of the writing end: what a reader may fall behind by before frames are lost.
    public static let sendBuffer: Int32 = 4 << 20
    /// POLLRDHUP (a _GNU_SOURCE constant the Glibc module leaves out).
    public static let pollRDHUP: Int32 = 0x2000

    /// A connected SOCK_SEQPACKET pair, close-on-exec: `writer` for the forwarding thread (4 MiB send
    /// buffer), `reader` for the client. Neither direction is shut down: a shutdown on either end
    /// makes the writer report EPOLLRDHUP, which completes every io_uring poll on it at once.
    public static func open() throws(SysError) -> (writer: Int32, reader: Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SysError("socketpair")
        }
        // SO_SNDBUFFORCE needs CAP_NET_ADMIN; without it SO_SNDBUF (capped by net.core.wmem_max) stands.
        Socket.setOption(fds[0], SOL_SOCKET, SO_SNDBUF, sendBuffer)
        Socket.setOption(fds[0], SOL_SOCKET, SO_SNDBUFFORCE, sendBuffer)
        return (fds[0], fds[1])
    }

    /// Sends one record without blocking; returns 0 or the errno (EINTR retried).
    @inlinable @inline(__always)
    public static func send(_ fd: Int32, _ message: UnsafePointer<msghdr>) -> Int32 {
        while true {
            if sendmsg(fd, message, Socket.dontWait | Socket.noSignal) >= 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    /// Receives one record into `buffer` (the client's end), waiting for it when `waiting`: its
    /// length, 0 when the writing end is gone, nil when none is waiting (EAGAIN) or the receive
    /// failed. EINTR retried.
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, waiting: Bool) -> Int? {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, waiting ? 0 : Socket.dontWait)
            if n >= 0 { return n }
            if errno != EINTR { return nil }
        }
    }

    /// Stops reading on the client's end (shutdown SHUT_RD): a receive waiting there returns 0.
    public static func stopReading(_ fd: Int32) { _ = shutdown(fd, Int32(SHUT_RD)) }

    /// Wall-clock time in nanoseconds since the Unix epoch, for record timestamps.
    @inlinable @inline(__always)
    public static func realtimeNanoseconds() -> UInt64 { Clock.realtimeNanoseconds() }
}
