// ForwardingLoop: the one thread that owns the io_uring, the ports and the MAC tables.
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
import CLiburing
import CSwitchShims
import Glibc
import Proto

/// The multishot recvmsg of a dgram socket: the message header template that tells the kernel how
/// much room the sender address needs, and whether the request is armed.
struct DgramReceive {
    var message = msghdr()
    var pending = false
}

/// The listening sockets of one network, plain and header-less offload (DESIGN §2).
public struct NetworkSockets {
    public var dgram: Int32 = -1
    public var stream: Int32 = -1
    public var dgramOffload: Int32 = -1
    public var streamOffload: Int32 = -1
}

/// Runtime state of one network.
struct NetworkRuntime {
    /// The longest frame accepted without offload metadata: MTU + Ethernet header + one VLAN tag.
    var maxFrame: Int
    /// The network's MTU: the IP packet size segmentation cuts to.
    var mtu: Int
    var queueFrames: Int
    var table: MACTable
    /// Active port slots.
    var portList: UnsafeMutablePointer<UInt16>
    var portCount = 0
    var sockets: NetworkSockets
    /// The receive in flight on dgram.sock [0] and dgram-offload.sock [1].
    var dgramReceives: UnsafeMutablePointer<DgramReceive>
    /// An accept in flight on stream.sock [0] and stream-offload.sock [1].
    var acceptPending: (Bool, Bool) = (false, false)

    func dgramFD(offload: Bool) -> Int32 { offload ? sockets.dgramOffload : sockets.dgram }
    func streamFD(offload: Bool) -> Int32 { offload ? sockets.streamOffload : sockets.stream }
    /// Datagrams from unnamed senders (they cannot be answered) and truncated ones.
    var unaddressable: UInt64 = 0
    var truncated: UInt64 = 0
    /// Frames from new peers refused because the port table was full.
    var portLimit: UInt64 = 0
    /// The gateway's MAC, whose frames (and multicast) go to the services first; 0 without services.
    var gatewayMAC: UInt64 = 0
    var hasServices = false
    /// The uplink port of a host or shared network (`ForwardingLoop.noUplink` when there is none).
    var uplink: UInt16 = ForwardingLoop.noUplink
    /// `switchd capture` on this network (Capture.swift).
    var captures = CaptureTable()
    /// Port security: the address bindings and the network's addressing (PortSecurity.swift).
    var security: SourceGuard
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

    let ring: IOUring
    var pool: BufferPool
    private var buffers: BufferRing
    /// A multishot receive on the shared ring ended for want of buffers: re-arm those receives once
    /// the ring is refilled.
    private var receivesStarved = false
    /// The receive rings of the ports that read their own fd, one per port (ReceiveShares).
    private var shares: ReceiveShares
    /// Loop turns so far, and at the last tick (how often ports ran out of their share is judged
    /// against the turns of the same second).
    private var turns: UInt64 = 0
    private var turnsAtTick: UInt64 = 0
    let ports: UnsafeMutablePointer<PortState>
    var infos: [PortInfo?]
    private var freeSlots: [UInt16]
    let networks: UnsafeMutablePointer<NetworkRuntime>
    let specs: [NetworkSpec]
    /// dgram peers by address hash → slot, per network.
    private var peersByAddress: [[UInt64: UInt16]]
    private let dirty: UnsafeMutablePointer<UInt16>
    private var dirtyCount = 0
    private var retrying: [UInt16] = []
    private var nextPortNumber = 1

    let eventFD: Int32
    private let eventValue: UnsafeMutablePointer<UInt64>
    let commands: CommandQueue
    private(set) var running = true

    /// Whole seconds since the loop started (CLOCK_MONOTONIC), updated once per turn.
    private(set) var now: UInt32 = 0
    private let startTime: Int64
    private var lastTick: UInt32 = 0
    private var lastProbe: UInt32 = 0

    /// The gateway services of each network (ARP, NDP and echo always; DHCP, DNS, RA as configured).
    private var services: [NetworkServices?]
    /// Where services write the frames they answer with, before they are copied into a pool buffer.
    private let serviceScratch: UnsafeMutableRawBufferPointer

    init(specs: [NetworkSpec], sockets: [NetworkSockets], stateDir: String?, commands: CommandQueue,
         housekeeper: Housekeeper? = nil) throws(SwitchError) {
        ring = try IOUring(entries: 4096)
        pool = try BufferPool(capacity: 16384, initialLimit: Self.receiveReserve)
        buffers = try BufferRing(uring: ring, group: BufferRing.sharedGroup, entries: Self.ringEntries)
        shares = ReceiveShares(maxPorts: Self.maxPorts)
        ports = .allocate(capacity: Self.maxPorts)
        ports.initialize(repeating: PortState(), count: Self.maxPorts)
        infos = Array(repeating: nil, count: Self.maxPorts)
        freeSlots = (0..<UInt16(Self.maxPorts)).reversed()
        dirty = .allocate(capacity: Self.maxPorts)
        segmentBuffers = .allocate(capacity: Self.maxSegments)
        segmentLengths = .allocate(capacity: Self.maxSegments)
        self.specs = specs
        networks = .allocate(capacity: max(1, specs.count))
        for (i, spec) in specs.enumerated() {
            let receive = UnsafeMutablePointer<DgramReceive>.allocate(capacity: 2)
            receive.initialize(repeating: DgramReceive(), count: 2)
            let list = UnsafeMutablePointer<UInt16>.allocate(capacity: Self.maxPorts)
            (networks + i).initialize(to: NetworkRuntime(
                maxFrame: spec.mtu + 18, mtu: spec.mtu, queueFrames: spec.queueFrames,
                table: MACTable(maxPorts: Self.maxPorts, limitPerPort: spec.macLimit, ageing: spec.macAgeing),
                portList: list, sockets: sockets[i], dgramReceives: receive,
                security: SourceGuard(network: spec, gatewayMAC: spec.gatewayMAC, maxPorts: Self.maxPorts)))
        }
        peersByAddress = Array(repeating: [:], count: specs.count)
        services = specs.map { NetworkServices(spec: $0, mac: $0.gatewayMAC, stateDir: stateDir, housekeeper: housekeeper) }
        for (i, service) in services.enumerated() where service != nil {
            networks[i].gatewayMAC = service!.gateway.mac.rawValue
            networks[i].hasServices = true
            if service!.gateway.mac != specs[i].gatewayMAC {  // the uplink's: bind its link-local address
                networks[i].security.deallocate()
                networks[i].security = SourceGuard(network: specs[i], gatewayMAC: service!.gateway.mac, maxPorts: Self.maxPorts)
            }
        }
        serviceScratch = .allocate(byteCount: BufferPool.slotSize, alignment: 16)
        eventFD = sw_eventfd()
        guard eventFD >= 0 else { throw SwitchError("eventfd: \(errnoText(-eventFD))") }
        eventValue = .allocate(capacity: 1)
        self.commands = commands
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        startTime = Int64(ts.tv_sec)
    }

    deinit {
        for n in 0..<specs.count {
            networks[n].table.deallocate()
            networks[n].portList.deallocate()
            networks[n].dgramReceives.deallocate()
            networks[n].captures.deallocate()
            networks[n].security.deallocate()
        }
        networks.deallocate()
        ports.deallocate()
        dirty.deallocate()
        segmentBuffers.deallocate()
        segmentLengths.deallocate()
        eventValue.deallocate()
        serviceScratch.deallocate()
        buffers.destroy()
        shares.deallocate()
        pool.destroy()
        close(eventFD)
    }

    // MARK: - Running

    /// The Linux thread id of the thread running the loop (0 before it starts), for tests.
    private(set) var threadID: Int32 = 0

