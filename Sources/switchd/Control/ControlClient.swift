// ControlClient: the client commands' side of the control socket, one request and one reply per call.
import Glibc
import SwitchSys

/// Sends requests to the daemon listening at `path`.
struct ControlClient {
    let path: String

    /// Sends `request` and returns the daemon's successful reply; a refusal throws its error message.
    func send(_ request: ControlRequest) throws -> ControlReply {
        let (reply, _, passed) = try exchange(request)
        if let passed { Descriptor.close(passed) }  // not asked for
        return reply
    }

    /// Sends an `attach` request; returns the open connection (the port's lease) and the socket that came
    /// with the reply (close-on-exec, as everything this process opens).
    func attach(_ request: ControlRequest) throws -> (connection: UnixSocket, socket: Int32) {
        let (_, connection, passed) = try exchange(request)
        guard let passed else { throw ControlError("switchd sent no socket with its attach reply") }
        return (connection, passed)
    }

    /// One request and its reply line on a new connection, with the descriptor the reply passed,
    /// if any (closed when the reply is a refusal). The connection stays open for the caller.
    private func exchange(_ request: ControlRequest) throws -> (reply: ControlReply, connection: UnixSocket, passed: Int32?) {
        let socket: UnixSocket
        do {
            socket = try UnixSocket.connect(to: path)
        } catch {
            throw connectError(error)
        }
        let (reply, passed) = try Self.exchange(request, on: socket, path: path)
        return (reply, socket, passed)
    }

    /// Writes `request` on the connected `socket` and reads the reply line, with the descriptor it passed
    /// (closed when the reply is a refusal). A reply the daemon wrote before closing on us (a refused
    /// connection) is read and thrown even when writing the request failed.
    static func exchange(_ request: ControlRequest, on socket: UnixSocket, path: String) throws -> (reply: ControlReply, passed: Int32?) {
        let writeError = try Self.sendRequest(request.line, on: socket)
        var reader = LineReader(limit: Int.max)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var passed: Int32?
        while true {
            let count: Int
            do {
                count = try socket.read(into: &buffer, descriptor: &passed)
            } catch {
                guard error.errno == .ECONNRESET else { throw error }
                count = 0  // closed with our request unread: what it wrote before is read already
            }
            let line: [UInt8]
            if count == 0 {
                guard let last = reader.finish() else { throw Self.noReply(path: path, writeError: writeError) }
                line = last
            } else if case .line(let complete)? = reader.append(buffer[..<count]).first {
                line = complete
            } else {
                continue
            }
            do {
                return (try Self.check(ControlReply(line: line)), passed)
            } catch {
                if let passed { Descriptor.close(passed) }
                throw error
            }
        }
    }

    /// Writes a request line. When switchd has closed the connection already (EPIPE, ECONNRESET: it refused
    /// the connection, e.g. over a connection limit), its reply may still be waiting to be read: that error is
    /// returned, not thrown, so that the caller reads the reply and shows the daemon's reason. Other errors throw.
    static func sendRequest(_ line: [UInt8], on socket: UnixSocket) throws(SysError) -> SysError? {
        do {
            try socket.write(line)
            return nil
        } catch {
            guard error.errno == .EPIPE || error.errno == .ECONNRESET else { throw error }
            return error
        }
    }

    /// The error when the connection ends without a reply line (after a failed write, if `writeError`).
    static func noReply(path: String, writeError: SysError?) -> ControlError {
        if let writeError {
            return ControlError("switchd at \(path) closed the connection before reading the request (\(writeError)) and sent no reason")
        }
        return ControlError("switchd at \(path) closed the connection without a reply")
    }

    /// The usual reasons a connect fails, said in the user's terms.
    private func connectError(_ error: SysError) -> any Error {
        switch error.errno {
        case .ENOENT, .ECONNREFUSED: return ControlError("no switchd running at \(path)")
        case .EACCES: return ControlError("permission denied on \(path)")
        default: return error
        }
    }

    private static func check(_ reply: ControlReply) throws(ControlError) -> ControlReply {
        guard reply.ok else { throw ControlError(reply.error ?? "request failed without a message") }
        return reply
    }
}
