// ForwardingLoop: the one thread that owns the io_uring, the ports and the MAC table of one network.
//
// Design notes.
// - Every receive is an io_uring request with a pool buffer; every send is an io_uring request
//   from a port's bounded queue. One `io_uring_enter` per loop turn submits all re-armed receives
//   and all sends queued while handling the previous batch of completions.
// - A received buffer is forwarded as is: unicast puts its index in one queue, flooding retains
//   it once per extra port. Only stream ports copy (reassembly out of their byte stream).
// - Per-port order is kept by having one send chain in flight per port: TAP and dgram sends are
//   linked SQEs, a stream port has one sendmsg covering many frames.
// - A full queue drops for that port only; io_uring parks a send to a full peer in the kernel,
//   so the loop never waits on a port. A peer that is gone is removed at its next failed send,
//   its EOF, or a periodic probe, and its MACs flushed.
// - Nothing on the per-frame path allocates or takes a lock; control requests arrive through an
//   eventfd and a mutex-protected queue, once per request, not per frame.
// - One loop is one network, or one shard of it: a Dataplane runs one loop per forwarding thread
//   (`switchd run --threads N`, Shards/ShardTrunks.swift); Switchboard runs one Dataplane per network.
//
// How a frame walks through the loop: `handle` → the receiving kind's `*ReceiveDone`/`deviceReadDone`
// (Ports/TAPPort, DgramPort, StreamPort) → `forward` (Bridge.swift: validate, capture tap, port
// security, learn, `decide`, act) → `deliver` (Egress.swift: as is, checksums completed, or
// segmented) → `enqueue` → once per batch `flushDirty` → `submitSends` (Ports/SendQueue.swift,
// then the kind's submit) → `sendDone` → the kind's send-done. Port lifecycle is
// Ports/PortTable.swift, control answers LoopQueries.swift, captures CaptureTap.swift.
import SwitchSys
import Glibc
import Proto

/// The listening sockets of the network, plain and header-less offload (docs/DESIGN.md §2).
public struct NetworkSockets {
    public var dgram: Int32 = -1
    public var stream: Int32 = -1
    public var dgramOffload: Int32 = -1
    public var streamOffload: Int32 = -1
    /// vhost-user.sock: QEMU `-netdev vhost-user` guests (Ports/VhostUserPort.swift).
    public var vhostUser: Int32 = -1
    /// The VXLAN tunnel's sockets, for a network with `vxlan` (VXLAN/VXLANSockets.swift).
    var vxlan: VXLANSocketPair? = nil

    func dgramFD(offload: Bool) -> Int32 { offload ? dgramOffload : dgram }
    func streamFD(offload: Bool) -> Int32 { offload ? streamOffload : stream }
}

final class ForwardingLoop {
    static let maxPorts = 4096
    static let noUplink = UInt16.max
    /// Frames per send chain (TAP, dgram) or per stream sendmsg.
    static let sendBatch: Int32 = 64
    /// Buffers in the shared provided ring that the listening dgram sockets' multishot recvmsg take
    /// from (ports that read their own fd have rings of their own, ReceiveShares).
    static let ringEntries = 512
    /// Receive reserve kept in the buffer pool on top of every port's queue and receive ring: the
    /// shared ring, plus copies (stream reassembly, checksum completion, segments) in flight.
    static let receiveReserve = ringEntries + 512
    /// Seconds between probes of dgram peers' addresses.
    static let probeInterval: UInt32 = 3
    /// The largest frame to or from a header-less offload peer (krunkit's 65550-byte buffers).
    static let maxOffloadFrame = 65_550
    /// The most segments one super-frame may be cut into (64 KiB at the smallest TCP MSS, 48 bytes).
    static let maxSegments = 1400
    /// Bytes of a stream port's reassembly buffer: two of the largest frames with their prefixes.
    static let streamBufferSize = 2 * (65_550 + 4)

    let ring: IOUring
    var pool: BufferPool
    var buffers: BufferRing
    /// A multishot receive on the shared ring ended for want of buffers: re-arm those receives once
    /// the ring is refilled.
    var receivesStarved = false
    /// The receive rings of the ports that read their own fd, one per port (ReceiveShares).
    var shares: ReceiveShares
    /// Loop turns so far, and at the last tick (how often ports ran out of their share is judged
    /// against the turns of the same second).
    var turns: UInt64 = 0
    var turnsAtTick: UInt64 = 0