    /// Runs until a `stop` command; then closes every port.
    func run() {
        threadID = sw_gettid()
        buffers.refill(from: &pool)
        armEvent()
        for n in 0..<specs.count {
            for offload in [false, true] {
                armDgramReceive(network: n, offload: offload)
                armAccept(network: n, offload: offload)
            }
            if let service = services[n] {
                for (family, fd) in [service.upstreamIPv4, service.upstreamIPv6].enumerated() where fd >= 0 {
                    let sqe = ring.sqe()
                    io_uring_prep_poll_multishot(sqe, fd, UInt32(POLLIN))
                    sqe.setToken(Token(.serviceSocket, slot: UInt16(n), aux: UInt32(family)))
                }
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
            flushDirty()
            buffers.refill(from: &pool)
            refillShares()
            turns &+= 1
            if !retrying.isEmpty { retrySends() }
            if receivesStarved { rearmStarved() }
            if now != lastTick { tick() }
        }
        closeAll()
    }

    private func updateClock() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        now = UInt32(truncatingIfNeeded: Int64(ts.tv_sec) - startTime)
    }

    /// Once a second: ageing, and every few seconds a probe of dgram peers.
    private func tick() {
        lastTick = now
        for n in 0..<specs.count {
            networks[n].table.age(now: now)
            networks[n].security.bindings.expire(now: now)
        }
        logSecurityDrops()
        logThrottled()
        let nanoseconds = monotonicNanoseconds()
        for (n, service) in services.enumerated() {
            service?.tick(now: nanoseconds, scratch: serviceScratch) { length, destination in
                emitServiceFrame(length: length, to: destination, network: n)
            }
        }
        if now &- lastProbe >= Self.probeInterval {
            lastProbe = now
            probePeers()
        }
    }

    // MARK: - Completions

    @inline(__always)
    private func handle(_ c: Completion) {
        switch c.token.operation {
        case .deviceRead: deviceReadDone(slot: c.token.slot, result: c.result, flags: c.flags)
        case .dgramReceive:
            dgramReceiveDone(network: Int(c.token.slot), offload: c.token.aux != 0, result: c.result, flags: c.flags)
        case .streamAccept: acceptDone(network: Int(c.token.slot), offload: c.token.aux != 0, result: c.result)
        case .streamReceive: streamReceiveDone(slot: c.token.slot, result: c.result)
        case .send: sendDone(slot: c.token.slot, result: c.result)
        case .writable: writableDone(slot: c.token.slot)
        case .serviceSocket: serviceSocketReadable(network: Int(c.token.slot), family: Int(c.token.aux), flags: c.flags)
        case .eventRead: eventDone()
        case .cancel: break
        case .captureWritable: captureWritableDone(c)
        }
    }

    // MARK: - Forwarding

    /// Forwards the frame at `offset` of `buffer`, received on port `s`. The caller keeps its own
    /// reference to the buffer and releases it afterwards.
    @inline(__always)
    private func forward(buffer: UInt32, offset: Int, length: Int, header: VirtioNetHeader, from s: UInt16) {
        let port = ports + Int(s)
        let net = networks + Int(port.pointee.network)
        port.pointee.rxPackets &+= 1
        port.pointee.rxBytes &+= UInt64(length)
        guard length >= 14 else { port.pointee.count(.runt); return }
        let frame = pool.pointer(buffer, offset)
        if net.pointee.captures.count > 0 { capture(frame, length: length, header: header, from: s) }
        var header = header
        if port.pointee.offloadPeer {
            // Header-less offload (krunkit offloading=on, the offload sockets): work out what the
            // frame needs from its headers; its L4 checksum may be partial (DESIGN §2).
            guard let described = Segmentation.describeHeaderless(
                frame: UnsafeMutableRawBufferPointer(start: frame, count: length), mtu: net.pointee.mtu) else {
                port.pointee.count(.badHeader)
                return
            }
            header = described
        } else if header.flags & VirtioNetHeader.needsChecksum != 0 || header.isGSO {
            guard header.checksumFieldFits(frameLength: length),
                  !header.isGSO || (header.gsoSize > 0 && Int(header.headerLength) <= length) else {
                port.pointee.count(.badHeader)
                return
            }
        }
        guard header.isGSO || length <= (port.pointee.offloadPeer ? Self.maxOffloadFrame : net.pointee.maxFrame) else {
            port.pointee.count(.oversize)
            return
        }
        let source = MACAddress(loading: frame + 6)
        guard !source.isMulticast && !source.isZero else { port.pointee.count(.badSource); return }
        let guards = port.pointee.guards
        if source.rawValue != port.pointee.lastSource || now != port.pointee.lastReceive {
            if guards.contains(.mac) {
                if let refused = admitSource(source, from: s) { port.pointee.count(refused); return }
            } else {
                _ = net.pointee.table.learn(source, port: s, generation: port.pointee.generation, now: now)
            }
            port.pointee.lastSource = source.rawValue
        }
        port.pointee.lastReceive = now
        if !guards.isDisjoint(with: PortGuards.headerGuards),
           let refused = admitHeaders(frame: frame, length: length, source: source, from: s) {
            port.pointee.count(refused)
            return
        }
        let destination = MACAddress(loading: frame)
        let original = Frame(buffer: buffer, offset: offset, length: length, header: header)
        defer { releaseVariants() }
        // The uplink's own frames come from the host's stack, which is the gateway: no service is for them.
        if net.pointee.hasServices && s != net.pointee.uplink
            && (destination.isMulticast || destination.rawValue == net.pointee.gatewayMAC) {
            // Super-frames are bulk TCP/UDP, never a service request.
            if !header.isGSO && serve(frame: frame, length: length, from: s, network: Int(port.pointee.network)) { return }
            if destination.rawValue == net.pointee.gatewayMAC {
                // Isolated: nobody else is the gateway. Host and shared: the host's stack behind the uplink is.
                if net.pointee.uplink != Self.noUplink { deliver(original, to: net.pointee.uplink, unicast: true) }
                return
            }
        }
        if !destination.isMulticast, let (out, generation) = net.pointee.table.lookup(destination, now: now),
           ports[Int(out)].generation == generation, ports[Int(out)].isActive {
            if out == s { port.pointee.count(.hairpin); return }
            deliver(original, to: out, unicast: true)
            return
        }
        for i in 0..<net.pointee.portCount {
            let out = net.pointee.portList[i]
            if out != s { deliver(original, to: out, unicast: false) }
        }
    }

    /// The MAC guard: learns `source` on port `s` unless it belongs to another live port or the
    /// port is at its `macLimit`; the reason to drop the frame otherwise.
    private func admitSource(_ source: MACAddress, from s: UInt16) -> DropReason? {
        let port = ports + Int(s)
        let net = networks + Int(port.pointee.network)
        if let (owner, generation) = net.pointee.table.lookup(source, now: now),
           owner != s, ports[Int(owner)].isActive, ports[Int(owner)].generation == generation {
            return .spoofedMac
        }
        switch net.pointee.table.learn(source, port: s, generation: port.pointee.generation, now: now) {
        case .known, .learned, .moved: return nil
        case .limitReached, .tableFull: return .macLimit
        }
    }

    /// The IP, neighbor, DHCP-server and RA guards of port `s` (PortSecurity.swift); the reason
    /// to drop the frame, or nil. A source address admitted this second is not looked up again.
    @inline(__always)
    private func admitHeaders(frame: UnsafeMutableRawPointer, length: Int, source: MACAddress, from s: UInt16) -> DropReason? {
        let port = ports + Int(s)
        let claims = FrameClaims.read(UnsafeRawBufferPointer(start: frame, count: length))
        if claims.kind != .arp && claims.advertised == nil && claims.probed == nil && !claims.dhcpServer
            && !claims.routerMessage && claims.source == port.pointee.lastAddress && now == port.pointee.lastAddressTime {
            return nil
        }
        let refused = networks[Int(port.pointee.network)].security.admit(
            claims, sourceMAC: source.rawValue, guards: port.pointee.guards, port: s, now: now)
        if refused == nil && claims.kind != .other {
            port.pointee.lastAddress = claims.source
            port.pointee.lastAddressTime = now
        }
        return refused
    }

