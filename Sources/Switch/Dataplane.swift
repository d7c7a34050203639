// Dataplane: the public face of the forwarding thread (start, stop, ports, status).
import Glibc
import Proto
import SwitchSys

/// One network of the switch: owns its forwarding thread, its sockets and its ports (Switchboard
/// runs one per network). All methods are safe to call from any thread other than the forwarding thread.
public final class Dataplane: @unchecked Sendable {
    private let runDir: String
    private let spec: NetworkSpec
    private var sockets: NetworkSockets?
    private let commands = CommandQueue()
    private let loop: ForwardingLoop
    /// Writes the lease files off the forwarding thread (Housekeeper.swift).
    private let housekeeper = Housekeeper()
    private var thread: pthread_t? = nil
    private var stopped = false
    private let mutex = Lock()

    /// Creates the network's listening sockets under `runDir/NAME/` and its configured ports;
    /// DHCP leases are kept under `stateDir/NAME/` (in memory only when nil).
    public init(runDir: String, stateDir: String? = nil, network spec: NetworkSpec) throws(SwitchError) {
        self.runDir = runDir
        self.spec = spec
        do throws(SwitchError) {
            let dir = "\(runDir)/\(spec.name)"
            do { try File.makeDirectory(dir, mode: 0o755) } catch { throw SwitchError("cannot create \(dir): \(error.errno)") }
            sockets = NetworkSockets()  // from here on, a failure removes the directory
            sockets!.dgram = try Self.bindDgram(path: "\(dir)/dgram.sock")
            sockets!.stream = try Self.listenStream(path: "\(dir)/stream.sock")
            sockets!.dgramOffload = try Self.bindDgram(path: "\(dir)/dgram-offload.sock")
            sockets!.streamOffload = try Self.listenStream(path: "\(dir)/stream-offload.sock")
            sockets!.vhostUser = try Self.listenStream(path: "\(dir)/vhost-user.sock")
            if let tunnel = spec.vxlan { sockets!.vxlan = try VXLANSocketPair.open(tunnel) }
            loop = try ForwardingLoop(spec: spec, sockets: sockets!, stateDir: stateDir, commands: commands,
                                      housekeeper: housekeeper)
        } catch {
            Self.removeSockets(sockets, runDir: runDir, spec: spec)
            throw error
        }
        commands.attach(eventFD: loop.eventFD)
        // The uplink first: it is the gateway the other ports' guests talk to.
        let uplink: [PortSpec?] = spec.uplink == nil ? [] : [nil]
        for port in uplink + spec.ports.map(Optional.some) {
            do throws(SwitchError) {
                let device: OpenedDevice
                if let port { device = try Self.openPort(port, network: spec) } else { device = try Uplink.open(spec) }
                guard loop.addDevicePort(kind: device.kind, fd: device.fd, headerSize: device.headerSize,
                                         info: device.info) != nil else {
                    loop.closeUnused(device)
                    throw SwitchError("too many ports")
                }
            } catch {
                shutdown()
                throw error.inNetwork(spec.name)
            }
        }
    }

    /// Starts the housekeeping thread, then the forwarding thread.
    public func start() throws(SwitchError) {
        try housekeeper.start()
        let loop = self.loop
        do { thread = try PosixThread.start("the forwarding thread") { loop.run() } } catch { throw SwitchError(error) }
    }

    /// Stops the forwarding thread, closes every port, removes sockets and TAP devices. Idempotent.
    public func shutdown() {
        mutex.lock()
        defer { mutex.unlock() }
        guard !stopped else { return }
        stopped = true
        if let thread {
            commands.post(LoopCommand(.stop))
            PosixThread.join(thread)
            self.thread = nil
        } else {
            loop.closeWithoutRunning()  // ports opened before start(): close them here
        }
        housekeeper.stop()  // after the loop: its last lease snapshot is written before we return
        closeSockets()
    }

    private func closeSockets() {
        Self.removeSockets(sockets, runDir: runDir, spec: spec)
        sockets = nil
    }

