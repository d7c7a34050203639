// Dataplane: the public face of the forwarding threads (start, stop, ports, status).
//
// With `threads` > 1 the network runs one loop per thread (shards, Shards/ShardTrunks.swift):
// shard 0 has everything a single loop has; TAP, link and attached dgram ports are placed
// round-robin over the shards as they are added; queries ask every shard and merge.
import Glibc
import Proto
import SwitchSys

/// One network of the switch: owns its forwarding thread, its sockets and its ports (Switchboard
/// runs one per network). All methods are safe to call from any thread other than the forwarding thread.
public final class Dataplane: @unchecked Sendable {
    private let runDir: String
    private let spec: NetworkSpec
    private var sockets: NetworkSockets?
    /// One command queue and loop per forwarding thread; shard 0 first.
    private let commands: [CommandQueue]
    private let loops: [ForwardingLoop]
    /// The rings between the shards, freed once every thread has stopped.
    private let channels: [ShardChannel]
    /// Shard 0: services, uplink, listening sockets, VXLAN, captures.
    private var loop: ForwardingLoop { loops[0] }
    /// The shard the next TAP, link or attached dgram port goes to.
    private var nextShard = 0
    /// Writes the lease files off the forwarding thread (Housekeeper.swift).
    private let housekeeper = Housekeeper()
    private var threads: [pthread_t] = []
    private var stopped = false
    private let mutex = Lock()

