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
