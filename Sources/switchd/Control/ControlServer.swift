// ControlServer: listens on RUNDIR/control.sock and serves each connection on its own thread.
import Foundation
import Glibc
import Switch
import SwitchSys

/// The daemon's side of the control socket. Requests never reach the switch unchecked: every line goes
/// through `ControlService`, and a bad line only ever costs its own connection a reply.
final class ControlServer: @unchecked Sendable {
    let path: String
    /// How many connections that hold nothing are served at once, per uid and in all, and how long they
    /// may stay silent (`ConnectionLimits.standard` unless a test says otherwise).
    let limits: ConnectionLimits

    private let listener: UnixSocket
    private let lock = Lock()
    /// Open connections that hold nothing, by uid; a refused one is told why and closed.
    private var admission: ControlAdmission
    /// Refusals as log lines, at most one a second per uid.
    private var refusals = RefusalLog()
    private var stopped = false
    /// False for a socket systemd passed (socket activation): the socket and its file stay systemd's,
    /// so `stop` neither shuts it down nor unlinks it, and connections not yet accepted wait for the next start.
    let ownsSocket: Bool
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    /// Claims `path` and listens on it with mode 0660, group `group` when given.
    /// Refuses when another daemon answers on `path`; removes a stale socket left by one that died.
    init(path: String, group: String?, limits: ConnectionLimits = .standard) throws {
        self.path = path
        self.limits = limits
        admission = ControlAdmission(limits: limits)
        ownsSocket = true
        try Self.removeStale(path)
        listener = try UnixSocket.listen(at: path)
        do {
            try Self.setOwnership(path, group: group)
        } catch {
            File.remove(path)
            throw error
        }
    }

    /// Serves a listening socket passed by systemd (`LISTEN_FDS`); `path` is where it is bound.
    init(adopting fd: Int32, limits: ConnectionLimits = .standard) throws {
        self.limits = limits
        admission = ControlAdmission(limits: limits)
        let adopted = try UnixSocket.adoptListening(fd: fd)
        listener = adopted.socket
        path = adopted.path
        ownsSocket = false
    }

    /// Starts accepting connections, each answered by `service`.
    func serve(_ service: ControlService) {
        let thread = Thread { [self] in acceptLoop(service) }
        thread.name = "control"
        thread.start()
    }

    /// Stops accepting and removes the socket file. Connections already open finish their current request.
    /// An adopted socket is left as it is (waiting up to a second for the accept loop to let go of it).
    func stop() {
        lock.withLock { stopped = true }
        if ownsSocket {
            File.remove(path)
            listener.shutdownBoth()
        } else {
            _ = acceptLoopDone.wait(timeout: .now() + 1)
        }
    }