    /// Logs, at most once per ten seconds per port, the frames port security refused since the
    /// last line (on the tick, never per frame).
    private func logSecurityDrops() {
        for n in 0..<specs.count {
            let net = networks + n
            for i in 0..<net.pointee.portCount {
                let s = net.pointee.portList[i]
                let port = ports + Int(s)
                // The first report comes at the first tick after a refusal, later ones ten seconds apart.
                guard !port.pointee.guards.isEmpty,
                      port.pointee.loggedSecurityDrops == 0 || now &- port.pointee.lastSecurityLog >= 10 else { continue }
                var total: UInt64 = 0
                for reason in DropReason.security { total &+= port.pointee.dropCount(reason) }
                guard total != port.pointee.loggedSecurityDrops else { continue }
                let counts = DropReason.security.filter { port.pointee.dropCount($0) > 0 }
                    .map { "\($0.name) \(port.pointee.dropCount($0))" }.joined(separator: ", ")
                Log.warning("network \(specs[n].name): port \(infos[Int(s)]?.id ?? "?"): port security refused "
                            + "\(total &- port.pointee.loggedSecurityDrops) frames since the last report (totals: \(counts))")
                port.pointee.loggedSecurityDrops = total
                port.pointee.lastSecurityLog = now
            }
        }
    }

    /// DHCP snooping: an ACK the services send binds the leased address to the client's port.
    private func snoopLease(_ frame: UnsafeRawBufferPointer, network n: Int) {
        guard let lease = acknowledgedLease(in: frame),
              let (owner, generation) = networks[n].table.lookup(lease.client, now: now),
              ports[Int(owner)].isActive, ports[Int(owner)].generation == generation else { return }
        networks[n].security.leased(lease.address, to: owner, leaseSeconds: lease.seconds, now: now)
    }

    /// Offers a frame to the network's services; true when they took it.
    private func serve(frame: UnsafeMutableRawPointer, length: Int, from s: UInt16, network n: Int) -> Bool {
        guard let service = services[n] else { return false }
        return service.handle(UnsafeRawBufferPointer(start: frame, count: length), slot: s,
                              generation: ports[Int(s)].generation, now: monotonicNanoseconds(),
                              scratch: serviceScratch) { length, destination in
            emitServiceFrame(length: length, to: destination, network: n)
        }
    }

    /// Sends the frame the services wrote into the scratch buffer.
    private func emitServiceFrame(length: Int, to destination: ServiceDestination, network n: Int) {
        guard length >= 14, let buffer = pool.allocate() else { return }
        pool.pointer(buffer, BufferPool.headroom).copyMemory(from: serviceScratch.baseAddress!, byteCount: length)
        snoopLease(UnsafeRawBufferPointer(start: serviceScratch.baseAddress!, count: length), network: n)
        let frame = Frame(buffer: buffer, offset: BufferPool.headroom, length: length, header: .none)
        switch destination {
        case .port(let slot, let generation):
            if ports[Int(slot)].isActive && ports[Int(slot)].generation == generation { deliver(frame, to: slot, unicast: true) }
        case .flood:
            let net = networks + n
            for i in 0..<net.pointee.portCount { deliver(frame, to: net.pointee.portList[i], unicast: false) }
        }
        pool.release(buffer)
        releaseVariants()  // copies made for plain ports, if any
    }

    private func serviceSocketReadable(network n: Int, family: Int, flags: UInt32) {
        guard let service = services[n] else { return }
        let fd = family == 0 ? service.upstreamIPv4 : service.upstreamIPv6
        service.upstreamReadable(fd: fd, now: monotonicNanoseconds(), scratch: serviceScratch) { length, destination in
            emitServiceFrame(length: length, to: destination, network: n)
        }
        if flags & CompletionFlag.more == 0 && running {  // the multishot poll ended: arm it again
            let sqe = ring.sqe()
            io_uring_prep_poll_multishot(sqe, fd, UInt32(POLLIN))
            sqe.setToken(Token(.serviceSocket, slot: UInt16(n), aux: UInt32(family)))
        }
    }

    private func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// The largest frame to or from a header-less offload peer (krunkit's 65550-byte buffers).
    static let maxOffloadFrame = 65_550
    /// The most segments one super-frame may be cut into (64 KiB at the smallest TCP MSS, 48 bytes).
    static let maxSegments = 1400

    // Copies of the frame being forwarded, made at most once per frame for the egress ports that
    // cannot take it as it is (classify per destination, build lazily, share by reference count).
    private var completed: Frame? = nil
    private var segmentState = SegmentState.none
    private let segmentBuffers: UnsafeMutablePointer<UInt32>
    private let segmentLengths: UnsafeMutablePointer<Int32>
    private var segmentCount = 0

    private enum SegmentState { case none, built, failed(DropReason) }

    /// Sends `frame` to port `out` in the form that port can take: as is to TAP and link ports
    /// (virtio-net header included), with complete checksums to socket ports, cut into MTU-size
    /// segments for socket ports that cannot take super-frames.
    @inline(__always)
    private func deliver(_ frame: Frame, to out: UInt16, unicast: Bool) {
        let port = ports + Int(out)
        if port.pointee.kind.hasVnetHeader {
            if frame.header.isGSO { port.pointee.superFrames &+= 1 }
            enqueue(frame, to: out)
            return
        }
        if frame.header.isGSO {
            if port.pointee.offloadPeer && frame.length <= Self.maxOffloadFrame {
                guard let whole = completedCopy(of: frame, unicast: unicast) else { port.pointee.count(.noBuffer); return }
                port.pointee.superFrames &+= 1
                enqueue(whole, to: out)
                return
            }
            if case .none = segmentState { buildSegments(of: frame, network: Int(port.pointee.network)) }
            if case .failed(let reason) = segmentState { port.pointee.count(reason); return }
            port.pointee.segmented &+= 1
            for i in 0..<segmentCount {
                enqueue(Frame(buffer: segmentBuffers[i], offset: BufferPool.headroom, length: Int(segmentLengths[i]),
                              header: .none), to: out)
            }
            return
        }
        let limit = port.pointee.offloadPeer ? Self.maxOffloadFrame : networks[Int(port.pointee.network)].maxFrame
        guard frame.length <= limit else { port.pointee.count(.oversize); return }
        if frame.header.flags & VirtioNetHeader.needsChecksum != 0 {
            guard let whole = completedCopy(of: frame, unicast: unicast) else { port.pointee.count(.noBuffer); return }
            enqueue(whole, to: out)
        } else {
            enqueue(frame, to: out)
        }
    }

    /// The frame with complete checksums: completed in place when this is its only destination and
    /// nobody else holds the buffer, else in a copy made once per frame.
    private func completedCopy(of frame: Frame, unicast: Bool) -> Frame? {
        if let completed { return completed }
        var target = frame
        if !(unicast && pool.referenceCount(frame.buffer) == 1) {
            guard let copy = pool.allocate() else { return nil }
            pool.pointer(copy, BufferPool.headroom).copyMemory(from: pool.pointer(frame.buffer, frame.offset),
                                                                byteCount: frame.length)
            target = Frame(buffer: copy, offset: BufferPool.headroom, length: frame.length, header: frame.header)
        } else {
            pool.retain(frame.buffer)  // released with the other variants
        }
        let bytes = UnsafeMutableRawBufferPointer(start: pool.pointer(target.buffer, target.offset), count: target.length)
        var header = frame.header
        if header.isGSO {
            // A super-frame's field may hold a pseudo-header sum for another length: recompute it.
            header = Segmentation.describeHeaderless(frame: bytes, mtu: Self.maxOffloadFrame) ?? header
        }
        if header.flags & VirtioNetHeader.needsChecksum != 0 { _ = header.completeChecksum(in: bytes) }
        target.header = .none
        completed = target
        return target
    }

