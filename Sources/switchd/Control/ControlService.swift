// ControlService: answers control requests against a ControlHandler, checking who may change the switch.
import Glibc
import Switch

/// What the control socket needs from the switch; `Switchboard` (and `Dataplane`) conform, tests use a fake.
protocol ControlHandler: AnyObject, Sendable {
    func status() -> [NetworkStatus]
    func addPort(network: String, spec: PortSpec) throws(SwitchError) -> String
    func removePort(network: String, id: String) throws(SwitchError)
    func startCapture(network: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture
}

extension Dataplane: ControlHandler {}
extension Switchboard: ControlHandler {}

/// Who is on the other end of a control connection (`SO_PEERCRED`).
struct PeerCredentials: Equatable, Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

/// Turns request lines into reply lines. Stateless apart from the handler, so every connection thread shares one.
struct ControlService: Sendable {
    let handler: any ControlHandler
    /// Users who may change the switch: root, and the daemon's own user (who could ptrace it anyway).
    let privilegedUIDs: Set<UInt32>

    init(handler: any ControlHandler, privilegedUIDs: Set<UInt32> = [0, geteuid()]) {
        self.handler = handler
        self.privilegedUIDs = privilegedUIDs
    }

    /// The reply to one request line (without its newline). Never throws: every failure is a reply.
    /// `session` is the connection's state: captures live there (and need one).
    func reply(to line: [UInt8], from peer: PeerCredentials, session: ControlSession? = nil) -> ControlReply {
        let request: ControlRequest
        do {
            request = try ControlRequest(line: line)
        } catch {
            return .failure(error.description)
        }
        // TODO(controlGroup): DESIGN §6 also lets members of `controlGroup` change things; that needs
        // SO_PEERGROUPS and lands with the group support. Until then only privilegedUIDs may.
        if request.changesSwitch, !privilegedUIDs.contains(peer.uid) {
            return .failure("permission denied: only root may change the switch (uid \(peer.uid) may only read status)")
        }
        do {
            switch request {
            case .status:
                return .success(networks: handler.status())
            case .portAdd(let network, let spec):
                return .success(port: try handler.addPort(network: network, spec: spec))
            case .portDel(let network, let port):
                try handler.removePort(network: network, id: port)
                return .success()
            case .capture(let network, let port, let filter):
                guard let session else { return .failure("capture needs a control connection that stays open") }
                guard session.capture == nil else { return .failure("this connection already holds a capture") }
                session.hold(try handler.startCapture(network: network, port: port, filter: filter))
                return .success()
            case .captureStats:
                guard let stats = session?.capture?.stats() else { return .failure("this connection holds no capture") }
                var reply = ControlReply.success()
                reply.capture = stats
                return reply
            }
        } catch {
            return .failure(error.description)
        }
    }
}

/// What one control connection holds between its requests: a capture, which lasts as long as the
/// connection does (the connection is its lease, DESIGN §6), and the fd its reply passes.
final class ControlSession {
    private(set) var capture: Capture?
    private var passing: Int32 = -1

    /// Keeps `capture` until the connection closes; its socket goes out with the next reply.
    func hold(_ capture: Capture) {
        self.capture = capture
        passing = capture.takeReaderFD()
    }

    /// The fd to pass with the reply being written (SCM_RIGHTS), if any; the caller closes it.
    func takePassing() -> Int32? {
        defer { passing = -1 }
        return passing >= 0 ? passing : nil
    }

    /// The connection has closed: what it held ends.
    func close() {
        capture?.end()
        capture = nil
        if passing >= 0 { Glibc.close(passing) }
        passing = -1
    }
}