    private func acceptLoop(_ service: ControlService) {
        defer { acceptLoopDone.signal() }
        while true {
            if !ownsSocket {
                // Never shut down a socket systemd owns: look at `stopped` between short waits instead.
                while !listener.waitReadable(milliseconds: 250) {
                    if lock.withLock({ stopped }) { return }
                }
                if lock.withLock({ stopped }) { return }
            }
            let connection: UnixSocket
            do {
                connection = try listener.accept()
            } catch {
                if lock.withLock({ stopped }) { return }
                Log.warning("control socket: \(error)")
                PosixThread.sleep(milliseconds: 100) // EMFILE and friends: do not spin
                continue
            }
            let peer: PeerCredentials
            do {
                let credentials = try connection.peerCredentials()
                peer = PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid,
                                       groups: credentials.groups)
            } catch {
                Log.warning("control connection: \(error)")
                continue
            }
            let privileged = service.access.mayChange(peer)
            guard admit(peer, privileged: privileged, connection: connection) else { continue }
            // Silent for limits.idleTimeout, or not reading a reply for as long: closed (a lease lifts this).
            connection.setTimeouts(seconds: limits.idleTimeout)
            let thread = Thread { [self] in
                serveConnection(connection, peer: peer, privileged: privileged, service)
            }
            thread.name = "control-conn"
            thread.start()
        }
    }

    /// Answers each line of one connection until it closes, sends a line over the limit or something that
    /// is not a request at all. Ports it attached (its leases) go when it ends.
    private func serveConnection(_ connection: UnixSocket, peer: PeerCredentials, privileged: Bool, _ service: ControlService) {
        var leases: [AttachLease] = []
        // Captures live in the session; like attached ports, the connection is their lease.
        let session = ControlSession()
        /// Whether this connection still holds a slot of `admission` (a lease holder does not).
        var counted = true
        defer {
            session.close()
            for lease in leases { service.release(lease) }
            if counted { lock.withLock { admission.release(uid: peer.uid, privileged: privileged) } }
            connection.shutdownBoth()  // the peer sees the end now, whoever still holds the object
        }
        /// A lease lasts as long as its client: no idle timeout, and no longer counted by `admission`
        /// (the port and capture limits bound these; only privileged peers get leases).
        func becomeLease() {
            connection.setTimeouts(seconds: 0)
            if counted { lock.withLock { admission.release(uid: peer.uid, privileged: privileged) } }
            counted = false
        }
        /// Answers one line; false when the connection should close.
        func answer(_ line: [UInt8]) throws -> Bool {
            let response = service.respond(to: line, from: peer, session: session)
            if let (lease, port) = response.attached {
                defer { Descriptor.close(port.clientFD) }
                do {
                    try connection.write(response.reply.line, passing: port.clientFD)
                } catch {
                    service.release(lease)
                    throw error
                }
                becomeLease()
                leases.append(lease)
                Log.info("network \(lease.network): port \(lease.port) attached for pid \(peer.pid) (uid \(peer.uid))")
            } else if let fd = session.takePassing() {
                // A reply that starts a capture passes its socket in the same sendmsg.
                defer { Descriptor.close(fd) }
                try connection.write(response.reply.line, passing: fd)
                becomeLease()
            } else {
                try connection.write(response.reply.line)
            }
            return !response.closesConnection
        }
        var reader = LineReader()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        do {
            while true {
                let count = try connection.read(into: &buffer)
                if count == 0 {
                    if let last = reader.finish(), !Self.isBlank(last) { _ = try answer(last) }
                    return
                }
                for event in reader.append(buffer[..<count]) {
                    switch event {
                    case .line(let line):
                        guard !Self.isBlank(line) else { continue }
                        if try !answer(line) {
                            connection.closeAfterDraining()
                            return
                        }
                    case .tooLong:
                        try connection.write(ControlReply.failure("request longer than \(reader.limit) bytes").line)
                        connection.closeAfterDraining()
                        return
                    }
                }
            }
        } catch {
            Log.debug("control connection from pid \(peer.pid): \(error)")
        }
    }

    /// Takes a slot for a new connection from `peer`, or writes the refusal line to it (without waiting:
    /// the accept loop never blocks on a peer), logs it at most once a second per uid, and returns false
    /// (the caller drops the connection, which closes it).
    private func admit(_ peer: PeerCredentials, privileged: Bool, connection: UnixSocket) -> Bool {
        let now = IdleWatch.monotonicSeconds()
        let (refusal, lines) = lock.withLock { () -> (String?, [String]) in
            let refusal = admission.admit(uid: peer.uid, privileged: privileged)
            var lines: [String] = []
            if let refusal, let line = refusals.refused(uid: peer.uid, pid: peer.pid, reason: refusal, now: now) {
                lines.append(line)
            }
            return (refusal, lines + refusals.flush(now: now))
        }
        for line in lines { Log.warning(line) }
        guard let refusal else { return true }
        try? connection.write(ControlReply.failure(refusal).line, waiting: false)
        return false
    }

    private static func isBlank(_ line: [UInt8]) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    /// Refuses to start when a daemon answers on `path`; unlinks a socket nobody listens on.
    private static func removeStale(_ path: String) throws {
        guard let kind = File.kind(at: path) else { return }
        guard kind == .socket else {
            throw ControlError("\(path) exists and is not a socket")
        }
        do {
            _ = try UnixSocket.connect(to: path)
            throw ControlError("another switchd is already running at \(path)")
        } catch let error as SysError where error.errno == .ECONNREFUSED || error.errno == .ENOENT {
            Log.info("removing stale control socket \(path)")
            File.remove(path)
        }
    }

    /// Mode 0660 and, with `controlGroup`, that group (docs/DESIGN.md §6).
    private static func setOwnership(_ path: String, group: String?) throws {
        if let group {
            guard let gid = File.groupID(named: group) else { throw ControlError("controlGroup \(group) does not exist") }
            try File.setGroup(path, gid: gid, groupName: group)
        }
        try File.setMode(path, 0o660)
    }
}

extension UnixSocket {
    /// Takes over `fd` as an already listening control socket (systemd socket activation), after checking
    /// that it is one: AF_UNIX, SOCK_STREAM, listening. Returns the socket and the path it is bound to.
    static func adoptListening(fd: Int32) throws(ControlError) -> (socket: UnixSocket, path: String) {
        guard let info = UnixSocket.inspect(fd: fd) else {
            throw ControlError("socket activation: fd \(fd) is not a socket (\(Errno.current))")
        }
        guard info.domain == AF_UNIX, info.type == Int32(SOCK_STREAM.rawValue) else {
            throw ControlError("socket activation: fd \(fd) is not an AF_UNIX SOCK_STREAM socket (ListenStream= must be a path)")
        }
        guard info.listening else { throw ControlError("socket activation: fd \(fd) is not listening") }
        UnixSocket.setCloseOnExec(fd)
        return (UnixSocket(fd: fd), info.path)
    }
}