    /// Cuts the super-frame into MTU-size segments in buffers of their own, once per frame.
    private func buildSegments(of frame: Frame, network n: Int) {
        let bytes = UnsafeRawBufferPointer(start: pool.pointer(frame.buffer, frame.offset), count: frame.length)
        switch Segmentation.plan(frame: bytes, header: frame.header, mtu: networks[n].mtu) {
        case .failure(let error):
            segmentState = .failed(error == .tooBig ? .oversize : .badHeader)
        case .success(let plan):
            guard plan.count <= Self.maxSegments else { segmentState = .failed(.badHeader); return }
            segmentCount = 0
            for i in 0..<plan.count {
                guard let buffer = pool.allocate() else {
                    releaseSegments()
                    segmentState = .failed(.noBuffer)
                    return
                }
                segmentBuffers[i] = buffer
                segmentLengths[i] = Int32(Segmentation.emitSegment(i, of: bytes, plan: plan,
                                                                    into: pool.pointer(buffer, BufferPool.headroom)))
                segmentCount += 1
            }
            segmentState = .built
        }
    }

    private func releaseSegments() {
        for i in 0..<segmentCount { pool.release(segmentBuffers[i]) }
        segmentCount = 0
    }

    /// Drops this loop's own references to the copies made for one frame (queues hold theirs).
    @inline(__always)
    private func releaseVariants() {
        if let completed {
            pool.release(completed.buffer)
            self.completed = nil
        }
        if case .none = segmentState { return }
        releaseSegments()
        segmentState = .none
    }

