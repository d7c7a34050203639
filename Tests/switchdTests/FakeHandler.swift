// FakeHandler: a ControlHandler that records calls, standing in for the Dataplane.
import Foundation
import Glibc
import Switch
@testable import switchd

final class FakeHandler: ControlHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var _added: [(String, PortSpec)] = []
    private var _removed: [(String, String)] = []
    var networks: [NetworkStatus] = [
        NetworkStatus(name: "lab", mode: "isolated", subnet: "10.0.0.0/24", gateway: "10.0.0.1", mtu: 1500,
                      sockets: SocketPaths(dgram: "/run/switchd/lab/dgram.sock", stream: "/run/switchd/lab/stream.sock"),
                      ports: [PortStatus(id: "p1", kind: "tap", peer: "lab0@ns1", macs: ["02:00:00:00:00:01"],
                                         rx: TrafficCount(packets: 3, bytes: 180), drops: ["queueFull": 2])]),
    ]

    var added: [(String, PortSpec)] { lock.withLock { _added } }
    var removed: [(String, String)] { lock.withLock { _removed } }

    func status() -> [NetworkStatus] { networks }

    func addPort(network: String, spec: PortSpec) throws(SwitchError) -> String {
        guard network == "lab" else { throw SwitchError("no network \(network)") }
        return lock.withLock {
            _added.append((network, spec))
            return "p\(_added.count + 1)"
        }
    }

    func removePort(network: String, id: String) throws(SwitchError) {
        let attached = lock.withLock { _attached.contains { $0.id == id } }
        guard network == "lab", id == "p1" || attached else { throw SwitchError("no port \(id) in \(network)") }
        lock.withLock { _removed.append((network, id)) }
    }

    // attach: a real socketpair, whose port end the test can read (`attachedSockets`).
    private var _attached: [(id: String, kind: AttachKind, offload: Bool, peer: String, socket: Int32)] = []
    var attached: [(id: String, kind: AttachKind, offload: Bool, peer: String, socket: Int32)] { lock.withLock { _attached } }

    func attach(network: String, kind: AttachKind, offload: Bool, peer: String) throws(SwitchError) -> AttachedPort {
        guard network == "lab" else { throw SwitchError("no network \(network)") }
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, (kind == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)) | Int32(SOCK_CLOEXEC.rawValue),
                         0, &fds) == 0 else { throw SwitchError("socketpair failed") }
        return lock.withLock {
            let id = "\(kind.rawValue)-\(_attached.count + 1)"
            _attached.append((id, kind, offload, peer, fds[0]))
            return AttachedPort(id: id, clientFD: fds[1])
        }
    }

    let table = [FDBEntry(mac: "02:00:00:00:00:01", port: "p1", age: 3)]

    func fdb(network: String) throws(SwitchError) -> [FDBEntry] {
        guard network == "lab" else { throw SwitchError("no network \(network)") }
        return table
    }

    deinit { for port in _attached { close(port.socket) } }
    func startCapture(network: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture {
        throw SwitchError("the fake switch cannot capture")
    }
}
