// Dataplane: the public face of the forwarding thread (start, stop, ports, status).
import CSwitchShims
import Glibc
import Proto
import SwitchSys

/// The switch: owns the forwarding thread and every network's sockets and ports.
/// All methods are safe to call from any thread other than the forwarding thread.
public final class Dataplane: @unchecked Sendable {
    private let runDir: String
    private let specs: [NetworkSpec]
    private var sockets: [NetworkSockets] = []
    private let commands = CommandQueue()
    private let loop: ForwardingLoop
    /// Writes the lease files off the forwarding thread (Housekeeper.swift).
    private let housekeeper = Housekeeper()
    private var thread: pthread_t? = nil
    private var stopped = false
    private var mutex = pthread_mutex_t()

    /// Creates every network's listening sockets under `runDir/NAME/` and its configured ports;
    /// DHCP leases are kept under `stateDir/NAME/` (in memory only when nil).
    public init(runDir: String, stateDir: String? = nil, networks: [NetworkSpec]) throws(SwitchError) {
        self.runDir = runDir
        self.specs = networks
        pthread_mutex_init(&mutex, nil)
        do throws(SwitchError) {
            for spec in networks {
                let dir = "\(runDir)/\(spec.name)"
                if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                    throw SwitchError("cannot create \(dir): \(errnoText(errno))")
                }
                sockets.append(NetworkSockets())
                let i = sockets.count - 1
                sockets[i].dgram = try Self.bindDgram(path: "\(dir)/dgram.sock")
                sockets[i].stream = try Socket.listenUnix(path: "\(dir)/stream.sock")
                sockets[i].dgramOffload = try Self.bindDgram(path: "\(dir)/dgram-offload.sock")
                sockets[i].streamOffload = try Socket.listenUnix(path: "\(dir)/stream-offload.sock")
            }
            loop = try ForwardingLoop(specs: networks, sockets: sockets, stateDir: stateDir, commands: commands,
                                      housekeeper: housekeeper)
        } catch {
            Self.removeSockets(sockets, runDir: runDir, specs: networks)
            throw error
        }
        commands.attach(eventFD: loop.eventFD)
        for (n, spec) in networks.enumerated() {
            // The uplink first: it is the gateway the other ports' guests talk to.
            let uplink: [PortSpec?] = spec.uplink == nil ? [] : [nil]
            for port in uplink + spec.ports.map(Optional.some) {
                do throws(SwitchError) {
                    let device: OpenedDevice
                    if let port { device = try Self.openPort(port, network: spec) } else { device = try Uplink.open(spec) }
                    guard loop.addDevicePort(network: n, kind: device.kind, fd: device.fd,
                                             headerSize: device.headerSize, info: device.info) != nil else {
                        loop.closeUnused(device)
                        throw SwitchError("too many ports")
                    }
                } catch {
                    shutdown()
                    throw SwitchError("network \(spec.name): \(error.description)")
                }
            }
        }
    }

    /// Starts the housekeeping thread, then the forwarding thread.
    public func start() throws(SwitchError) {
        try housekeeper.start()
        let loop = self.loop
        thread = try startThread("the forwarding thread") { loop.run() }
    }

    /// Stops the forwarding thread, closes every port, removes sockets and TAP devices. Idempotent.
    public func shutdown() {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard !stopped else { return }
        stopped = true
        if let thread {
            commands.post(LoopCommand(.stop))
            pthread_join(thread, nil)
            self.thread = nil
        } else {
            loop.closeWithoutRunning()  // ports opened before start(): close them here
        }
        housekeeper.stop()  // after the loop: its last lease snapshot is written before we return
        closeSockets()
    }

    private func closeSockets() {
        Self.removeSockets(sockets, runDir: runDir, specs: specs)
        sockets = []
    }

    /// The file names of a network's sockets under RUNDIR/NAME/.
    static let socketNames = ["dgram.sock", "stream.sock", "dgram-offload.sock", "stream-offload.sock"]

    private static func bindDgram(path: String) throws(SwitchError) -> Int32 {
        let fd = try Socket.bindUnix(Int32(SOCK_DGRAM.rawValue), path: path)
        // Replies to peers that only accept datagrams from this socket go out through it: a large
        // send buffer keeps a few frames per peer in flight (DESIGN §3).
        Socket.setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
        Socket.setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        return fd
    }

    private static func removeSockets(_ sockets: [NetworkSockets], runDir: String, specs: [NetworkSpec]) {
        for (i, s) in sockets.enumerated() {
            for fd in [s.dgram, s.stream, s.dgramOffload, s.streamOffload] where fd >= 0 { close(fd) }
            let dir = "\(runDir)/\(specs[i].name)"
            for name in socketNames { unlink("\(dir)/\(name)") }
            rmdir(dir)
        }
    }

    private func network(_ name: String) throws(SwitchError) -> Int {
        guard let n = specs.firstIndex(where: { $0.name == name }) else {
            throw SwitchError("no network named \(name)")
        }
        return n
    }

    private func run(_ command: LoopCommand) throws(SwitchError) {
        guard runCaptureCommand(command, runHere: false) else { throw SwitchError("the switch is not running") }
    }

    /// Adds a port at run time; returns its id.
    public func addPort(network name: String, spec: PortSpec) throws(SwitchError) -> String {
        let n = try network(name)
        let device = try Self.openPort(spec, network: specs[n])
        let command = LoopCommand(.addDevice(network: n, device: device))
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
        let command = LoopCommand(.remove(network: try network(name), id: id))
        try run(command)
        _ = try command.portID.get()
    }

    /// Asks network `name`'s DHCP leases (on the forwarding thread) a DNS host-table question.
    func lookup(network n: Int, _ question: HostQuestion) -> HostAnswer {
        let command = LoopCommand(.lookup(network: n, question))
        do { try run(command) } catch { return .none }
        return command.answer
    }

    /// The Linux thread id of the forwarding thread (for tests; read after a round trip to the loop).
    var forwardingThreadID: Int32 {
        _ = status()
        return loop.threadID
    }

    /// A snapshot of every network and port.
    public func status() -> [NetworkStatus] {
        let command = LoopCommand(.status)
        do { try run(command) } catch { return [] }
        var networks = command.networks
        for i in networks.indices {
            let dir = "\(runDir)/\(networks[i].name)"
            networks[i].sockets = SocketPaths(dgram: "\(dir)/dgram.sock", stream: "\(dir)/stream.sock",
                                              dgramOffload: "\(dir)/dgram-offload.sock",
                                              streamOffload: "\(dir)/stream-offload.sock")
        }
        return networks
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
        let n = try network(name)
        let (writer, reader) = try CaptureSocket.pair()
        let program = filter?.makeProgram()
        let command = LoopCommand(.addCapture(network: n, CaptureSetup(fd: writer, port: port, program: program)))
        do throws(SwitchError) {
            try run(command)
            return Capture(dataplane: self, network: n, ticket: try command.capture.get(), readerFD: reader)
        } catch {
            close(writer)
            close(reader)
            program?.deallocate()
            throw error
        }
    }

    /// Runs a command on the loop. It is posted under the mutex `shutdown` posts `stop` under, so
    /// it is either queued before the stop (and run: the loop runs a batch in order) or not posted,
    /// never left waiting. Once the loop thread has exited (joined under that mutex) a `runHere`
    /// command runs on this thread instead, on state that is then ours: a capture's lease may end
    /// after its network stopped, and its counters are still wanted. False when the command did not run.
    @discardableResult
    func runCaptureCommand(_ command: LoopCommand, runHere: Bool = true) -> Bool {
        pthread_mutex_lock(&mutex)
        if thread != nil && !stopped {
            commands.post(command)
            pthread_mutex_unlock(&mutex)
            command.wait()
            return true
        }
        defer { pthread_mutex_unlock(&mutex) }
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
        let n = try network(name)
        let (ours, theirs) = try Socket.pair(kind == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue))
        // Datagrams wait in the sender's buffer until read: 1 MiB each way keeps a burst in flight.
        for fd in [ours, theirs] { Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, 1 << 20) }
        let command = LoopCommand(.attach(network: n, fd: ours, kind: kind, offload: offload, peer: peer))
        do throws(SwitchError) {
            try run(command)
            return AttachedPort(id: try command.portID.get(), clientFD: theirs)
        } catch {
            // The loop took `ours` only if it made a port of it.
            if case .failure = command.portID { close(ours) }
            close(theirs)
            throw error
        }
    }

    /// Network `name`'s forwarding table: learned MACs, their port and age.
    public func fdb(network name: String) throws(SwitchError) -> [FDBEntry] {
        let command = LoopCommand(.fdb(network: try network(name)))
        try run(command)
        return command.fdbEntries
    }

    /// Ports of every network, uplinks not counted; 0 when the switch is not running.
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
