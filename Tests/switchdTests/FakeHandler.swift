// FakeHandler: a ControlHandler that records calls, standing in for the Dataplane.
import Foundation
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
        guard network == "lab", id == "p1" else { throw SwitchError("no port \(id) in \(network)") }
        lock.withLock { _removed.append((network, id)) }
    }

    func startCapture(network: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture {
        throw SwitchError("the fake switch cannot capture")
    }
}
