// ControlClient: the client commands' side of the control socket, one request and one reply per call.
import Glibc

/// Sends requests to the daemon listening at `path`.
struct ControlClient {
    let path: String

    /// Sends `request` and returns the daemon's successful reply; a refusal throws its error message.
    func send(_ request: ControlRequest) throws -> ControlReply {
        let socket: UnixSocket
        do {
            socket = try UnixSocket.connect(to: path)
        } catch {
            throw connectError(error)
        }
        try socket.write(request.line)
        var reader = LineReader(limit: Int.max)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try socket.read(into: &buffer)
            if count == 0 {
                guard let last = reader.finish() else { throw ControlError("switchd at \(path) closed the connection without a reply") }
                return try Self.check(ControlReply(line: last))
            }
            if case .line(let line)? = reader.append(buffer[..<count]).first {
                return try Self.check(ControlReply(line: line))
            }
        }
    }

    /// Sends an `attach` request; returns the open connection (the port's lease) and the socket that came
    /// with the reply (close-on-exec, as everything this process opens).
    func attach(_ request: ControlRequest) throws -> (connection: UnixSocket, socket: Int32) {
        let socket: UnixSocket
        do {
            socket = try UnixSocket.connect(to: path)
        } catch {
            throw connectError(error)
        }
        try socket.write(request.line)
        var reader = LineReader(limit: Int.max)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var passed: Int32?
        while true {
            let count = try socket.read(into: &buffer, descriptor: &passed)
            let line: [UInt8]
            if count == 0 {
                guard let last = reader.finish() else { throw ControlError("switchd at \(path) closed the connection without a reply") }
                line = last
            } else if case .line(let complete)? = reader.append(buffer[..<count]).first {
                line = complete
            } else {
                continue
            }
            do {
                _ = try Self.check(ControlReply(line: line))
            } catch {
                if let passed { close(passed) }
                throw error
            }
            guard let passed else { throw ControlError("switchd sent no socket with its attach reply") }
            return (socket, passed)
        }
    }

    /// The usual reasons a connect fails, said in the user's terms.
    private func connectError(_ error: SocketError) -> any Error {
        switch error.errno {
        case ENOENT, ECONNREFUSED: return ControlError("no switchd running at \(path)")
        case EACCES: return ControlError("permission denied on \(path)")
        default: return error
        }
    }

    private static func check(_ reply: ControlReply) throws(ControlError) -> ControlReply {
        guard reply.ok else { throw ControlError(reply.error ?? "request failed without a message") }
        return reply
    }
}