    // Ports (Ports/PortTable.swift).
    let ports: UnsafeMutablePointer<PortState>
    var infos: [PortInfo?]
    var freeSlots: [UInt16]
    /// Active port slots, in the order they joined (flooding walks this list).
    let portList: UnsafeMutablePointer<UInt16>
    var portCount = 0
    /// dgram peers by address hash → slot.
    var peersByAddress: [UInt64: UInt16] = [:]
    var nextPortNumber = 1
    /// Shards number their ports i+1, i+1+n, ... so that ids stay unique in the network.
    var portNumberStep = 1
    /// Ports with frames queued in this batch, submitted once per batch (Egress.swift).
    let dirty: UnsafeMutablePointer<UInt16>
    var dirtyCount = 0
    /// Shared dgram peers whose send hit EAGAIN, retried on the short timer.
    var retrying: [UInt16] = []

    // The network.
    let spec: NetworkSpec
    /// The longest frame accepted without offload metadata: MTU + Ethernet header + one VLAN tag.
    let maxFrame: Int
    /// The network's MTU: the IP packet size segmentation cuts to.
    let mtu: Int
    var table: MACTable
    /// What the forwarding decision reads besides the frame and the table (Bridge.swift).
    var policy = ForwardingPolicy()
    /// Port security: the address bindings and the network's addressing (PortSecurity.swift).
    var security: SourceGuard
    /// `switchd capture` on this network (Capture.swift).
    var captures = CaptureTable()
    /// The gateway services (ARP, NDP and echo always; DHCP, DNS, RA as configured).
    let services: NetworkServices?
    /// Where services write the frames they answer with, before they are copied into a pool buffer.
    let serviceScratch: UnsafeMutableRawBufferPointer

    // The listening sockets (Ports/DgramPort.swift, Ports/StreamPort.swift).
    let sockets: NetworkSockets
    /// The receive in flight on dgram.sock [0] and dgram-offload.sock [1].
    let dgramReceives: UnsafeMutablePointer<DgramReceive>
    /// An accept in flight on stream.sock [0] and stream-offload.sock [1].
    var acceptPending: (Bool, Bool) = (false, false)
    /// An accept in flight on vhost-user.sock.
    var vhostAcceptPending = false
    /// vhost-user ports whose guest TX ring held more than a turn's budget (Ports/VhostUserPort.swift).
    var vhostBacklog: [UInt16] = []
    /// Datagrams from unnamed senders (they cannot be answered) and truncated ones.
    var unaddressable: UInt64 = 0
    var truncated: UInt64 = 0
    /// Frames from new peers refused because the port table was full.
    var portLimit: UInt64 = 0
    /// The network's VXLAN tunnel (Ports/VXLANPort.swift); disabled without `vxlan`.
    var vxlan: VXLANTunnel

    // Segments of the super-frame being forwarded (Egress.swift, `EgressVariants`).
    let segmentBuffers: UnsafeMutablePointer<UInt32>
    let segmentLengths: UnsafeMutablePointer<Int32>

    let eventFD: Int32
    let eventValue: UnsafeMutablePointer<UInt64>
    /// This loop's place among the network's shards, and the eventfd other shards wake it with
    /// (Shards/ShardTrunks.swift).
    var shard = ShardState()
    let shardWakeFD: Int32
    let shardWakeValue: UnsafeMutablePointer<UInt64>
    let commands: CommandQueue
    private(set) var running = true

    /// Whole seconds since the loop started (CLOCK_MONOTONIC), updated once per turn.
    private(set) var now: UInt32 = 0
    private let startTime: Int64
    private var lastTick: UInt32 = 0
    private var lastProbe: UInt32 = 0