    /// Creates the network's listening sockets under `runDir/NAME/` and its configured ports;
    /// DHCP leases are kept under `stateDir/NAME/` (in memory only when nil). `threads`: forwarding
    /// threads (1...`maxThreads`).
    public init(runDir: String, stateDir: String? = nil, network spec: NetworkSpec, threads: Int = 1) throws(SwitchError) {
        guard threads >= 1 && threads <= Self.maxThreads else {
            throw SwitchError("--threads takes 1 to \(Self.maxThreads) forwarding threads, not \(threads)")
        }
        self.runDir = runDir
        self.spec = spec
        commands = (0..<threads).map { _ in CommandQueue() }
        var loops: [ForwardingLoop] = []
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
            loops.append(try ForwardingLoop(spec: spec, sockets: sockets!, stateDir: stateDir, commands: commands[0],
                                            housekeeper: housekeeper))
            for i in 1..<threads {
                loops.append(try ForwardingLoop(spec: spec, sockets: NetworkSockets(), stateDir: nil, commands: commands[i],
                                                hostsServices: false, gatewayMAC: loops[0].services?.gateway.mac))
            }
        } catch {
            for loop in loops { loop.closeWithoutRunning() }
            Self.removeSockets(sockets, runDir: runDir, spec: spec)
            throw error
        }
        self.loops = loops
        channels = ForwardingLoop.joinShards(loops)
        nextShard = threads > 1 ? 1 : 0  // shard 0 has the services and the sockets' ports
        for (queue, loop) in zip(commands, loops) { queue.attach(eventFD: loop.eventFD) }
        // The uplink first: it is the gateway the other ports' guests talk to.
        let uplink: [PortSpec?] = spec.uplink == nil ? [] : [nil]
        for port in uplink + spec.ports.map(Optional.some) {
            do throws(SwitchError) {
                let device: OpenedDevice
                if let port { device = try Self.openPort(port, network: spec) } else { device = try Uplink.open(spec) }
                let loop = loops[device.info.isUplink ? 0 : takeShard()]
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

    deinit {
        for channel in channels { channel.deallocate() }
    }

    /// The most forwarding threads per network (`switchd run --threads`).
    public static let maxThreads = ForwardingLoop.maxShards

    /// The shard for a new port that may go anywhere: round-robin.
    private func takeShard() -> Int {
        defer { nextShard = (nextShard + 1) % loops.count }
        return nextShard
    }

    /// Starts the housekeeping thread, then the forwarding threads.
    public func start() throws(SwitchError) {
        try housekeeper.start()
        for (i, loop) in loops.enumerated() {
            let name = loops.count == 1 ? "the forwarding thread" : "forwarding thread \(i)"
            do {
                threads.append(try PosixThread.start(name) { loop.run() })
            } catch {
                shutdown()
                throw SwitchError(error)
            }
        }
    }

    /// Stops the forwarding thread, closes every port, removes sockets and TAP devices. Idempotent.
    public func shutdown() {
        mutex.lock()
        defer { mutex.unlock() }
        guard !stopped else { return }
        stopped = true
        if !threads.isEmpty {
            // Every shard stops before any is freed: a running shard still copies into its peers' buffers.
            for (i, queue) in commands.enumerated() where i < threads.count { queue.post(LoopCommand(.stop)) }
            for thread in threads { PosixThread.join(thread) }
            for loop in loops.dropFirst(threads.count) { loop.closeWithoutRunning() }
            threads = []
        } else {
            for loop in loops { loop.closeWithoutRunning() }  // ports opened before start(): close them here
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

    private func run(_ command: LoopCommand, shard: Int = 0) throws(SwitchError) {
        guard runOnLoop(command, shard: shard, runHere: false) else { throw SwitchError("the switch is not running") }
    }

    /// Runs a fresh command from `make` on every shard, in order; their commands.
    private func runEverywhere(_ make: () -> LoopCommand) throws(SwitchError) -> [LoopCommand] {
        var done: [LoopCommand] = []
        for shard in loops.indices {
            let command = make()
            try run(command, shard: shard)
            done.append(command)
        }
        return done
    }

    /// Adds a port at run time; returns its id.
    public func addPort(network name: String, spec: PortSpec) throws(SwitchError) -> String {
        try checkNetwork(name)
        let device = try Self.openPort(spec, network: self.spec)
        let command = LoopCommand(.addDevice(device))
        let shard = mutex.withLock { takeShard() }
        do throws(SwitchError) {
            try run(command, shard: shard)
        } catch {
            loop.closeUnused(device)
            throw error
        }
        return try command.portID.get()
    }

    /// Removes a port by id (on whichever shard has it).
    public func removePort(network name: String, id: String) throws(SwitchError) {
        try checkNetwork(name)
        var failure: SwitchError? = nil
        for shard in loops.indices {
            let command = LoopCommand(.remove(id: id))
            try run(command, shard: shard)
            switch command.portID {
            case .success: return
            case .failure(let error): failure = failure ?? error  // shard 0's says why (the uplink, or no such port)
            }
        }
        throw failure ?? SwitchError("network \(spec.name) has no port \(id)")
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

    /// The Linux thread ids of every forwarding thread, shard 0 first (for tests).
    var forwardingThreadIDs: [Int32] {
        _ = status()
        return loops.map(\.threadID)
    }

    /// Buffers in use in each shard's pool, shard 0 first (for tests; read after two round trips
    /// to every shard, so each has finished the turn that answered the first and refilled its rings).
    var buffersInUse: [Int] {
        _ = status()
        _ = status()
        return loops.map { $0.pool.inUse }
    }

    /// A snapshot of the network and its ports: one element, none when the switch is not running.
    /// With several shards, their ports in shard order and their drops added up.
    public func status() -> [NetworkStatus] {
        guard let commands = try? runEverywhere({ LoopCommand(.status) }),
              var network = commands.first?.network else { return [] }
        for command in commands.dropFirst() {
            guard let other = command.network else { continue }
            network.ports += other.ports
            for (reason, count) in other.drops { network.drops[reason, default: 0] &+= count }
        }
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
    func runOnLoop(_ command: LoopCommand, shard: Int = 0, runHere: Bool = true) -> Bool {
        mutex.lock()
        if !threads.isEmpty && !stopped {
            commands[shard].post(command)
            mutex.unlock()
            command.wait()
            return true
        }
        defer { mutex.unlock() }
        guard runHere else { return false }
        command.execute(on: loops[shard])
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
        // A stream port reassembles on the loop that reads it; a dgram one reads its own fd and
        // may go to any shard.
        let shard = kind == .stream ? 0 : mutex.withLock { takeShard() }
        do throws(SwitchError) {
            try run(command, shard: shard)
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
        return try runEverywhere { LoopCommand(.fdb) }.flatMap(\.fdbEntries)
    }

    /// Ports of the network, the uplink not counted; 0 when the switch is not running.
    public func clientPortCount() -> Int {
        guard let commands = try? runEverywhere({ LoopCommand(.clientPortCount) }) else { return 0 }
        return commands.reduce(0) { $0 + $1.count }
    }
}

/// A TAP or link port opened by the control thread, on its way to the loop.
struct OpenedDevice {
    var kind: PortKind
    var fd: Int32
    var headerSize: Int
    var info: PortInfo
}
