// ControlService: answers control requests against a ControlHandler, checking who may change the switch.
import Glibc
import Proto
import Switch
import SwitchSys

/// What the control socket needs from the switch; `Switchboard` (and `Dataplane`) conform, tests use a fake.
protocol ControlHandler: AnyObject, Sendable {
    func status() -> [NetworkStatus]
    func addPort(network: String, spec: PortSpec) throws(SwitchError) -> String
    func removePort(network: String, id: String) throws(SwitchError)
    func attach(network: String, kind: AttachKind, offload: Bool, peer: String) throws(SwitchError) -> AttachedPort
    func fdb(network: String) throws(SwitchError) -> [FDBEntry]
    func startCapture(network: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture
    func addForwards(network: String, _ specs: [PortForwardSpec]) throws(SwitchError) -> [ForwardStatus]
    func removeForwards(network: String, id: String?, proto: ForwardProtocol?, hostAddress: IPAddress?,
                        hostPorts: PortRange?) throws(SwitchError) -> [String]
    func forwards(network: String) throws(SwitchError) -> [ForwardStatus]
}

extension ControlHandler {
    /// Port forwards belong to the switchboard (they need a network's uplink and table).
    func addForwards(network: String, _ specs: [PortForwardSpec]) throws(SwitchError) -> [ForwardStatus] {
        throw SwitchError("port forwards are not available here")
    }
    func removeForwards(network: String, id: String?, proto: ForwardProtocol?, hostAddress: IPAddress?,
                        hostPorts: PortRange?) throws(SwitchError) -> [String] {
        throw SwitchError("port forwards are not available here")
    }
    func forwards(network: String) throws(SwitchError) -> [ForwardStatus] { [] }
}

extension Dataplane: ControlHandler {}
extension Switchboard: ControlHandler {}

/// Who is on the other end of a control connection (`SO_PEERCRED`, and `SO_PEERGROUPS` for `groups`).
struct PeerCredentials: Equatable, Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
    /// Supplementary groups.
    var groups: [UInt32] = []
}

/// The group that may change the switch besides root (`controlGroup`), resolved when the daemon starts.
struct ControlGroup: Equatable, Sendable {
    var name: String
    var gid: UInt32
}

/// Who may change the switch (docs/DESIGN.md §6): root, the daemon's own user (who could ptrace it anyway), and
/// members of `controlGroup` by primary or supplementary group. Anyone who can connect may read.
struct AccessPolicy: Equatable, Sendable {
    var privilegedUIDs: Set<UInt32>
    var group: ControlGroup?

    func mayChange(_ peer: PeerCredentials) -> Bool {
        if privilegedUIDs.contains(peer.uid) { return true }
        guard let group else { return false }
        return peer.gid == group.gid || peer.groups.contains(group.gid)
    }

    /// The refusal of `op` to `peer`.
    func refusal(op: String, peer: PeerCredentials) -> String {
        let readers = "uid \(peer.uid) may only read status, leases, fdb and forward list"
        if let group {
            return "permission denied: \(op) needs root or membership of group \(group.name) (\(readers))"
        }
        return "permission denied: \(op) needs root (\(readers); controlGroup in the configuration names a group that may)"
    }
}

/// A port that lives as long as the control connection that asked for it (`attach`, docs/DESIGN.md §6).
struct AttachLease: Equatable, Sendable {
    var network: String
    var port: String
}

/// Turns request lines into reply lines. Stateless apart from the handler, so every connection thread shares one.
struct ControlService: Sendable {
    let handler: any ControlHandler
    let access: AccessPolicy

    init(handler: any ControlHandler, privilegedUIDs: Set<UInt32> = [0, Program.effectiveUserID], controlGroup: ControlGroup? = nil) {
        self.handler = handler
        self.access = AccessPolicy(privilegedUIDs: privilegedUIDs, group: controlGroup)
    }

    /// What one request line gets: the reply, for `attach` the socket to pass with it and the lease it
    /// starts, and whether the server should close the connection after replying.
    struct Response {
        var reply: ControlReply
        var attached: (lease: AttachLease, port: AttachedPort)? = nil
        var closesConnection = false
    }

