// Socket: thin wrappers over the unix-socket and process syscalls the dataplane needs.
//
// Each returns a Result-like value or throws SwitchError with the path and errno named; EINTR is
// retried inside. Errnos that mean a bug (EBADF, EFAULT) are not special-cased: they surface as errors.
import CSwitchShims
import Glibc
import Proto

/// The text of an errno value.
func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// A `sockaddr_un` and its length, stored inline so it can live in preallocated port storage.
struct UnixAddress {
    var storage = sockaddr_un()
    var length: socklen_t = 0

    /// The maximum path length that fits `sun_path` with its terminating NUL.
    static let maxPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    init() {}

    init?(path: String) {
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
    var hash: UInt64 {
        let count = pathCount
        return withUnsafeBytes(of: storage.sun_path) { raw in FNV1a.hash(raw.prefix(count)) }
    }

    /// True when both name the same socket.
    func sameAddress(as other: UnixAddress) -> Bool {
        guard pathCount == other.pathCount else { return false }
        let count = pathCount
        return withUnsafeBytes(of: storage.sun_path) { a in
            withUnsafeBytes(of: other.storage.sun_path) { b in memcmp(a.baseAddress!, b.baseAddress!, count) == 0 }
        }
    }

    /// The path for display; abstract addresses are shown with a leading `@`.
    var display: String {
        var bytes = Array(withUnsafeBytes(of: storage.sun_path) { Array($0) }.prefix(max(0, Int(length) - 2)))
        if bytes.first == 0 { bytes[0] = UInt8(ascii: "@") }
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        return bytes.isEmpty ? "(unnamed)" : String(decoding: bytes, as: UTF8.self)
    }

    /// True when the sender bound no address, so it cannot be answered.
    var isUnnamed: Bool { Int(length) <= MemoryLayout<sa_family_t>.size }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

enum Socket {
    /// SHUT_RDWR, which Glibc exports as an enum case only in some build configurations.
    static let shutRDWR: Int32 = 2

    /// Creates a close-on-exec socket. Blocking on purpose: io_uring tries every request without
    /// blocking first and arms a poll on EAGAIN, which it would not do for an O_NONBLOCK file.
    static func make(_ type: Int32, domain: Int32 = AF_UNIX) throws(SwitchError) -> Int32 {
        let fd = socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SwitchError("socket: \(errnoText(errno))") }
        return fd
    }

    /// Binds a new unix socket of `type` at `path`, replacing a stale file there.
    static func bindUnix(_ type: Int32, path: String) throws(SwitchError) -> Int32 {
        guard let address = UnixAddress(path: path) else {
            throw SwitchError("socket path \(path) is longer than \(UnixAddress.maxPathLength) bytes")
        }
        let fd = try make(type)
        unlink(path)
        let r = address.withSockaddr { bind(fd, $0, $1) }
        guard r == 0 else {
            let e = errno
            close(fd)
            throw SwitchError("bind \(path): \(errnoText(e))")
        }
        return fd
    }

    /// A listening unix stream socket at `path`.
    static func listenUnix(path: String) throws(SwitchError) -> Int32 {
        let fd = try bindUnix(Int32(SOCK_STREAM.rawValue), path: path)
        guard listen(fd, 128) == 0 else {
            let e = errno
            close(fd)
            throw SwitchError("listen \(path): \(errnoText(e))")
        }
        return fd
    }

    /// Connects `fd` to `address`; returns 0 or the errno.
    static func connect(_ fd: Int32, to address: UnixAddress) -> Int32 {
        while true {
            let r = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    /// Sets an integer socket option, ignoring failure (buffer sizes are best effort).
    @discardableResult
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var v = value
        return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// A non-blocking, close-on-exec UDP socket of `family` (AF_INET, AF_INET6), or -1 (errno set).
    static func udp(_ family: Int32) -> Int32 {
        socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    /// A connected pair of close-on-exec unix sockets of `type` (blocking, like `make`).
    static func pair(_ type: Int32) throws(SwitchError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SwitchError("socketpair: \(errnoText(errno))")
        }
        return (fds[0], fds[1])
    }

    /// Closes `fd` with an RST instead of an orderly FIN (SO_LINGER 0), for stream peers we reset.
    static func reset(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        _ = shutdown(fd, Socket.shutRDWR)
    }
}

/// Runs a program (absolute path or found on PATH) and waits; returns its exit status and output.
func runProgram(_ argv: [String], input: String? = nil) -> (status: Int32, output: String) {
    var pipeFDs: [Int32] = [0, 0]
    let p = sw_pipe_cloexec(&pipeFDs)
    guard p == 0 else { return (-1, "pipe: \(errnoText(-p))") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
    defer { posix_spawn_file_actions_destroy(&actions) }
    // Standard input: `input` written into a pipe up front (small texts only: at most a pipe's
    // 64 KiB buffer, which rulesets stay far below), else /dev/null.
    var inputFDs: [Int32] = [-1, -1]
    if let input {
        let q = sw_pipe_cloexec(&inputFDs)
        guard q == 0 else { close(pipeFDs[0]); close(pipeFDs[1]); return (-1, "pipe: \(errnoText(-q))") }
        let bytes = Array(input.utf8)
        guard bytes.count <= 60_000, bytes.withUnsafeBytes({ write(inputFDs[1], $0.baseAddress, $0.count) }) == bytes.count else {
            for fd in pipeFDs + inputFDs { close(fd) }
            return (-1, "\(argv[0]): cannot write its input")
        }
        close(inputFDs[1])
        posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    defer { if inputFDs[0] >= 0 { close(inputFDs[0]) } }
    var cargs = argv.map { strdup($0) }
    cargs.append(nil)
    defer { cargs.forEach { free($0) } }
    var pid: pid_t = 0
    let r = posix_spawnp(&pid, argv[0], &actions, nil, cargs, environ)
    close(pipeFDs[1])
    guard r == 0 else {
        close(pipeFDs[0])
        return (-1, "\(argv[0]): \(errnoText(r))")
    }
    var output = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
        if n > 0 { output += chunk[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
    }
    close(pipeFDs[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exit, String(decoding: output, as: UTF8.self).trimmingTrailingNewlines())
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return String(s)
    }
}

extension Socket {
    /// MSG_NOSIGNAL and MSG_DONTWAIT by value. Glibc declares them in an anonymous enum that the C
    /// modules including <sys/socket.h> textually (CLiburing, CPcap) declare again; in a compile batch
    /// the importer may attribute the constants to one of those, and a file that does not import it
    /// then cannot see them ("cannot find 'MSG_NOSIGNAL' in scope" on a fresh build).
    static let noSignal: Int32 = 0x4000
    static let dontWait: Int32 = 0x40
}
