// Socket: thin wrappers over the socket syscalls the dataplane needs, and UnixAddress.
//
// Each returns a Result-like value or throws SysError with the path and errno named; EINTR is
// retried inside. Errnos that mean a bug (EBADF, EFAULT) are not special-cased: they surface as errors.
public import Glibc
import Proto

/// A `sockaddr_un` and its length, stored inline so it can live in preallocated port storage.
public struct UnixAddress {
    public var storage = sockaddr_un()
    public var length: socklen_t = 0

    /// The maximum path length that fits `sun_path` with its terminating NUL.
    public static let maxPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    public init() {}

    public init?(path: String) {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maxPathLength else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
    }

    /// How many bytes of `sun_path` identify the address (abstract addresses keep their leading NUL).
    private var pathCount: Int { min(max(0, Int(length) - MemoryLayout<sa_family_t>.size), Self.maxPathLength + 1) }

    /// FNV-1a of the address bytes, for the peer table.
    public var hash: UInt64 {
        let count = pathCount
        return withUnsafeBytes(of: storage.sun_path) { raw in FNV1a.hash(raw.prefix(count)) }
    }

    /// True when both name the same socket.
    public func sameAddress(as other: UnixAddress) -> Bool {
        guard pathCount == other.pathCount else { return false }
        let count = pathCount
        return withUnsafeBytes(of: storage.sun_path) { a in
            withUnsafeBytes(of: other.storage.sun_path) { b in memcmp(a.baseAddress!, b.baseAddress!, count) == 0 }
        }
    }

    /// The path for display; abstract addresses are shown with a leading `@`.
    public var display: String {
        var bytes = Array(withUnsafeBytes(of: storage.sun_path) { Array($0) }.prefix(max(0, Int(length) - 2)))
        if bytes.first == 0 { bytes[0] = UInt8(ascii: "@") }
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        return bytes.isEmpty ? "(unnamed)" : String(decoding: bytes, as: UTF8.self)
    }

    /// True when the sender bound no address, so it cannot be answered.
    public var isUnnamed: Bool { Int(length) <= MemoryLayout<sa_family_t>.size }

    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

/// Socket syscalls on bare fds (the dataplane's sockets are driven by io_uring, not owned here).
public enum Socket {
    /// SHUT_RDWR, which Glibc exports as an enum case only in some build configurations.
    public static let shutRDWR: Int32 = 2

    /// Creates a close-on-exec socket. Blocking on purpose: io_uring tries every request without
    /// blocking first and arms a poll on EAGAIN, which it would not do for an O_NONBLOCK file.
    public static func open(_ type: Int32, domain: Int32 = AF_UNIX) throws(SysError) -> Int32 {
        let fd = socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket") }
        return fd
    }

    /// Binds a new unix socket of `type` at `path`, replacing a stale file there.
    public static func bound(_ type: Int32, unixPath path: String) throws(SysError) -> Int32 {
        guard let address = UnixAddress(path: path) else {
            throw SysError("bind", path, errno: .ENAMETOOLONG,
                           message: "socket path \(path) is longer than \(UnixAddress.maxPathLength) bytes")
        }
        let fd = try open(type)
        unlink(path)
        let r = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        guard r == 0 else {
            let e = Errno.current
            close(fd)
            throw SysError("bind", path, errno: e)
        }
        return fd
    }

    /// A listening unix stream socket at `path`.
    public static func listening(unixPath path: String) throws(SysError) -> Int32 {
        let fd = try bound(Int32(SOCK_STREAM.rawValue), unixPath: path)
        guard Glibc.listen(fd, 128) == 0 else {
            let e = Errno.current
            close(fd)
            throw SysError("listen", path, errno: e)
        }
        return fd
    }

    /// Connects `fd` to `address`; returns 0 or the errno.
    public static func connect(_ fd: Int32, to address: UnixAddress) -> Int32 {
        while true {
            let r = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    /// Sets an integer socket option, ignoring failure (buffer sizes are best effort).
    @discardableResult
    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var v = value
        return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// Attaches the classic BPF program `ret #0` (linux/filter.h: BPF_RET|BPF_K = 0x06) with
    /// SO_ATTACH_FILTER (26): every datagram is refused before it is queued (send-only sockets).
    public static func refuseAllInput(_ fd: Int32) {
        // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } and struct sock_fprog { u16 len; ptr }.
        var instruction: UInt64 = 0x06  // code 0x06, jt 0, jf 0, k 0 (little-endian layout)
        withUnsafeMutablePointer(to: &instruction) { filter in
            var program = (UInt64(1), UInt64(UInt(bitPattern: filter)))
            _ = setsockopt(fd, SOL_SOCKET, 26, &program, socklen_t(16))
        }
    }

    /// Binds `fd` to an IPv4 or IPv6 address.
    public static func bind(_ fd: Int32, to address: InetSocketAddress) throws(SysError) {
        guard address.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0 else { throw SysError("bind", address.description) }
    }

    /// Makes the bound stream socket `fd` listen.
    public static func listen(_ fd: Int32, backlog: Int32) throws(SysError) {
        guard Glibc.listen(fd, backlog) == 0 else { throw SysError("listen") }
    }

    /// The next connection on listening socket `fd` (EINTR retried), as a bare fd with the flags
    /// accept(2) gives it (the caller sets close-on-exec and O_NONBLOCK: accept4 is not imported).
    /// EAGAIN on a nonblocking listener means none is waiting (`errno.wouldBlock`).
    public static func accept(_ fd: Int32) throws(SysError) -> Int32 {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 { return client }
            if errno != EINTR { throw SysError("accept") }
        }
    }

    /// Sends from `bytes` on connected socket `fd` (MSG_NOSIGNAL; EINTR retried): the count sent.
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SysError) -> Int {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Socket.noSignal)
            if n >= 0 { return n }
            if errno != EINTR { throw SysError("send") }
        }
    }

    /// Receives into `buffer` from connected socket `fd`: the count, 0 at end of input. EINTR is
    /// thrown, not retried (the DNS loop polls again).
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> Int {
        let n = recv(fd, buffer.baseAddress, buffer.count, 0)
        guard n >= 0 else { throw SysError("recv") }
        return n
    }

    /// A non-blocking, close-on-exec UDP socket of `family` (AF_INET, AF_INET6), or -1 (errno set).
    public static func udp(_ family: Int32) -> Int32 {
        socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    /// A connected pair of close-on-exec unix sockets of `type` (blocking, like `make`).
    public static func connectedPair(_ type: Int32) throws(SysError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SysError("socketpair")
        }
        return (fds[0], fds[1])
    }

    /// Stops reads and writes on `fd` (shutdown SHUT_RDWR): pending receives on it complete.
    public static func shutdown(_ fd: Int32) { _ = Glibc.shutdown(fd, Socket.shutRDWR) }

    /// Closes `fd` with an RST instead of an orderly FIN (SO_LINGER 0), for stream peers we reset.
    public static func reset(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        _ = Glibc.shutdown(fd, Socket.shutRDWR)
    }
}

extension Socket {
    /// MSG_NOSIGNAL and MSG_DONTWAIT by value. Glibc declares them in an anonymous enum that the C
    /// modules including <sys/socket.h> textually (CLiburing, CPcap) declare again; in a compile batch
    /// the importer may attribute the constants to one of those, and a file that does not import it
    /// then cannot see them ("cannot find 'MSG_NOSIGNAL' in scope" on a fresh build).
    public static let noSignal: Int32 = 0x4000
    public static let dontWait: Int32 = 0x40
}
