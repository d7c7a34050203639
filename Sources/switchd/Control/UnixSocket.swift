// UnixSocket: the executable's only syscall wrappers, an AF_UNIX SOCK_STREAM fd with the calls the control socket needs.
import CSwitchShims
import Glibc

/// A failed socket call, with the errno for callers that tell cases apart.
struct SocketError: Error, CustomStringConvertible {
    var call: String
    var path: String?
    var errno: Int32

    var description: String {
        "\(call)\(path.map { " \($0)" } ?? ""): \(String(cString: strerror(errno)))"
    }
}

/// Owns one AF_UNIX stream socket; closed on deinit.
final class UnixSocket: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    private static func make() throws(SocketError) -> UnixSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: errno) }
        return UnixSocket(fd: fd)
    }

    /// Calls `body` with `path` as a `sockaddr_un`; the caller has checked that it fits.
    private static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    private static func checkLength(_ path: String, _ call: String) throws(SocketError) {
        if path.utf8.count >= Paths.sunPathCapacity { throw SocketError(call: call, path: path, errno: ENAMETOOLONG) }
    }

    /// A socket connected to `path`.
    static func connect(to path: String) throws(SocketError) -> UnixSocket {
        try checkLength(path, "connect")
        let socket = try make()
        while true {
            let result = withAddress(path) { Glibc.connect(socket.fd, $0, $1) }
            if result == 0 { return socket }
            if errno != EINTR { throw SocketError(call: "connect", path: path, errno: errno) }
        }
    }

    /// A socket bound to `path` and listening.
    static func listen(at path: String, backlog: Int32 = 64) throws(SocketError) -> UnixSocket {
        try checkLength(path, "bind")
        let socket = try make()
        guard withAddress(path, { bind(socket.fd, $0, $1) }) == 0 else { throw SocketError(call: "bind", path: path, errno: errno) }
        guard Glibc.listen(socket.fd, backlog) == 0 else { throw SocketError(call: "listen", path: path, errno: errno) }
        return socket
    }

    /// The next connection.
    func accept() throws(SocketError) -> UnixSocket {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return UnixSocket(fd: client)
            }
            if errno != EINTR { throw SocketError(call: "accept", errno: errno) }
        }
    }

    /// Reads what is available into `buffer`; 0 at end of input.
    func read(into buffer: inout [UInt8]) throws(SocketError) -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw SocketError(call: "read", errno: errno) }
        }
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a vanished peer is an error, not SIGPIPE). With `waiting`
    /// false, a full socket fails with EAGAIN instead of blocking (MSG_DONTWAIT).
    func write(_ bytes: [UInt8], waiting: Bool = true) throws(SocketError) {
        let flags = Int32(MSG_NOSIGNAL) | (waiting ? 0 : Int32(MSG_DONTWAIT))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return 0 }
                return send(fd, base + offset, raw.count - offset, flags)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError(call: "write", errno: errno)
            }
            offset += n
        }
    }

    /// Stops reads and writes (and wakes a thread blocked in accept or read).
    func shutdownBoth() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// After an error reply: stops writing and discards what the peer still sends (for at most a second),
    /// so that closing does not reset the connection before the peer has read the reply.
    func closeAfterDraining() {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while total < 16 << 20, let n = try? read(into: &scratch), n > 0 { total += n }
    }

    /// `SO_PEERCRED` of a connected socket, with the supplementary groups of `SO_PEERGROUPS` (none where the
    /// kernel cannot tell them).
    func peerCredentials() throws(SocketError) -> PeerCredentials {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        let result = sw_peer_cred(fd, &pid, &uid, &gid)
        guard result == 0 else { throw SocketError(call: "getsockopt(SO_PEERCRED)", errno: -result) }
        var groups = [UInt32](repeating: 0, count: 64)
        var count = sw_peer_groups(fd, &groups, Int32(groups.count))
        if count > groups.count {  // more than 64: ask again with room for all of them
            groups = [UInt32](repeating: 0, count: Int(count))
            count = sw_peer_groups(fd, &groups, Int32(groups.count))
        }
        // Kernels before 4.13 lack SO_PEERGROUPS: then only the primary group counts.
        return PeerCredentials(pid: pid, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))))
    }

    /// Writes all of `bytes` with `passing` attached to the first of them (SCM_RIGHTS).
    func write(_ bytes: [UInt8], passing descriptor: Int32) throws(SocketError) {
        let n = bytes.withUnsafeBytes { sw_send_fd(fd, descriptor, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SocketError(call: "sendmsg(SCM_RIGHTS)", errno: -n) }
        if n < bytes.count { try write(Array(bytes[Int(n)...])) }
    }

    /// Reads what is available into `buffer`, with a descriptor if one came along (close-on-exec);
    /// a count of 0 at end of input.
    func read(into buffer: inout [UInt8], descriptor: inout Int32?) throws(SocketError) -> Int {
        var received: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { sw_recv_fd(fd, &received, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SocketError(call: "recvmsg", errno: -n) }
        if received >= 0 {
            if let earlier = descriptor { Glibc.close(earlier) }
            descriptor = received
        }
        return Int(n)
    }

    /// Reads fail with EAGAIN after `seconds` without input, and writes after `seconds` without room
    /// (the peer reads nothing); 0: wait forever.
    func setTimeouts(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Waits up to `milliseconds` for the socket to become readable (a connection to accept); true if it did.
    func waitReadable(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// Takes over `fd` as an already listening control socket (systemd socket activation), after checking
    /// that it is one: AF_UNIX, SOCK_STREAM, listening. Returns the socket and the path it is bound to.
    static func adoptListening(fd: Int32) throws(ControlError) -> (socket: UnixSocket, path: String) {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN) else {
            throw ControlError("socket activation: fd \(fd) is not a socket (\(String(cString: strerror(errno))))")
        }
        guard domain == AF_UNIX, option(SO_TYPE) == Int32(SOCK_STREAM.rawValue) else {
            throw ControlError("socket activation: fd \(fd) is not an AF_UNIX SOCK_STREAM socket (ListenStream= must be a path)")
        }
        guard option(SO_ACCEPTCONN) == 1 else { throw ControlError("socket activation: fd \(fd) is not listening") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let pathLength = max(0, Int(length) - MemoryLayout<sa_family_t>.size)
        let path = withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix(pathLength).prefix { $0 != 0 }, as: UTF8.self)
        }
        return (UnixSocket(fd: fd), path)
    }
}

extension UnixSocket {
    /// Reads what is available into `buffer`, and an fd passed with it (-1 when none came); 0 at end of input.
    func read(into buffer: inout [UInt8], passed fd: inout Int32) throws(SocketError) -> Int {
        var received: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { sw_recv_fd(self.fd, &received, $0.baseAddress, Int32($0.count)) }
        guard n >= 0 else { throw SocketError(call: "recvmsg", errno: -n) }
        if received >= 0 {
            if fd >= 0 { close(fd) }
            fd = received
        }
        return Int(n)
    }
}
