// UnixSocket: an owned AF_UNIX SOCK_STREAM fd with the blocking calls the control socket and its clients need.
//
// The control socket's threads use it (one connection each, blocking calls with timeouts); the
// dataplane's unix sockets are bare fds driven by io_uring (Socket.swift). Both name addresses
// with `UnixAddress` and fail with `SysError` (call, path, errno).
internal import CSwitchShims
internal import Glibc

/// Owns one AF_UNIX stream socket; closed on deinit.
public final class UnixSocket: @unchecked Sendable {
    public let fd: Int32

    /// Takes over `fd` (closed on deinit).
    public init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    private static func make() throws(SysError) -> UnixSocket {
        UnixSocket(fd: try Socket.open(Int32(SOCK_STREAM.rawValue)))
    }

    /// `path` as an address; ENAMETOOLONG (in `call`'s name) when it does not fit `sun_path`.
    private static func address(_ path: String, _ call: String) throws(SysError) -> UnixAddress {
        guard !path.isEmpty else { throw SysError(call, path, errno: .ENOENT) }
        guard let address = UnixAddress(path: path) else { throw SysError(call, path, errno: .ENAMETOOLONG) }
        return address
    }

    /// A socket connected to `path`.
    public static func connect(to path: String) throws(SysError) -> UnixSocket {
        let address = try address(path, "connect")
        let socket = try make()
        let e = Socket.connect(socket.fd, to: address)
        guard e == 0 else { throw SysError("connect", path, errno: Errno(rawValue: e)) }
        return socket
    }

    /// A socket bound to `path` and listening.
    public static func listen(at path: String, backlog: Int32 = 64) throws(SysError) -> UnixSocket {
        let address = try address(path, "bind")
        let socket = try make()
        guard address.withSockaddr({ bind(socket.fd, $0, $1) }) == 0 else { throw SysError("bind", path) }
        guard Glibc.listen(socket.fd, backlog) == 0 else { throw SysError("listen", path) }
        return socket
    }

    /// The next connection.
    public func accept() throws(SysError) -> UnixSocket {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return UnixSocket(fd: client)
            }
            if errno != EINTR { throw SysError("accept") }
        }
    }

    /// Reads what is available into `buffer`; 0 at end of input.
    public func read(into buffer: inout [UInt8]) throws(SysError) -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw SysError("read") }
        }
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a vanished peer is an error, not SIGPIPE). With `waiting`
    /// false, a full socket fails with EAGAIN instead of blocking (MSG_DONTWAIT).
    public func write(_ bytes: [UInt8], waiting: Bool = true) throws(SysError) {
        let flags = Socket.noSignal | (waiting ? 0 : Socket.dontWait)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return 0 }
                return send(fd, base + offset, raw.count - offset, flags)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("write")
            }
            offset += n
        }
    }

    /// Stops reads and writes (and wakes a thread blocked in accept or read).
    public func shutdownBoth() { _ = Glibc.shutdown(fd, Socket.shutRDWR) }

    /// After an error reply: stops writing and discards what the peer still sends (for at most a second),
    /// so that closing does not reset the connection before the peer has read the reply.
    public func closeAfterDraining() {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while total < 16 << 20, let n = try? read(into: &scratch), n > 0 { total += n }
    }

    /// Who is at the other end of a connection: process, user, primary and supplementary groups.
    public struct Credentials: Equatable, Sendable {
        public var pid: Int32
        public var uid: UInt32
        public var gid: UInt32
        public var groups: [UInt32]
    }

    /// `SO_PEERCRED` of a connected socket, with the supplementary groups of `SO_PEERGROUPS` (none where the
    /// kernel cannot tell them).
    public func peerCredentials() throws(SysError) -> Credentials {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        let result = sw_peer_cred(fd, &pid, &uid, &gid)
        guard result == 0 else { throw SysError("getsockopt(SO_PEERCRED)", errno: Errno(result: result)) }
        var groups = [UInt32](repeating: 0, count: 64)
        var count = sw_peer_groups(fd, &groups, Int32(groups.count))
        if count > groups.count {  // more than 64: ask again with room for all of them
            groups = [UInt32](repeating: 0, count: Int(count))
            count = sw_peer_groups(fd, &groups, Int32(groups.count))
        }
        // Kernels before 4.13 lack SO_PEERGROUPS: then only the primary group counts.
        return Credentials(pid: pid, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))))
    }

    /// Writes all of `bytes` with `passing` attached to the first of them (SCM_RIGHTS).
    public func write(_ bytes: [UInt8], passing descriptor: Int32) throws(SysError) {
        let n = bytes.withUnsafeBytes { sw_send_fd(fd, descriptor, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SysError("sendmsg(SCM_RIGHTS)", errno: Errno(result: n)) }
        if n < bytes.count { try write(Array(bytes[Int(n)...])) }
    }

    /// Reads what is available into `buffer`, with a descriptor if one came along (close-on-exec);
    /// a count of 0 at end of input.
    public func read(into buffer: inout [UInt8], descriptor: inout Int32?) throws(SysError) -> Int {
        var received: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { sw_recv_fd(fd, &received, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SysError("recvmsg", errno: Errno(result: n)) }
        if received >= 0 {
            if let earlier = descriptor { Glibc.close(earlier) }
            descriptor = received
        }
        return Int(n)
    }

    /// Reads fail with EAGAIN after `seconds` without input, and writes after `seconds` without room
    /// (the peer reads nothing); 0: wait forever.
    public func setTimeouts(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Waits up to `milliseconds` for the socket to become readable (a connection to accept); true if it did.
    public func waitReadable(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// What a socket passed in by number is (for systemd socket activation): its domain, type,
    /// whether it listens, and the unix path it is bound to (empty when none). nil, with errno set,
    /// when `fd` is not a socket.
    public static func inspect(fd: Int32) -> (domain: Int32, type: Int32?, listening: Bool, path: String)? {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN) else { return nil }
        let type = option(SO_TYPE), listening = option(SO_ACCEPTCONN) == 1
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let pathLength = max(0, Int(length) - MemoryLayout<sa_family_t>.size)
        let path = withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix(pathLength).prefix { $0 != 0 }, as: UTF8.self)
        }
        return (domain, type, listening, path)
    }

    /// Sets close-on-exec on `fd` (a descriptor inherited from the parent).
    public static func setCloseOnExec(_ fd: Int32) { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
}

extension UnixSocket {
    /// Reads what is available into `buffer`, and an fd passed with it (-1 when none came); 0 at end of input.
    public func read(into buffer: inout [UInt8], passed fd: inout Int32) throws(SysError) -> Int {
        var received: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { sw_recv_fd(self.fd, &received, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SysError("recvmsg", errno: Errno(result: n)) }
        if received >= 0 {
            if fd >= 0 { close(fd) }
            fd = received
        }
        return Int(n)
    }
}