    /// Puts a frame in port `s`'s send queue, or counts a drop when the queue is full.
    @inline(__always)
    private func enqueue(_ frame: Frame, to s: UInt16) {
        let port = ports + Int(s)
        guard port.pointee.queueCount < port.pointee.queueCapacity else { port.pointee.count(.queueFull); return }
        let entry = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount)
        entry.pointee.buffer = frame.buffer
        entry.pointee.offset = UInt32(frame.offset)
        entry.pointee.length = UInt32(frame.length)
        entry.pointee.header = frame.header
        pool.retain(frame.buffer)
        port.pointee.queueCount += 1
        markDirty(s)
    }

    @inline(__always)
    private func markDirty(_ s: UInt16) {
        if !ports[Int(s)].dirty {
            ports[Int(s)].dirty = true
            dirty[dirtyCount] = s
            dirtyCount += 1
        }
    }

    private func flushDirty() {
        var i = 0
        while i < dirtyCount {
            let s = dirty[i]
            ports[Int(s)].dirty = false
            if ports[Int(s)].isActive { submitSends(s) }
            i += 1
        }
        dirtyCount = 0
    }

    // MARK: - Sending

    private static let iovOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.iov)!
    private static let prefixOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.prefix)!
    private static let messageOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.message)!

    /// Submits the next chain of queued frames of port `s` unless one is in flight.
    private func submitSends(_ s: UInt16) {
        let port = ports + Int(s)
        let token = Token(.send, slot: s, generation: port.pointee.generation)
        if port.pointee.kind == .tap {
            // A TAP takes or drops each frame at once, never EAGAIN: writes complete in order as
            // they are submitted, so they need no links and every queued frame can be in flight.
            for i in port.pointee.inFlight..<port.pointee.queueCount {
                let entry = port.pointee.queue! + port.pointee.queueIndex(i)
                let sqe = ring.sqe()
                prepareDeviceWrite(sqe, entry, port)
                sqe.setToken(token)
            }
            port.pointee.inFlight = port.pointee.queueCount
            return
        }
        guard port.pointee.inFlight == 0, port.pointee.queueCount > 0, !port.pointee.retryPending,
              !port.pointee.waitingWritable else { return }
        switch port.pointee.kind {
        case .tap, .link, .dgramPeer, .dgramConnected:
            let n = min(port.pointee.queueCount, Self.sendBatch)
            for i in 0..<n {
                let entry = port.pointee.queue! + port.pointee.queueIndex(i)
                let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
                let sqe = ring.sqe()
                if port.pointee.kind.hasVnetHeader {
                    prepareDeviceWrite(sqe, entry, port)
                } else {
                    // MSG_DONTWAIT: a full peer gives EAGAIN here, and the loop waits for POLLOUT itself.
                    // (Left to io_uring's internal retry, a unix datagram send that hit a full peer
                    // was re-sent with an emptied buffer: zero-length datagrams, seen on Linux 6.18.)
                    io_uring_prep_send(sqe, port.pointee.fd, frame, Int(entry.pointee.length),
                                       Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                sqe.setToken(token)
                if i < n - 1 { sqe.link() }
            }
            port.pointee.inFlight = n
        case .dgramShared:
            let entry = port.pointee.queue! + port.pointee.queueIndex(0)
            let raw = UnsafeMutableRawPointer(entry)
            entry.pointee.iov.0 = iovec(iov_base: pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset)),
                                        iov_len: Int(entry.pointee.length))
            let address = port.pointee.address!
            entry.pointee.message = msghdr()
            entry.pointee.message.msg_name = UnsafeMutableRawPointer(address)
            entry.pointee.message.msg_namelen = address.pointee.length
            entry.pointee.message.msg_iov = (raw + Self.iovOffset).assumingMemoryBound(to: iovec.self)
            entry.pointee.message.msg_iovlen = 1
            let sqe = ring.sqe()
            io_uring_prep_sendmsg(sqe, networks[Int(port.pointee.network)].dgramFD(offload: port.pointee.viaOffloadSocket),
                                  (raw + Self.messageOffset).assumingMemoryBound(to: msghdr.self),
                                  UInt32(Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)))
            sqe.setToken(token)
            port.pointee.inFlight = 1
        case .stream:
            let n = min(port.pointee.queueCount, Self.sendBatch)
            let iov = port.pointee.streamIOV!
            var count = 0
            for i in 0..<n {
                let entry = port.pointee.queue! + port.pointee.queueIndex(i)
                let raw = UnsafeMutableRawPointer(entry)
                let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
                let length = Int(entry.pointee.length)
                StreamFramer.storePrefix(length, to: raw + Self.prefixOffset)
                let skip = i == 0 ? Int(port.pointee.partial) : 0
                if skip < 4 {
                    iov[count] = iovec(iov_base: raw + Self.prefixOffset + skip, iov_len: 4 - skip)
                    iov[count + 1] = iovec(iov_base: frame, iov_len: length)
                } else {
                    iov[count] = iovec(iov_base: frame + (skip - 4), iov_len: length - (skip - 4))
                    iov[count + 1] = iovec(iov_base: frame, iov_len: 0)
                }
                count += 2
            }
            let message = port.pointee.streamMessage!
            message.pointee = msghdr()
            message.pointee.msg_iov = iov
            message.pointee.msg_iovlen = count
            let sqe = ring.sqe()
            io_uring_prep_sendmsg(sqe, port.pointee.fd, message, UInt32(Int32(MSG_NOSIGNAL) | Int32(MSG_WAITALL)))
            sqe.setToken(token)
            port.pointee.inFlight = n
        }
    }

    /// A writev of virtio-net header + frame to a TAP or AF_PACKET port.
    @inline(__always)
    private func prepareDeviceWrite(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ entry: UnsafeMutablePointer<TxEntry>,
                                    _ port: UnsafeMutablePointer<PortState>) {
        let raw = UnsafeMutableRawPointer(entry)
        var header = entry.pointee.header
        header.numBuffers = 0
        header.store(to: raw + Self.prefixOffset)
        entry.pointee.iov.0 = iovec(iov_base: raw + Self.prefixOffset, iov_len: Int(port.pointee.headerSize))
        entry.pointee.iov.1 = iovec(iov_base: pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset)),
                                    iov_len: Int(entry.pointee.length))
        io_uring_prep_writev(sqe, port.pointee.fd, (raw + Self.iovOffset).assumingMemoryBound(to: iovec.self), 2, 0)
    }

    /// Releases the head entry of port `s`'s queue.
    @inline(__always)
    private func popHead(_ port: UnsafeMutablePointer<PortState>, sent: Bool) {
        let entry = port.pointee.queue! + port.pointee.queueIndex(0)
        if sent {
            port.pointee.txPackets &+= 1
            port.pointee.txBytes &+= UInt64(entry.pointee.length)
        }
        pool.release(entry.pointee.buffer)
        port.pointee.queueHead = (port.pointee.queueHead + 1) % port.pointee.queueCapacity
        port.pointee.queueCount -= 1
    }

    private func sendDone(slot s: UInt16, result: Int32) {
        let port = ports + Int(s)
        guard port.pointee.phase != .free, port.pointee.inFlight > 0 else { return }
        switch port.pointee.kind {
        case .tap:
            port.pointee.inFlight -= 1
            if result != -ECANCELED {  // cancelled: the port is closing, and drops what is left
                popHead(port, sent: result >= 0)
                if result < 0 { sendFailed(s, errno: -result) }
            }
        case .link, .dgramPeer, .dgramShared, .dgramConnected:
            if result == -EAGAIN && port.pointee.kind == .dgramShared {
                // dgram.sock is shared by every connected peer: never park on it, retry shortly.
                port.pointee.inFlight = 0
                if !port.pointee.retryPending {
                    port.pointee.retryPending = true
                    retrying.append(s)
                }
                return
            }
            port.pointee.inFlight -= 1
            // Completions of a chain arrive in order: each is the queue's head unless an earlier one
            // of the chain stopped it, after which the rest come back ECANCELED and stay queued.
            if result == -EAGAIN {
                port.pointee.chainStopped = true
                port.pointee.peerFull = true
            } else if result != -ECANCELED && !port.pointee.chainStopped {
                popHead(port, sent: result >= 0)
                if result < 0 {
                    port.pointee.chainStopped = true  // the rest of the chain is cancelled: resend it
                    sendFailed(s, errno: -result)
                }
            }
            if port.pointee.inFlight == 0 {
                port.pointee.chainStopped = false
                if port.pointee.peerFull {
                    port.pointee.peerFull = false
                    if port.pointee.isActive { armWritable(s) }
                }
            }
        case .stream:
            if result < 0 {
                port.pointee.inFlight = 0
                if result == -EAGAIN || result == -EINTR {
                    markDirty(s)
                } else {
                    sendFailed(s, errno: -result)
                }
                break
            }
            var done = Int(result) + Int(port.pointee.partial)
            var popped: Int32 = 0
            while popped < port.pointee.inFlight {
                let size = 4 + Int(port.pointee.queue![port.pointee.queueIndex(0)].length)
                guard done >= size else { break }
                done -= size
                popHead(port, sent: true)
                popped += 1
            }
            port.pointee.partial = Int32(done)
            port.pointee.inFlight = 0
        }
        if port.pointee.phase == .closing {
            finishIfIdle(s)
        } else if port.pointee.inFlight == 0 && port.pointee.queueCount > 0 {
            markDirty(s)
        }
    }

    /// Waits until port `s` can take more (its peer's queue has room), then sends again.
    private func armWritable(_ s: UInt16) {
        let port = ports + Int(s)
        guard port.pointee.fd >= 0, !port.pointee.waitingWritable else { markDirty(s); return }
        port.pointee.waitingWritable = true
        let sqe = ring.sqe()
        io_uring_prep_poll_add(sqe, port.pointee.fd, UInt32(POLLOUT))
        sqe.setToken(Token(.writable, slot: s, generation: port.pointee.generation))
    }

    private func writableDone(slot s: UInt16) {
        ports[Int(s)].waitingWritable = false
        if ports[Int(s)].isActive { markDirty(s) } else { finishIfIdle(s) }
    }

    /// What a failed send means for its port: the peer is gone, or the frame is lost and we go on.
    private func sendFailed(_ s: UInt16, errno code: Int32) {
        switch code {
        case ECONNREFUSED, ENOENT, ENOTCONN, EPIPE, ECONNRESET, EBADFD, ENODEV, ENXIO, EBADF:
            ports[Int(s)].count(.sendError)
            removePort(s, reason: "peer gone (\(errnoText(code)))")
        case EPERM where ports[Int(s)].kind == .dgramPeer:
            // The peer connected its socket to dgram.sock: it accepts datagrams from there only.
            ports[Int(s)].count(.sendError)
            ports[Int(s)].kind = .dgramShared
        default:  // ECANCELED (a broken chain), ENOBUFS, EMSGSIZE, EAGAIN, EINVAL ...
            ports[Int(s)].count(.sendError)
        }
    }

    private func retrySends() {
        let list = retrying
        retrying.removeAll(keepingCapacity: true)
        for s in list {
            ports[Int(s)].retryPending = false
            if ports[Int(s)].isActive { submitSends(s) } else { finishIfIdle(s) }
        }
    }

    // MARK: - TAP and link ports

    /// The pool slot a multishot completion on the shared ring filled, if it names one; the ring
    /// no longer holds it.
    @inline(__always)
    private func takenBuffer(_ flags: UInt32) -> UInt32? {
        guard flags & CompletionFlag.buffer != 0 else { return nil }
        let slot = flags >> CompletionFlag.bufferShift
        buffers.taken(slot)
        return slot
    }

    /// Arms the multishot read of a port that reads its own fd (TAP, link, attached dgram): one
    /// request, a completion per frame, buffers from the port's own ring.
    private func armDeviceRead(_ s: UInt16) {
        let port = ports + Int(s)
        port.pointee.receivePending = true
        let sqe = ring.sqe()
        sqe.prepareMultishotRead(fd: port.pointee.fd, group: shares.group(of: s))
        sqe.setToken(Token(.deviceRead, slot: s, generation: port.pointee.generation))
    }

    /// Re-arms every receive that ended because the shared buffer ring ran dry.
    private func rearmStarved() {
        guard buffers.count > 0 else { return }
        receivesStarved = false
        for n in 0..<specs.count {
            let net = networks + n
            for i in 0..<net.pointee.portCount {
                let s = net.pointee.portList[i]
                // Ports on a ring of their own are re-armed by refillShares.
                if ports[Int(s)].kind.readsOwnFD && !ports[Int(s)].receivePending && !shares.hasRing(s) {
                    armDeviceRead(s)
                }
            }
            for offload in [false, true] { armDgramReceive(network: n, offload: offload) }
        }
    }

    /// Once per loop turn (not per completion batch, which would give a flooding port more than
    /// one share per turn): tops up the ports' own rings and re-arms the reads that ran dry.
    private func refillShares() {
        shares.refill(from: &pool) { ports[Int($0)].isActive }
        for i in 0..<shares.readyCount {
            let s = shares.ready(i)
            if !ports[Int(s)].receivePending { armDeviceRead(s) }
        }
    }

    /// Once a second: logs the ports whose receive share kept running out (at most every
    /// `ReceiveShares.throttleLogInterval` per port). Allocates only when it logs.
    private func logThrottled() {
        let loopTurns = turns &- turnsAtTick
        turnsAtTick = turns
        for n in 0..<specs.count {
            let net = networks + n
            for i in 0..<net.pointee.portCount {
                let s = net.pointee.portList[i]
                guard shares.hasRing(s),
                      let dry = shares.throttled(s, budget: ports[Int(s)].dropCount(.rxBudget), loopTurns: loopTurns,
                                                 now: now) else { continue }
                Log.warning("network \(specs[n].name): port \(infos[Int(s)]?.id ?? "?") is throttled: it filled its "
                            + "receive share (\(ReceiveShares.ringEntries) frames a turn) in \(dry) of \(loopTurns) loop "
                            + "turns in the last second; the rest wait or are dropped in its own kernel queue (drops.rxBudget)")
            }
        }
    }

    private func deviceReadDone(slot s: UInt16, result: Int32, flags: UInt32) {
        let port = ports + Int(s)
        let more = flags & CompletionFlag.more != 0
        if !more { port.pointee.receivePending = false }
        var buffer: UInt32? = nil
        if flags & CompletionFlag.buffer != 0 {
            let slot = flags >> CompletionFlag.bufferShift
            if shares.hasRing(s) { shares.taken(slot, port: s) } else { buffers.taken(slot) }
            buffer = slot
        }
        defer { if let buffer { pool.release(buffer) } }
        guard port.pointee.isActive else { finishIfIdle(s); return }
        let headerSize = Int(port.pointee.headerSize)
        if result < 0 {
            switch -result {
            case ENOBUFS:
                if !shares.hasRing(s) {
                    port.pointee.count(.noBuffer)
                    receivesStarved = true
                } else {
                    // Its own ring ran dry: its share of this turn is used up (or the pool was short).
                    port.pointee.count(shares.starve(s) ? .rxBudget : .noBuffer)
                }
                return
            case EAGAIN, EINTR, ECANCELED: break
            case ENETDOWN where port.pointee.kind == .link && infos[Int(s)]?.interface.map(Link.exists) == true:
                break  // the interface went down, not away: it reports that once, then reads block
            default:
                removePort(s, reason: "read failed (\(errnoText(-result)))")
                return
            }
        } else if result >= headerSize, let buffer {
            let start = BufferRing.start
            // A 10-byte header (AF_PACKET on older kernels) has no num_buffers; an attached dgram socket has none.
            var header = headerSize == 0 ? VirtioNetHeader.none : VirtioNetHeader(loading: pool.pointer(buffer, start))
            if headerSize == 10 { header.numBuffers = 0 }
            forward(buffer: buffer, offset: start + headerSize, length: Int(result) - headerSize, header: header, from: s)
        } else {
            port.pointee.count(.runt)
        }
        if !more { armDeviceRead(s) }
    }

    // MARK: - dgram.sock

    /// Arms the multishot recvmsg of dgram.sock or dgram-offload.sock: a completion per datagram,
    /// each in a ring buffer laid out as io_uring_recvmsg_out, sender address, payload.
    private func armDgramReceive(network n: Int, offload: Bool) {
        let net = networks + n
        let receive = net.pointee.dgramReceives + (offload ? 1 : 0)
        let fd = net.pointee.dgramFD(offload: offload)
        guard !receive.pointee.pending, fd >= 0, running else { return }
        receive.pointee.message = msghdr()
        receive.pointee.message.msg_namelen = socklen_t(MemoryLayout<sockaddr_un>.size)
        receive.pointee.pending = true
        let sqe = ring.sqe()
        io_uring_prep_recvmsg_multishot(sqe, fd, &receive.pointee.message, 0)
        sqe.selectBuffer(group: BufferRing.sharedGroup)
        sqe.setToken(Token(.dgramReceive, slot: UInt16(n), aux: offload ? 1 : 0))
    }

    private func dgramReceiveDone(network n: Int, offload: Bool, result: Int32, flags: UInt32) {
        let net = networks + n
        let receive = net.pointee.dgramReceives + (offload ? 1 : 0)
        let more = flags & CompletionFlag.more != 0
        let taken = takenBuffer(flags)
        defer {
            if let taken { pool.release(taken) }
            if !more {
                receive.pointee.pending = false
                if result == -ENOBUFS { receivesStarved = true } else { armDgramReceive(network: n, offload: offload) }
            }
        }
        guard result >= 0, let buffer = taken else { return }
        let start = pool.pointer(buffer, BufferRing.start)
        guard let out = io_uring_recvmsg_validate(start, result, &receive.pointee.message) else { return }
        if out.pointee.flags & UInt32(MSG_TRUNC) != 0 {
            net.pointee.truncated &+= 1
            return
        }
        var address = UnixAddress()
        let nameLength = min(Int(out.pointee.namelen), MemoryLayout<sockaddr_un>.size)
        withUnsafeMutableBytes(of: &address.storage) { raw in
            raw.baseAddress!.copyMemory(from: io_uring_recvmsg_name(out)!, byteCount: nameLength)
        }
        address.length = socklen_t(nameLength)
        guard !address.isUnnamed else {
            net.pointee.unaddressable &+= 1
            return
        }
        let payload = io_uring_recvmsg_payload(out, &receive.pointee.message)!
        let length = Int(io_uring_recvmsg_payload_length(out, result, &receive.pointee.message))
        let offset = payload - pool.pointer(buffer)
        let isHandshake = length == 4 && payload.loadUnaligned(as: UInt32.self) == UInt32(bigEndian: 0x5646_4B54)  // "VFKT"
        let s: UInt16
        if let existing = findPeer(network: n, address: address) {
            s = existing
        } else {
            guard let created = addDgramPeer(network: n, address: address, vfkit: isHandshake,
                                             offload: offload) else { return }
            s = created
        }
        if isHandshake {
            // vfkit and krunkit's vfkit mode: connected to dgram.sock, offloading on (DESIGN §2).
            if ports[Int(s)].kind == .dgramPeer { ports[Int(s)].kind = .dgramShared }
            ports[Int(s)].offloadPeer = true
            return
        }
        forward(buffer: buffer, offset: offset, length: length, header: .none, from: s)
    }

    private func findPeer(network n: Int, address: UnixAddress) -> UInt16? {
        guard let s = peersByAddress[n][address.hash], let stored = ports[Int(s)].address,
              stored.pointee.sameAddress(as: address) else { return nil }
        return s
    }

    private func addDgramPeer(network n: Int, address: UnixAddress, vfkit: Bool, offload: Bool) -> UInt16? {
        var kind = PortKind.dgramShared
        var fd: Int32 = -1
        if !vfkit, let socket = try? Socket.make(Int32(SOCK_DGRAM.rawValue)) {
            // A socket of its own, connected to the peer: its send buffer and writability are this
            // peer's alone, so a peer that stops reading stalls nothing else (DESIGN §3).
            Socket.setOption(socket, SOL_SOCKET, SO_SNDBUF, 1 << 20)
            if Socket.connect(socket, to: address) == 0 {
                kind = .dgramPeer
                fd = socket
            } else {
                close(socket)
            }
        }
        let id = "dgram-\(nextPortNumber)"
        nextPortNumber += 1
        guard let s = addPort(network: n, kind: kind, fd: fd, info: PortInfo(id: id, peer: address.display)) else {
            if fd >= 0 { close(fd) }
            return nil
        }
        let stored = UnsafeMutablePointer<UnixAddress>.allocate(capacity: 1)
        stored.initialize(to: address)
        ports[Int(s)].address = stored
        ports[Int(s)].offloadPeer = vfkit || offload
        ports[Int(s)].viaOffloadSocket = offload
        peersByAddress[n][address.hash] = s
        Log.info("network \(specs[n].name): dgram peer \(address.display) joined as \(id)")
        return s
    }

    /// Removes dgram peers whose address no longer accepts datagrams.
    private func probePeers() {
        for n in 0..<specs.count {
            let net = networks + n
            var i = 0
            while i < net.pointee.portCount {
                let s = net.pointee.portList[i]
                i += 1
                guard let address = ports[Int(s)].address, ports[Int(s)].lastReceive != now else { continue }
                guard let probe = try? Socket.make(Int32(SOCK_DGRAM.rawValue)) else { continue }
                let r = Socket.connect(probe, to: address.pointee)
                close(probe)
                if r == ECONNREFUSED || r == ENOENT {
                    removePort(s, reason: "peer gone (\(errnoText(r)))")
                    i -= 1  // the list shifted
                }
            }
        }
    }

    // MARK: - stream.sock

    private func armAccept(network n: Int, offload: Bool) {
        let fd = networks[n].streamFD(offload: offload)
        let pending = offload ? networks[n].acceptPending.1 : networks[n].acceptPending.0
        guard fd >= 0, !pending else { return }
        if offload { networks[n].acceptPending.1 = true } else { networks[n].acceptPending.0 = true }
        let sqe = ring.sqe()
        io_uring_prep_accept(sqe, fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        sqe.setToken(Token(.streamAccept, slot: UInt16(n), aux: offload ? 1 : 0))
    }

    private func acceptDone(network n: Int, offload: Bool, result: Int32) {
        if offload { networks[n].acceptPending.1 = false } else { networks[n].acceptPending.0 = false }
        if running { armAccept(network: n, offload: offload) }
        guard result >= 0 else {
            if result != -ECANCELED { Log.warning("network \(specs[n].name): accept: \(errnoText(-result))") }
            return
        }
        let id = "stream-\(nextPortNumber)"
        nextPortNumber += 1
        let peer = offload ? "stream-offload.sock" : "stream.sock"
        guard let s = addPort(network: n, kind: .stream, fd: result, info: PortInfo(id: id, peer: peer)) else {
            close(result)
            return
        }
        ports[Int(s)].offloadPeer = offload
        ports[Int(s)].viaOffloadSocket = offload
        Log.info("network \(specs[n].name): stream peer joined as \(id)")
        armStreamReceive(s)
    }

    /// Bytes of a stream port's reassembly buffer: two of the largest frames with their prefixes.
    static let streamBufferSize = 2 * (65_550 + 4)

    private func armStreamReceive(_ s: UInt16) {
        let port = ports + Int(s)
        port.pointee.receivePending = true
        let fill = Int(port.pointee.streamFill)
        let sqe = ring.sqe()
        io_uring_prep_recv(sqe, port.pointee.fd, port.pointee.streamBuffer! + fill, Self.streamBufferSize - fill, 0)
        sqe.setToken(Token(.streamReceive, slot: s, generation: port.pointee.generation))
    }

    private func streamReceiveDone(slot s: UInt16, result: Int32) {
        let port = ports + Int(s)
        port.pointee.receivePending = false
        guard port.pointee.isActive else { finishIfIdle(s); return }
        if result == 0 { removePort(s, reason: "stream closed"); return }
        if result < 0 {
            if result == -EAGAIN || result == -EINTR { armStreamReceive(s); return }
            removePort(s, reason: "stream receive failed (\(errnoText(-result)))")
            return
        }
        let base = port.pointee.streamBuffer!
        let end = Int(port.pointee.streamFill) + Int(result)
        let maxFrame = port.pointee.offloadPeer ? Self.maxOffloadFrame : networks[Int(port.pointee.network)].maxFrame
        let kept = StreamFramer.drain(base, end: end, maxFrame: maxFrame) { frame, length in
            // Reassembly copies: the frame moves into a pool buffer of its own.
            guard let buffer = pool.allocate() else {
                port.pointee.rxPackets &+= 1
                port.pointee.count(.noBuffer)
                return
            }
            pool.pointer(buffer, BufferPool.headroom).copyMemory(from: frame, byteCount: length)
            forward(buffer: buffer, offset: BufferPool.headroom, length: length, header: .none, from: s)
            pool.release(buffer)
        }
        switch kept {
        case .success(let fill):
            port.pointee.streamFill = Int32(fill)
        case .failure(let bad):
            Socket.reset(port.pointee.fd)
            removePort(s, reason: "stream frame length \(bad.length) outside 14...\(maxFrame), connection reset")
            return
        }
        armStreamReceive(s)
    }

    // MARK: - Ports

    /// Claims a slot for a new port and wires it into its network; nil when no slot is left.
    private func addPort(network n: Int, kind: PortKind, fd: Int32, info: PortInfo) -> UInt16? {
        guard let s = freeSlots.popLast() else {
            networks[n].portLimit &+= 1
            Log.warning("network \(specs[n].name): port limit \(Self.maxPorts) reached, refusing \(info.id)")
            return nil
        }
        let net = networks + n
        let port = ports + Int(s)
        let generation = port.pointee.generation
        port.pointee = PortState()
        port.pointee.generation = generation
        port.pointee.phase = .active
        port.pointee.kind = kind
        port.pointee.network = Int32(n)
        port.pointee.fd = fd
        port.pointee.lastReceive = now
        port.pointee.guards = PortGuards.of(kind: kind, info: info, network: specs[n])
        let capacity = net.pointee.queueFrames
        port.pointee.queue = .allocate(capacity: capacity)
        port.pointee.queue!.initialize(repeating: TxEntry(buffer: 0, offset: 0, length: 0, header: .none), count: capacity)
        port.pointee.queueCapacity = Int32(capacity)
        if kind == .stream {
            port.pointee.streamBuffer = .allocate(byteCount: Self.streamBufferSize, alignment: 16)
            port.pointee.streamIOV = .allocate(capacity: 2 * Int(Self.sendBatch))
            port.pointee.streamMessage = .allocate(capacity: 1)
        }
        infos[Int(s)] = info
        net.pointee.portList[net.pointee.portCount] = s
        net.pointee.portCount += 1
        pool.setLimit(pool.limit + capacity)
        if kind.readsOwnFD {
            // Its own receive ring, so a flood from it uses up its share only (ReceiveShares).
            pool.setLimit(pool.limit + ReceiveShares.ringEntries)
            do throws(SwitchError) {
                try shares.open(s, uring: ring, pool: &pool)
            } catch {
                pool.setLimit(pool.limit - ReceiveShares.ringEntries)
                Log.warning("network \(specs[n].name): \(info.id) receives from the shared buffer ring: \(error)")
            }
        }
        return s
    }

    /// Takes a port out of forwarding now and frees it once its requests have completed.
    func removePort(_ s: UInt16, reason: String) {
        let port = ports + Int(s)
        guard port.pointee.phase == .active else { return }
        let n = Int(port.pointee.network)
        let net = networks + n
        Log.info("network \(specs[n].name): port \(infos[Int(s)]?.id ?? "?") removed: \(reason)")
        port.pointee.phase = .closing
        for i in 0..<net.pointee.portCount where net.pointee.portList[i] == s {
            (net.pointee.portList + i).update(from: net.pointee.portList + i + 1, count: net.pointee.portCount - i - 1)
            net.pointee.portCount -= 1
            break
        }
        net.pointee.table.flush(port: s)
        net.pointee.security.bindings.flush(port: s)
        if running { services[n]?.portRemoved(slot: s, generation: port.pointee.generation) }  // not at shutdown
        if net.pointee.uplink == s { net.pointee.uplink = Self.noUplink }
        if let address = port.pointee.address {
            let key = address.pointee.hash
            if peersByAddress[n][key] == s { peersByAddress[n][key] = nil }
        }
        // Frames not yet submitted are dropped now; those in flight complete (or are cancelled).
        while port.pointee.queueCount > port.pointee.inFlight {
            let last = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount - 1)
            pool.release(last.pointee.buffer)
            port.pointee.queueCount -= 1
        }
        if port.pointee.fd >= 0 && (port.pointee.receivePending || port.pointee.inFlight > 0 || port.pointee.waitingWritable) {
            if port.pointee.kind == .stream { _ = shutdown(port.pointee.fd, Socket.shutRDWR) }
            let sqe = ring.sqe()
            io_uring_prep_cancel_fd(sqe, port.pointee.fd, UInt32(IORING_ASYNC_CANCEL_ALL))
            sqe.setToken(Token(.cancel))
        }
        pool.setLimit(pool.limit - Int(port.pointee.queueCapacity))
        finishIfIdle(s)
    }

    /// Frees a closing port's slot once nothing of it is in flight.
    private func finishIfIdle(_ s: UInt16) {
        let port = ports + Int(s)
        guard port.pointee.phase == .closing, !port.pointee.receivePending, port.pointee.inFlight == 0,
              !port.pointee.retryPending, !port.pointee.waitingWritable else { return }
        while port.pointee.queueCount > 0 { popHead(port, sent: false) }
        if port.pointee.fd >= 0 { close(port.pointee.fd) }
        if shares.close(s, uring: ring, pool: &pool) { pool.setLimit(pool.limit - ReceiveShares.ringEntries) }
        if port.pointee.kind == .link, let info = infos[Int(s)] { Link.restore(info) }
        port.pointee.queue?.deallocate()
        port.pointee.streamBuffer?.deallocate()
        port.pointee.streamIOV?.deallocate()
        port.pointee.streamMessage?.deallocate()
        port.pointee.address?.deallocate()
        let generation = port.pointee.generation &+ 1
        port.pointee = PortState()
        port.pointee.generation = generation
        infos[Int(s)] = nil
        freeSlots.append(s)
    }

    /// Adds a TAP or link port whose fd the control thread opened; returns its slot.
    func addDevicePort(network n: Int, kind: PortKind, fd: Int32, headerSize: Int, info: PortInfo) -> UInt16? {
        guard let s = addPort(network: n, kind: kind, fd: fd, info: info) else { return nil }
        ports[Int(s)].headerSize = Int32(headerSize)
        if info.isUplink { networks[n].uplink = s }
        armDeviceRead(s)
        return s
    }

    /// Closes a device that never became a port (and restores what opening it changed).
    func closeUnused(_ device: OpenedDevice) {
        close(device.fd)
        if device.kind == .link { Link.restore(device.info) }
    }

    /// The slot of the port with `id` in network `n`.
    func slot(network n: Int, id: String) -> UInt16? {
        let net = networks + n
        for i in 0..<net.pointee.portCount {
            let s = net.pointee.portList[i]
            if infos[Int(s)]?.id == id { return s }
        }
        return nil
    }

    /// Closes the ports of a loop whose thread never started (a failed start-up).
    func closeWithoutRunning() {
        running = false
        closeAll()
    }

    /// Closes every port and waits (briefly) for their requests to finish.
    private func closeAll() {
        finishCaptures()
        for n in 0..<specs.count {
            while networks[n].portCount > 0 { removePort(networks[n].portList[0], reason: "shutting down") }
        }
        ring.submit()
        var waited = 0
        while waited < 50 && (0..<Self.maxPorts).contains(where: { ports[$0].phase == .closing }) {
            ring.submitAndWait(timeoutNanos: 10_000_000)
            _ = ring.drain { handle($0) }
            if !retrying.isEmpty { retrySends() }
            waited += 1
        }
        for s in 0..<Self.maxPorts where ports[s].phase == .closing && ports[s].fd >= 0 {
            close(ports[s].fd)  // completions never came: close anyway, we are exiting
            ports[s].fd = -1
        }
    }

    // MARK: - Control

    private func armEvent() {
        let sqe = ring.sqe()
        io_uring_prep_read(sqe, eventFD, eventValue, 8, 0)
        sqe.setToken(Token(.eventRead))
    }

    private func eventDone() {
        for command in commands.takeAll() {
            command.execute(on: self)
        }
        if running { armEvent() }
    }

    func stop() { running = false }

    /// Answers a DNS host-table question from network `n`'s DHCP leases (for the kernel-socket DNS
    /// server of host and shared networks, which runs on its own thread).
    func lookup(network n: Int, _ question: HostQuestion) -> HostAnswer {
        guard let dhcp = services[n]?.dhcp else { return .none }
        switch question {
        case .address(let name): return dhcp.hostAddress(named: name).map(HostAnswer.address) ?? .none
        case .hostname(let address): return dhcp.hostName(for: address).map(HostAnswer.hostname) ?? .none
        }
    }

    /// The status of every network, built on the loop thread.
    func snapshot() -> [NetworkStatus] {
        specs.enumerated().map { n, spec in
            let net = networks + n
            let macs = net.pointee.table.snapshot(now: now)
            var list: [PortStatus] = []
            for i in 0..<net.pointee.portCount {
                let s = net.pointee.portList[i]
                let p = ports[Int(s)]
                guard let info = infos[Int(s)] else { continue }
                var drops: [String: UInt64] = [:]
                for reason in DropReason.allCases where p.dropCount(reason) > 0 {
                    drops[reason.name] = p.dropCount(reason)
                }
                list.append(PortStatus(
                    id: info.id, kind: p.kind.name, peer: info.peer,
                    macs: macs.filter { $0.port == s }.map { $0.mac.description },
                    offloads: p.kind.hasVnetHeader ? ["csum", "tso4", "tso6", "uso"] : p.offloadPeer ? ["headerless"] : [],
                    rx: TrafficCount(packets: p.rxPackets, bytes: p.rxBytes),
                    tx: TrafficCount(packets: p.txPackets, bytes: p.txBytes),
                    drops: drops, segmented: p.segmented, superFrames: p.superFrames, security: p.guards.names))
            }
            var status = NetworkStatus(name: spec.name, mode: spec.mode.rawValue, subnet: spec.subnet.description,
                                       gateway: spec.gateway.description,
                                       ipv6Prefix: spec.ipv6Prefix.map { "\($0)/64" }, mtu: spec.mtu, uplink: spec.uplink,
                                       sockets: SocketPaths(), ports: list, leases: services[n]?.leaseStatus() ?? [])
            if net.pointee.unaddressable > 0 { status.drops["unaddressable"] = net.pointee.unaddressable }
            if net.pointee.truncated > 0 { status.drops["truncated"] = net.pointee.truncated }
            if net.pointee.portLimit > 0 { status.drops["portLimit"] = net.pointee.portLimit }
            for (name, count) in services[n]?.dhcpDrops ?? [] { status.drops[name] = count }
            if net.pointee.captures.count > 0 { status.captures = net.pointee.captures.count }
            return status
        }
    }
}