    /// The reply to one request line (without its newline). Never throws: every failure is a reply.
    /// An `attach` made here is undone at once (its socket closed, its port removed): only the server,
    /// which can pass the socket on, uses `respond`.
    /// `session` is the connection's state: captures live there (and need one).
    func reply(to line: [UInt8], from peer: PeerCredentials, session: ControlSession? = nil) -> ControlReply {
        let response = respond(to: line, from: peer, session: session)
        if let attached = response.attached {
            Descriptor.close(attached.port.clientFD)
            release(attached.lease)
        }
        return response.reply
    }

    /// The response to one request line (without its newline); the caller owns an attached socket.
    func respond(to line: [UInt8], from peer: PeerCredentials, session: ControlSession? = nil) -> Response {
        let request: ControlRequest
        do {
            request = try ControlRequest(line: line)
        } catch {
            return Response(reply: .failure(error.description), closesConnection: error.closesConnection)
        }
        if request.changesSwitch, !access.mayChange(peer) {
            return Response(reply: .failure(access.refusal(op: request.op, peer: peer)))
        }
        do {
            switch request {
            case .status:
                return Response(reply: .success(networks: handler.status()))
            case .portAdd(let network, let spec):
                return Response(reply: .success(port: try handler.addPort(network: network, spec: spec)))
            case .portDel(let network, let port):
                try handler.removePort(network: network, id: port)
                return Response(reply: .success())
            case .attach(let network, let kind, let offload):
                let port = try handler.attach(network: network, kind: kind, offload: offload, peer: "attach:\(peer.pid)")
                return Response(reply: .success(port: port.id), attached: (AttachLease(network: network, port: port.id), port))
            case .fdb(let network):
                return Response(reply: .success(fdb: try handler.fdb(network: network)))
            case .capture(let network, let port, let filter):
                guard let session else { return Response(reply: .failure("capture needs a control connection that stays open")) }
                guard session.capture == nil else { return Response(reply: .failure("this connection already holds a capture")) }
                session.hold(try handler.startCapture(network: network, port: port, filter: filter))
                return Response(reply: .success())
            case .forwardAdd(let network, let forward):
                var reply = ControlReply.success()
                reply.forwards = try handler.addForwards(network: network, forward.specs)
                return Response(reply: reply)
            case .forwardDel(let network, let selector):
                var reply = ControlReply.success()
                switch selector {
                case .id(let id):
                    reply.removed = try handler.removeForwards(network: network, id: id, proto: nil, hostAddress: nil, hostPorts: nil)
                case .ports(let proto, let hostAddress, let hostPorts):
                    reply.removed = try handler.removeForwards(network: network, id: nil, proto: proto, hostAddress: hostAddress,
                                                               hostPorts: hostPorts)
                }
                return Response(reply: reply)
            case .forwardList(let network):
                var reply = ControlReply.success()
                reply.forwards = try handler.forwards(network: network)
                return Response(reply: reply)
            case .captureStats:
                guard let stats = session?.capture?.stats() else { return Response(reply: .failure("this connection holds no capture")) }
                var reply = ControlReply.success()
                reply.capture = stats
                return Response(reply: reply)
            }
        } catch {
            return Response(reply: .failure(error.description))
        }
    }

    /// Ends a lease: its port goes (unless it went already, e.g. a stream port at EOF).
    func release(_ lease: AttachLease) {
        Log.info("network \(lease.network): the switchd attach connection of port \(lease.port) closed")
        do {
            try handler.removePort(network: lease.network, id: lease.port)
        } catch {
            Log.debug("lease of \(lease.port) on \(lease.network) ended: \(error.description)")
        }
    }
}

/// What one control connection holds between its requests: a capture, which lasts as long as the
/// connection does (the connection is its lease, docs/DESIGN.md §6), and the fd its reply passes.
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
        if passing >= 0 { Descriptor.close(passing) }
        passing = -1
    }
}
