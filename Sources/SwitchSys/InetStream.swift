// InetStream: the few TCP calls the port-forward relay needs beyond `Socket` (a nonblocking
// connect to an IPv4/IPv6 address, its outcome, half-closing).
internal import Glibc

extension Socket {
    /// Starts connecting nonblocking socket `fd` to `address`: nil when connected at once,
    /// EINPROGRESS while it goes on (wait for POLLOUT, then `pendingError`), else the errno.
    public static func connect(_ fd: Int32, to address: InetSocketAddress) -> Errno? {
        while true {
            let r = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return nil }
            let e = Errno.current
            if e != .EINTR { return e }
        }
    }

    /// The socket's pending error (SO_ERROR, which reading clears): 0 when none, e.g. after a
    /// nonblocking connect became writable and succeeded.
    public static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    /// Ends the sending half of stream socket `fd` (shutdown SHUT_WR): the peer reads end of input.
    public static func shutdownWrite(_ fd: Int32) { _ = Glibc.shutdown(fd, 1) }
}