    /// `hostsServices`: false for shards past the first, which have no services (their frames for
    /// the gateway go to shard 0); `gatewayMAC` is then shard 0's gateway, for port security.
    init(spec: NetworkSpec, sockets: NetworkSockets, stateDir: String?, commands: CommandQueue,
         housekeeper: Housekeeper? = nil, hostsServices: Bool = true, gatewayMAC: MACAddress? = nil) throws(SwitchError) {
        do { ring = try IOUring(queueDepth: 4096, deferTaskRun: true) } catch { throw SwitchError(error) }
        pool = try BufferPool(capacity: 16384, initialLimit: Self.receiveReserve)
        buffers = try BufferRing(uring: ring, group: BufferRing.sharedGroup, entries: Self.ringEntries)
        shares = ReceiveShares(maxPorts: Self.maxPorts)
        ports = .allocate(capacity: Self.maxPorts)
        ports.initialize(repeating: PortState(), count: Self.maxPorts)
        infos = Array(repeating: nil, count: Self.maxPorts)
        freeSlots = (0..<UInt16(Self.maxPorts)).reversed()
        portList = .allocate(capacity: Self.maxPorts)
        dirty = .allocate(capacity: Self.maxPorts)
        segmentBuffers = .allocate(capacity: Self.maxSegments)
        segmentLengths = .allocate(capacity: Self.maxSegments)
        self.spec = spec
        self.sockets = sockets
        maxFrame = spec.mtu + 18
        mtu = spec.mtu
        table = MACTable(maxPorts: Self.maxPorts, limitPerPort: spec.macLimit, ageing: spec.macAgeing)
        dgramReceives = .allocate(capacity: 2)
        dgramReceives.initialize(repeating: DgramReceive(), count: 2)
        assert(MemoryLayout<DgramReceive>.offset(of: \.message) == 0)  // see `messagePointer`
        vxlan = spec.vxlan.flatMap { tunnel in sockets.vxlan.map { VXLANTunnel(spec: tunnel, sockets: $0) } } ?? VXLANTunnel()
        services = hostsServices
            ? NetworkServices(spec: spec, mac: spec.gatewayMAC, stateDir: stateDir, housekeeper: housekeeper) : nil
        // With services, the gateway is theirs (the uplink's MAC on host and shared networks):
        // port security binds its link-local address.
        let gatewayMAC = services?.gateway.mac ?? gatewayMAC ?? spec.gatewayMAC
        security = SourceGuard(network: spec, gatewayMAC: gatewayMAC, maxPorts: Self.maxPorts)
        if let services {
            policy.gatewayMAC = services.gateway.mac.rawValue
            policy.hasServices = true
        }
        serviceScratch = .allocate(byteCount: BufferPool.slotSize, alignment: 16)
        do { eventFD = try EventFD.open() } catch { throw SwitchError(error) }
        eventValue = .allocate(capacity: 1)
        do { shardWakeFD = try EventFD.open() } catch {
            Descriptor.close(eventFD)
            throw SwitchError(error)
        }
        shardWakeValue = .allocate(capacity: 1)
        self.commands = commands
        startTime = Int64(Clock.monotonicSeconds())
    }

    deinit {
        table.deallocate()
        portList.deallocate()
        dgramReceives.deallocate()
        vxlan.deallocate()
        captures.deallocate()
        security.deallocate()
        ports.deallocate()
        dirty.deallocate()
        segmentBuffers.deallocate()
        segmentLengths.deallocate()
        eventValue.deallocate()
        shardWakeValue.deallocate()
        shard.deallocate()
        serviceScratch.deallocate()
        buffers.destroy()
        shares.deallocate()
        pool.destroy()
        Descriptor.close(eventFD)
        Descriptor.close(shardWakeFD)
    }

    // MARK: - Running

    /// The Linux thread id of the thread running the loop (0 before it starts), for tests.
    private(set) var threadID: Int32 = 0

    /// Runs until a `stop` command; then closes every port.
    func run() {
        threadID = PosixThread.currentID()
        do { try ring.enable() } catch {
            // Not seen: the ring was created for this thread. Without it nothing can be submitted.
            Log.error("network \(spec.name): the forwarding thread cannot start: \(error)")
            closeAll()
            return
        }
        buffers.refill(from: &pool)
        armEvent()
        if shard.isSharded { armShardWake() }
        for offload in [false, true] {
            armDgramReceive(offload: offload)
            armAccept(offload: offload)
        }
        armVhostAccept()
        vhostBacklog.reserveCapacity(Self.maxPorts)
        startVXLAN()
        if let services {
            for (family, fd) in [services.upstreamIPv4, services.upstreamIPv6].enumerated() where fd >= 0 {
                armServiceSocket(fd: fd, family: family)
            }
        }
        while running {
            ring.submitAndWait(timeoutNanos: retrying.isEmpty ? 100_000_000 : 1_000_000)
            updateClock()
            while ring.drain({ handle($0) }) == IOUring.completionBatch {
                // More are waiting: hand over what this batch queued before taking the next, so a
                // burst from one port does not overflow another's queue between two submits.
                flushDirty()
                buffers.refill(from: &pool)
                ring.submit()
            }
            if shard.isSharded { drainShards() }
            flushDirty()
            buffers.refill(from: &pool)
            refillShares()
            turns &+= 1
            if !retrying.isEmpty { retrySends() }
            if receivesStarved { rearmStarved() }
            if !vhostBacklog.isEmpty { drainBacklog() }
            if vxlan.starved { rearmVXLANReceive() }
            if now != lastTick { tick() }
        }
        stopVXLAN()
        closeAll()
    }

    private func updateClock() {
        now = UInt32(truncatingIfNeeded: Int64(Clock.monotonicCoarseSeconds()) - startTime)
    }