    /// The file names of a network's sockets under RUNDIR/NAME/.
    static let socketNames = ["dgram.sock", "stream.sock", "dgram-offload.sock", "stream-offload.sock", "vhost-user.sock"]

    private static func listenStream(path: String) throws(SwitchError) -> Int32 {
        do { return try Socket.listening(unixPath: path) } catch { throw SwitchError(error) }
    }

    private static func bindDgram(path: String) throws(SwitchError) -> Int32 {
        let fd: Int32
        do { fd = try Socket.bound(Int32(SOCK_DGRAM.rawValue), unixPath: path) } catch { throw SwitchError(error) }
        // Replies to peers that only accept datagrams from this socket go out through it: a large
        // send buffer keeps a few frames per peer in flight (docs/DESIGN.md §3).
        Socket.setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
        Socket.setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        return fd
    }

    /// Closes the sockets and removes their directory (nothing when it was never created).
    private static func removeSockets(_ sockets: NetworkSockets?, runDir: String, spec: NetworkSpec) {
        guard let sockets else { return }
        for fd in [sockets.dgram, sockets.stream, sockets.dgramOffload, sockets.streamOffload, sockets.vhostUser]
        where fd >= 0 { Descriptor.close(fd) }
        sockets.vxlan?.close()
        let dir = "\(runDir)/\(spec.name)"
        for name in socketNames { File.remove("\(dir)/\(name)") }
        File.removeDirectory(dir)
    }

    /// Checks that a request names this dataplane's network.
    private func checkNetwork(_ name: String) throws(SwitchError) {
        guard name == spec.name else { throw SwitchError("no network named \(name)") }
    }

    private func run(_ command: LoopCommand) throws(SwitchError) {
        guard runOnLoop(command, runHere: false) else { throw SwitchError("the switch is not running") }
    }

    /// Adds a port at run time; returns its id.
    public func addPort(network name: String, spec: PortSpec) throws(SwitchError) -> String {
        try checkNetwork(name)
        let device = try Self.openPort(spec, network: self.spec)
        let command = LoopCommand(.addDevice(device))
        do throws(SwitchError) {
            try run(command)
        } catch {
            loop.closeUnused(device)
            throw error
        }
        return try command.portID.get()
    }

    /// Removes a port by id.
    public func removePort(network name: String, id: String) throws(SwitchError) {
        try checkNetwork(name)
        let command = LoopCommand(.remove(id: id))
        try run(command)
        _ = try command.portID.get()
    }

    /// Asks the network's DHCP leases (on the forwarding thread) a DNS host-table question.
    func lookup(_ question: HostQuestion) -> HostAnswer {
        let command = LoopCommand(.lookup(question))
        do { try run(command) } catch { return .none }
        return command.answer
    }

    /// The Linux thread id of the forwarding thread (for tests; read after a round trip to the loop).
    var forwardingThreadID: Int32 {
        _ = status()
        return loop.threadID
    }

    /// A snapshot of the network and its ports: one element, none when the switch is not running.
    public func status() -> [NetworkStatus] {
        let command = LoopCommand(.status)
        do { try run(command) } catch { return [] }
        guard var network = command.network else { return [] }
        let dir = "\(runDir)/\(network.name)"
        network.sockets = SocketPaths(dgram: "\(dir)/dgram.sock", stream: "\(dir)/stream.sock",
                                      dgramOffload: "\(dir)/dgram-offload.sock",
                                      streamOffload: "\(dir)/stream-offload.sock",
                                      vhostUser: "\(dir)/vhost-user.sock")
        return [network]
    }

    // MARK: - Opening ports (control thread)

    /// Opens the fd of a port described by `spec`, ready for the loop.
    static func openPort(_ spec: PortSpec, network: NetworkSpec) throws(SwitchError) -> OpenedDevice {
        switch spec {
        case .tap(let name, let netns, let mac):
            let fd = try TAP.create(name: name, netns: netns, mac: mac ?? TAP.stableMAC(name: name), mtu: network.mtu)
            return OpenedDevice(kind: .tap, fd: fd, headerSize: VirtioNetHeader.size,
                                info: PortInfo(id: name, peer: netns.map { "\(name)@\($0)" } ?? name,
                                               interface: name, netns: netns, security: network.portSecurityByPort[name]))
        case .link(let interface):
            let (fd, headerSize, hadIPv6, arpIgnore) = try Link.open(interface: interface)
            return OpenedDevice(kind: .link, fd: fd, headerSize: headerSize,
                                info: PortInfo(id: interface, peer: interface, interface: interface, restoreIPv6: hadIPv6,
                                               restoreARPIgnore: arpIgnore, security: network.portSecurityByPort[interface]))
        }
    }

