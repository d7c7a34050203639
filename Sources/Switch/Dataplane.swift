// Dataplane: the public face of the forwarding thread (start, stop, ports, status).
import Proto

/// The switch: owns the forwarding thread and every network's sockets and ports.
/// All methods are safe to call from any thread other than the forwarding thread.
public final class Dataplane: @unchecked Sendable {
    /// Creates every network's listening sockets under `runDir/NAME/` and its configured ports.
    public init(runDir: String, networks: [NetworkSpec]) throws(SwitchError) {
        fatalError("unimplemented")
    }

    /// Starts the forwarding thread.
    public func start() throws(SwitchError) { fatalError("unimplemented") }

    /// Stops the forwarding thread, closes every port, removes sockets and TAP devices. Idempotent.
    public func shutdown() { fatalError("unimplemented") }

    /// Adds a port at run time; returns its id.
    public func addPort(network: String, spec: PortSpec) throws(SwitchError) -> String { fatalError("unimplemented") }

    /// Removes a port by id.
    public func removePort(network: String, id: String) throws(SwitchError) { fatalError("unimplemented") }

    /// A snapshot of every network and port.
    public func status() -> [NetworkStatus] { fatalError("unimplemented") }
}
