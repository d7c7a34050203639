// InetSocketAddress and Datagram: IPv4/IPv6 socket addresses as values, and nonblocking UDP send and receive with them.
public import Glibc
public import Proto

/// An IPv4 or IPv6 socket address (with the scope of a link-local IPv6 peer), as a hashable value.
public struct InetSocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    /// The interface of a link-local IPv6 address (sin6_scope_id); 0 otherwise.
    public var scopeID: UInt32 = 0

    public init(_ address: IPAddress, port: UInt16, scopeID: UInt32 = 0) {
        self.address = address; self.port = port; self.scopeID = scopeID
    }

    /// The address in `storage`, or nil when it is neither AF_INET nor AF_INET6.
    public init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(.v4(IPv4Address(rawValue: UInt32(bigEndian: sin.sin_addr.s_addr))), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            var sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let address = withUnsafeBytes(of: &sin6.sin6_addr) { IPv6Address(loading: $0.baseAddress!) }
            self.init(.v6(address), port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        default:
            return nil
        }
    }

    public var family: Int32 {
        switch address { case .v4: AF_INET; case .v6: AF_INET6 }
    }

    /// True for fe80::/10 (RFC 4291 §2.5.6), which needs an interface to be bound or reached.
    public var isLinkLocal: Bool {
        if case .v6(let a) = address { return a.high >> 54 == 0xFE80 >> 6 }
        return false
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch address {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = a.rawValue.bigEndian
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let a):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { a.store(to: $0.baseAddress!) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// `A.B.C.D:PORT` or `[IPV6]:PORT`.
    public var description: String {
        switch address {
        case .v4(let a): "\(a):\(port)"
        case .v6(let a): "[\(a)]:\(port)"
        }
    }
}

/// sendto/recvfrom on nonblocking UDP sockets, EINTR retried.
public enum Datagram {
    /// What one `receive` found.
    public enum Received {
        /// A datagram of `count` bytes (possibly 0) from `sender` (nil: not AF_INET/AF_INET6).
        case datagram(count: Int, sender: InetSocketAddress?)
        /// Nothing waiting (EAGAIN).
        case wouldBlock
        /// recvfrom failed (ECONNREFUSED and the like: a queued ICMP error for an earlier datagram).
        case failed(Errno)
    }

    /// One datagram from `fd` into `buffer`.
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Received {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length) }
            }
            if n >= 0 { return .datagram(count: n, sender: InetSocketAddress(storage)) }
            let e = Errno.current
            if e == .EINTR { continue }
            return e.wouldBlock ? .wouldBlock : .failed(e)
        }
    }

    /// Sends `bytes` from `fd` to `destination` (MSG_NOSIGNAL); nil when sent, else the errno.
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, to destination: InetSocketAddress) -> Errno? {
        while true {
            let n = destination.withSockaddr { sendto(fd, bytes.baseAddress, bytes.count, Socket.noSignal, $0, $1) }
            if n >= 0 { return nil }
            let e = Errno.current
            if e != .EINTR { return e }
        }
    }
}