    // MARK: - Captures (Capture.swift)

    /// Starts capturing the ingress of network `name`, of one port or all, through `filter` (every
    /// frame when nil). The records go to the returned capture's reader end (`takeReaderFD`).
    public func startCapture(network name: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture {
        try checkNetwork(name)
        let writer: Int32, reader: Int32
        do { (writer, reader) = try CaptureSocket.open() } catch { throw SwitchError(error) }
        let program = filter?.makeProgram()
        let command = LoopCommand(.addCapture(CaptureSetup(fd: writer, port: port, program: program)))
        do throws(SwitchError) {
            try run(command)
            return Capture(dataplane: self, ticket: try command.capture.get(), readerFD: reader)
        } catch {
            Descriptor.close(writer)
            Descriptor.close(reader)
            program?.deallocate()
            throw error
        }
    }

    /// Runs a command on the loop (every command goes through here). It is posted under the mutex `shutdown` posts `stop` under, so
    /// it is either queued before the stop (and run: the loop runs a batch in order) or not posted,
    /// never left waiting. Once the loop thread has exited (joined under that mutex) a `runHere`
    /// command runs on this thread instead, on state that is then ours: a capture's lease may end
    /// after its network stopped, and its counters are still wanted. False when the command did not run.
    @discardableResult
    func runOnLoop(_ command: LoopCommand, runHere: Bool = true) -> Bool {
        mutex.lock()
        if thread != nil && !stopped {
            commands.post(command)
            mutex.unlock()
            command.wait()
            return true
        }
        defer { mutex.unlock() }
        guard runHere else { return false }
        command.execute(on: loop)
        return true
    }
}

// MARK: - switchd attach, fdb, idle exit

extension Dataplane {
    /// Makes a socketpair of `kind`, keeps one end as a port of network `name` (a header-less offload
    /// peer with `offload`) and returns the other end for the client, with the port's id. `peer` is
    /// what `status` shows as the port's peer.
    public func attach(network name: String, kind: AttachKind, offload: Bool, peer: String) throws(SwitchError) -> AttachedPort {
        try checkNetwork(name)
        let ours: Int32, theirs: Int32
        do {
            (ours, theirs) = try Socket.connectedPair(kind == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue))
        } catch { throw SwitchError(error) }
        // Datagrams wait in the sender's buffer until read: 1 MiB each way keeps a burst in flight.
        for fd in [ours, theirs] { Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, 1 << 20) }
        let command = LoopCommand(.attach(fd: ours, kind: kind, offload: offload, peer: peer))
        do throws(SwitchError) {
            try run(command)
            return AttachedPort(id: try command.portID.get(), clientFD: theirs)
        } catch {
            // The loop took `ours` only if it made a port of it.
            if case .failure = command.portID { Descriptor.close(ours) }
            Descriptor.close(theirs)
            throw error
        }
    }

    /// Network `name`'s forwarding table: learned MACs, their port and age.
    public func fdb(network name: String) throws(SwitchError) -> [FDBEntry] {
        try checkNetwork(name)
        let command = LoopCommand(.fdb)
        try run(command)
        return command.fdbEntries
    }

    /// Ports of the network, the uplink not counted; 0 when the switch is not running.
    public func clientPortCount() -> Int {
        let command = LoopCommand(.clientPortCount)
        do { try run(command) } catch { return 0 }
        return command.count
    }
}

/// A TAP or link port opened by the control thread, on its way to the loop.
struct OpenedDevice {
    var kind: PortKind
    var fd: Int32
    var headerSize: Int
    var info: PortInfo
}