// MARK: - switchd attach, fdb, idle exit

extension ForwardingLoop {
    /// Adds one end of a `switchd attach` socketpair as a port of network `n`: a stream port, or a
    /// dgram port that reads its own fd (multishot read, one datagram per completion) and sends like a
    /// connected dgram peer. `offload`: a header-less offload peer (as on the offload sockets).
    /// Returns the new port's id, nil when no slot is left (the caller still owns `fd` then).
    func addAttachedPort(network n: Int, kind: AttachKind, fd: Int32, offload: Bool, peer: String) -> String? {
        let id = "\(kind.rawValue)-\(nextPortNumber)"
        nextPortNumber += 1
        let portKind: PortKind = kind == .stream ? .stream : .dgramConnected
        guard let s = addPort(network: n, kind: portKind, fd: fd, info: PortInfo(id: id, peer: peer)) else { return nil }
        ports[Int(s)].offloadPeer = offload
        if kind == .stream {
            armStreamReceive(s)
        } else {
            ports[Int(s)].headerSize = 0
            armDeviceRead(s)
        }
        Log.info("network \(specs[n].name): \(peer) joined as \(id)\(offload ? " (offload)" : "")")
        return id
    }

    /// Network `n`'s learned MACs with the id of their port and their age in seconds.
    func fdb(network n: Int) -> [FDBEntry] {
        networks[n].table.snapshot(now: now).compactMap { entry in
            guard ports[Int(entry.port)].isActive, let info = infos[Int(entry.port)] else { return nil }
            return FDBEntry(mac: entry.mac.description, port: info.id, age: Int(entry.age))
        }
    }

    /// Ports of every network, uplinks not counted (what `--exit-when-idle` watches).
    func clientPortCount() -> Int {
        (0..<specs.count).reduce(0) { sum, n in
            sum + networks[n].portCount - (networks[n].uplink == Self.noUplink ? 0 : 1)
        }
    }
}
