// ControlServer: listens on RUNDIR/control.sock and serves each connection on its own thread.
import Foundation
import Glibc
import Switch

/// The daemon's side of the control socket. Requests never reach the switch unchecked: every line goes
/// through `ControlService`, and a bad line only ever costs its own connection a reply.
final class ControlServer: @unchecked Sendable {
    let path: String
    /// At most this many connections are served at once; more are told so and closed.
    static let maxConnections = 64

    private let listener: UnixSocket
    private let lock = NSLock()
    private var connections = 0
    private var stopped = false

    /// Claims `path` and listens on it with mode 0660, group `group` when given.
    /// Refuses when another daemon answers on `path`; removes a stale socket left by one that died.
    init(path: String, group: String?) throws {
        self.path = path
        try Self.removeStale(path)
        listener = try UnixSocket.listen(at: path)
        do {
            try Self.setOwnership(path, group: group)
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Starts accepting connections, each answered by `service`.
    func serve(_ service: ControlService) {
        let thread = Thread { [self] in acceptLoop(service) }
        thread.name = "control"
        thread.start()
    }

    /// Stops accepting and removes the socket file. Connections already open finish their current request.
    func stop() {
        lock.withLock { stopped = true }
        unlink(path)
        listener.shutdownBoth()
    }

    private func acceptLoop(_ service: ControlService) {
        while true {
            let connection: UnixSocket
            do {
                connection = try listener.accept()
            } catch {
                if lock.withLock({ stopped }) { return }
                Log.warning("control socket: \(error)")
                usleep(100_000) // EMFILE and friends: do not spin
                continue
            }
            let admitted = lock.withLock { () -> Bool in
                guard connections < Self.maxConnections else { return false }
                connections += 1
                return true
            }
            guard admitted else {
                try? connection.write(ControlReply.failure("too many control connections").line)
                continue
            }
            let thread = Thread { [self] in
                serveConnection(connection, service)
                lock.withLock { connections -= 1 }
            }
            thread.name = "control-conn"
            thread.start()
        }
    }

    /// Answers each line of one connection until it closes or sends a line over the limit.
    private func serveConnection(_ connection: UnixSocket, _ service: ControlService) {
        let peer: PeerCredentials
        do {
            peer = try connection.peerCredentials()
        } catch {
            Log.warning("control connection: \(error)")
            return
        }
        var reader = LineReader()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let session = ControlSession()
        defer { session.close() }
        do {
            while true {
                let count = try connection.read(into: &buffer)
                if count == 0 {
                    if let last = reader.finish(), !Self.isBlank(last) {
                        try respond(to: last, on: connection, service, peer, session)
                    }
                    return
                }
                for event in reader.append(buffer[..<count]) {
                    switch event {
                    case .line(let line):
                        guard !Self.isBlank(line) else { continue }
                        try respond(to: line, on: connection, service, peer, session)
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

    private static func isBlank(_ line: [UInt8]) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    /// Refuses to start when a daemon answers on `path`; unlinks a socket nobody listens on.
    private static func removeStale(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlError("\(path) exists and is not a socket")
        }
        do {
            _ = try UnixSocket.connect(to: path)
            throw ControlError("another switchd is already running at \(path)")
        } catch let error as SocketError where error.errno == ECONNREFUSED || error.errno == ENOENT {
            Log.info("removing stale control socket \(path)")
            unlink(path)
        }
    }

    /// Mode 0660 and, with `controlGroup`, that group (DESIGN §6).
    private static func setOwnership(_ path: String, group: String?) throws {
        if let group {
            guard let entry = getgrnam(group) else { throw ControlError("controlGroup \(group) does not exist") }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                throw SocketError(call: "chown(group \(group))", path: path, errno: errno)
            }
        }
        guard chmod(path, 0o660) == 0 else { throw SocketError(call: "chmod", path: path, errno: errno) }
    }

    /// Writes the reply to one line; a reply that starts a capture passes its socket in the same sendmsg.
    private func respond(to line: [UInt8], on connection: UnixSocket, _ service: ControlService, _ peer: PeerCredentials,
                         _ session: ControlSession) throws {
        let reply = service.reply(to: line, from: peer, session: session).line
        guard let fd = session.takePassing() else { return try connection.write(reply) }
        defer { close(fd) }
        try connection.write(reply, passing: fd)
    }
}