    /// Once a second: ageing, and every few seconds a probe of dgram peers.
    private func tick() {
        lastTick = now
        table.age(now: now)
        security.bindings.expire(now: now)
        shard.remoteBindings?.pointee.expire(now: now)
        logSecurityDrops()
        logThrottled()
        services?.tick(now: Clock.monotonicNanoseconds(), scratch: serviceScratch) { length, destination in
            emitServiceFrame(length: length, to: destination)
        }
        if now &- lastProbe >= Self.probeInterval {
            lastProbe = now
            probePeers()
        }
    }

    // MARK: - Completions

    @inline(__always)
    func handle(_ c: Completion) {
        switch c.token.operation {
        case .deviceRead: deviceReadDone(slot: c.token.slot, result: c.result, flags: c.flags)
        case .dgramReceive: dgramReceiveDone(offload: c.token.aux != 0, result: c.result, flags: c.flags)
        case .streamAccept: acceptDone(offload: c.token.aux != 0, result: c.result)
        case .streamReceive: streamReceiveDone(slot: c.token.slot, result: c.result)
        case .send: sendDone(slot: c.token.slot, result: c.result)
        case .writable: writableDone(slot: c.token.slot)
        case .serviceSocket: serviceSocketReadable(family: Int(c.token.aux), flags: c.flags)
        case .eventRead: if c.token.aux == 0 { eventDone() } else { shardWoken() }
        case .cancel: break
        case .captureWritable: captureWritableDone(c)
        case .vhostAccept: vhostAcceptDone(result: c.result)
        case .vhostControl: vhostControlDone(slot: c.token.slot, result: c.result, flags: c.flags)
        case .vhostKick: vhostKickDone(slot: c.token.slot, aux: c.token.aux, result: c.result)
        case .vhostCall: break
        case .vxlanReceive: vxlanReceiveDone(result: c.result, flags: c.flags)
        }
    }

    // MARK: - Services

    /// Offers a frame to the network's services; true when they took it.
    func serve(frame: UnsafeMutableRawPointer, length: Int, from slot: UInt16) -> Bool {
        guard let services else { return false }
        return services.handle(UnsafeRawBufferPointer(start: frame, count: length), slot: slot,
                               generation: ports[Int(slot)].generation, now: Clock.monotonicNanoseconds(),
                               scratch: serviceScratch) { length, destination in
            emitServiceFrame(length: length, to: destination)
        }
    }

    /// Sends the frame the services wrote into the scratch buffer. It has variants of its own
    /// (none in practice: service frames carry no offload metadata), so it may run in the middle
    /// of forwarding another frame.
    func emitServiceFrame(length: Int, to destination: ServiceDestination) {
        guard length >= 14, let buffer = pool.allocate() else { return }
        pool.pointer(buffer, BufferPool.headroom).copyMemory(from: serviceScratch.baseAddress!, byteCount: length)
        snoopLease(UnsafeRawBufferPointer(start: serviceScratch.baseAddress!, count: length))
        let frame = Frame(buffer: buffer, offset: BufferPool.headroom, length: length, header: .none)
        var variants = EgressVariants()
        switch destination {
        case .port(let slot, let generation):
            if ports[Int(slot)].isActive && ports[Int(slot)].generation == generation {
                deliver(frame, to: slot, unicast: true, variants: &variants)
            }
        case .flood:
            for i in 0..<portCount { deliver(frame, to: portList[i], unicast: false, variants: &variants) }
        }
        pool.release(buffer)
        release(&variants)
    }

    /// Arms the multishot POLLIN of a DNS upstream socket of the services.
    private func armServiceSocket(fd: Int32, family: Int) {
        ring.preparePollMultishot(fd: fd, events: Int32(POLLIN), token: Token(.serviceSocket, aux: UInt32(family)))
    }

    private func serviceSocketReadable(family: Int, flags: UInt32) {
        guard let services else { return }
        let fd = family == 0 ? services.upstreamIPv4 : services.upstreamIPv6
        services.upstreamReadable(fd: fd, now: Clock.monotonicNanoseconds(), scratch: serviceScratch) { length, destination in
            emitServiceFrame(length: length, to: destination)
        }
        if flags & CompletionFlag.more == 0 && running {  // the multishot poll ended: arm it again
            armServiceSocket(fd: fd, family: family)
        }
    }

    // MARK: - Control

    private func armEvent() {
        ring.prepareRead(fd: eventFD, into: eventValue, length: 8, token: Token(.eventRead))
    }

    private func eventDone() {
        for command in commands.takeAll() {
            command.execute(on: self)
        }
        if running { armEvent() }
    }

    func stop() { running = false }

    /// Closes the ports of a loop whose thread never started (a failed start-up).
    func closeWithoutRunning() {
        running = false
        closeAll()
    }
}
