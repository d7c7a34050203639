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

/// A dgram.sock receive in flight: its message header, iovec, sender address and buffer.
struct DgramReceive {
    var message = msghdr()
    var iov = iovec()
    var address = UnixAddress()
    var buffer: UInt32 = 0
    var pending = false
}

/// Runtime state of one network.
struct NetworkRuntime {
    /// The longest frame accepted without offload metadata: MTU + Ethernet header + one VLAN tag.
    var maxFrame: Int
    var queueFrames: Int
    var table: MACTable
    /// Active port slots.
    var portList: UnsafeMutablePointer<UInt16>
    var portCount = 0
    var dgramFD: Int32
    var streamFD: Int32
    var dgramReceive: UnsafeMutablePointer<DgramReceive>
    var acceptPending = false
    /// Datagrams from unnamed senders (they cannot be answered) and truncated ones.
    var unaddressable: UInt64 = 0
    var truncated: UInt64 = 0
}

final class ForwardingLoop {
    static let maxPorts = 4096
    /// Frames per send chain (TAP, dgram) or per stream sendmsg.
    static let sendBatch: Int32 = 64
    /// Receive reserve kept in the buffer pool on top of every port's queue.
    static let receiveReserve = 512
    /// Seconds between probes of dgram peers' addresses.
    static let probeInterval: UInt32 = 3

    let ring: IOUring
    var pool: BufferPool
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
    private var starvedTaps = 0
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

    init(specs: [NetworkSpec], sockets: [(dgram: Int32, stream: Int32)], commands: CommandQueue) throws(SwitchError) {
        ring = try IOUring(entries: 4096)
        pool = try BufferPool(capacity: 16384, initialLimit: Self.receiveReserve)
        ports = .allocate(capacity: Self.maxPorts)
        ports.initialize(repeating: PortState(), count: Self.maxPorts)
        infos = Array(repeating: nil, count: Self.maxPorts)
        freeSlots = (0..<UInt16(Self.maxPorts)).reversed()
        dirty = .allocate(capacity: Self.maxPorts)
        self.specs = specs
        networks = .allocate(capacity: max(1, specs.count))
        for (i, spec) in specs.enumerated() {
            let receive = UnsafeMutablePointer<DgramReceive>.allocate(capacity: 1)
            receive.initialize(to: DgramReceive())
            let list = UnsafeMutablePointer<UInt16>.allocate(capacity: Self.maxPorts)
            (networks + i).initialize(to: NetworkRuntime(
                maxFrame: spec.mtu + 18, queueFrames: spec.queueFrames,
                table: MACTable(maxPorts: Self.maxPorts, limitPerPort: spec.macLimit, ageing: spec.macAgeing),
                portList: list, dgramFD: sockets[i].dgram, streamFD: sockets[i].stream, dgramReceive: receive))
        }
        peersByAddress = Array(repeating: [:], count: specs.count)
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
            networks[n].dgramReceive.deallocate()
        }
        networks.deallocate()
        ports.deallocate()
        dirty.deallocate()
        eventValue.deallocate()
        pool.destroy()
        close(eventFD)
    }

    // MARK: - Running

    /// Runs until a `stop` command; then closes every port.
    func run() {
        armEvent()
        for n in 0..<specs.count {
            armDgramReceive(network: n)
            armAccept(network: n)
        }
        while running {
            ring.submitAndWait(timeoutNanos: retrying.isEmpty ? 100_000_000 : 1_000_000)
            updateClock()
            while ring.drain({ handle($0) }) == IOUring.completionBatch {
                flushDirty()
            }
            flushDirty()
            if !retrying.isEmpty { retrySends() }
            if starvedTaps > 0 { rearmStarved() }
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
        for n in 0..<specs.count { networks[n].table.age(now: now) }
        if now &- lastProbe >= Self.probeInterval {
            lastProbe = now
            probePeers()
        }
    }

    // MARK: - Completions

    @inline(__always)
    private func handle(_ c: Completion) {
        switch c.token.operation {
        case .deviceRead: deviceReadDone(slot: c.token.slot, result: c.result)
        case .dgramReceive: dgramReceiveDone(network: Int(c.token.slot), result: c.result)
        case .streamAccept: acceptDone(network: Int(c.token.slot), result: c.result)
        case .streamReceive: streamReceiveDone(slot: c.token.slot, result: c.result)
        case .send: sendDone(slot: c.token.slot, result: c.result)
        case .eventRead: eventDone()
        case .cancel: break
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
        guard header.isGSO || length <= net.pointee.maxFrame else { port.pointee.count(.oversize); return }
        let frame = pool.pointer(buffer, offset)
        var header = header
        if header.flags & VirtioNetHeader.needsChecksum != 0 && !header.isGSO {
            // Complete partial checksums once here, so every egress gets a whole frame. (Passing
            // them on to ports that can take them is the offloads issue's per-egress work.)
            guard header.completeChecksum(in: UnsafeMutableRawBufferPointer(start: frame, count: length)) else {
                port.pointee.count(.badHeader)
                return
            }
            header.flags = VirtioNetHeader.dataValid
        }
        let source = MACAddress(loading: frame + 6)
        guard !source.isMulticast && !source.isZero else { port.pointee.count(.badSource); return }
        if source.rawValue != port.pointee.lastSource || now != port.pointee.lastReceive {
            port.pointee.lastSource = source.rawValue
            _ = net.pointee.table.learn(source, port: s, generation: port.pointee.generation, now: now)
        }
        port.pointee.lastReceive = now
        let destination = MACAddress(loading: frame)
        if !destination.isMulticast, let (out, generation) = net.pointee.table.lookup(destination, now: now),
           ports[Int(out)].generation == generation, ports[Int(out)].isActive {
            if out == s { port.pointee.count(.hairpin); return }
            enqueue(buffer: buffer, offset: offset, length: length, header: header, to: out)
            return
        }
        for i in 0..<net.pointee.portCount {
            let out = net.pointee.portList[i]
            if out != s { enqueue(buffer: buffer, offset: offset, length: length, header: header, to: out) }
        }
    }

    /// Puts a frame in port `s`'s send queue, or counts a drop when the queue is full.
    @inline(__always)
    private func enqueue(buffer: UInt32, offset: Int, length: Int, header: VirtioNetHeader, to s: UInt16) {
        let port = ports + Int(s)
        guard port.pointee.queueCount < port.pointee.queueCapacity else { port.pointee.count(.queueFull); return }
        if header.isGSO && !port.pointee.kind.hasVnetHeader {
            port.pointee.count(.oversize)  // software segmentation comes with the offloads issue
            return
        }
        let entry = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount)
        entry.pointee.buffer = buffer
        entry.pointee.offset = UInt32(offset)
        entry.pointee.length = UInt32(length)
        entry.pointee.header = header
        pool.retain(buffer)
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
        guard port.pointee.inFlight == 0, port.pointee.queueCount > 0, !port.pointee.retryPending else { return }
        let token = Token(.send, slot: s, generation: port.pointee.generation)
        switch port.pointee.kind {
        case .tap, .link, .dgramPeer:
            let n = min(port.pointee.queueCount, Self.sendBatch)
            for i in 0..<n {
                let entry = port.pointee.queue! + port.pointee.queueIndex(i)
                let raw = UnsafeMutableRawPointer(entry)
                let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
                let sqe = ring.sqe()
                if port.pointee.kind.hasVnetHeader {
                    var header = entry.pointee.header
                    header.numBuffers = 0
                    header.store(to: raw + Self.prefixOffset)
                    entry.pointee.iov.0 = iovec(iov_base: raw + Self.prefixOffset, iov_len: Int(port.pointee.headerSize))
                    entry.pointee.iov.1 = iovec(iov_base: frame, iov_len: Int(entry.pointee.length))
                    io_uring_prep_writev(sqe, port.pointee.fd, (raw + Self.iovOffset).assumingMemoryBound(to: iovec.self), 2, 0)
                } else {
                    io_uring_prep_send(sqe, port.pointee.fd, frame, Int(entry.pointee.length), Int32(MSG_NOSIGNAL))
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
            io_uring_prep_sendmsg(sqe, networks[Int(port.pointee.network)].dgramFD,
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
        case .tap, .link, .dgramPeer, .dgramShared:
            if result == -EAGAIN && port.pointee.kind == .dgramShared {
                // dgram.sock is shared by every connected peer: never park on it, retry shortly.
                port.pointee.inFlight = 0
                if !port.pointee.retryPending {
                    port.pointee.retryPending = true
                    retrying.append(s)
                }
                return
            }
            popHead(port, sent: result >= 0)
            port.pointee.inFlight -= 1
            if result < 0 { sendFailed(s, errno: -result) }
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

    private func armDeviceRead(_ s: UInt16) {
        let port = ports + Int(s)
        guard let buffer = pool.allocate() else {
            port.pointee.count(.noBuffer)
            starvedTaps += 1
            return
        }
        port.pointee.receiveBuffer = buffer
        port.pointee.receivePending = true
        let sqe = ring.sqe()
        let start = BufferPool.headroom - Int(port.pointee.headerSize)
        io_uring_prep_read(sqe, port.pointee.fd, pool.pointer(buffer, start), UInt32(BufferPool.slotSize - start), 0)
        sqe.setToken(Token(.deviceRead, slot: s, generation: port.pointee.generation))
    }

    private func rearmStarved() {
        starvedTaps = 0
        for n in 0..<specs.count {
            let net = networks + n
            for i in 0..<net.pointee.portCount {
                let s = net.pointee.portList[i]
                if ports[Int(s)].kind.hasVnetHeader && !ports[Int(s)].receivePending { armDeviceRead(s) }
            }
        }
    }

    private func deviceReadDone(slot s: UInt16, result: Int32) {
        let port = ports + Int(s)
        let buffer = port.pointee.receiveBuffer
        port.pointee.receivePending = false
        defer { pool.release(buffer) }
        guard port.pointee.isActive else { finishIfIdle(s); return }
        let headerSize = Int(port.pointee.headerSize)
        if result < 0 {
            switch -result {
            case EAGAIN, EINTR, ENOBUFS: break
            case ENETDOWN where port.pointee.kind == .link && infos[Int(s)]?.interface.map(Link.exists) == true:
                break  // the interface went down, not away: it reports that once, then reads block
            default:
                removePort(s, reason: "read failed (\(errnoText(-result)))")
                return
            }
        } else if result >= headerSize {
            let start = BufferPool.headroom - headerSize
            var header = VirtioNetHeader.none
            if headerSize >= 10 {
                // A 10-byte header has no num_buffers; read the fields it has.
                header = VirtioNetHeader(loading: pool.pointer(buffer, start))
                if headerSize == 10 { header.numBuffers = 0 }
            }
            forward(buffer: buffer, offset: BufferPool.headroom, length: Int(result) - headerSize,
                    header: header, from: s)
        } else {
            port.pointee.count(.runt)
        }
        armDeviceRead(s)
    }

    // MARK: - dgram.sock

    private func armDgramReceive(network n: Int) {
        let net = networks + n
        let receive = net.pointee.dgramReceive
        guard !receive.pointee.pending, net.pointee.dgramFD >= 0 else { return }
        guard let buffer = pool.allocate() else { return }  // retried on the next turn's completions
        receive.pointee.buffer = buffer
        receive.pointee.iov = iovec(iov_base: pool.pointer(buffer, BufferPool.headroom),
                                    iov_len: BufferPool.slotSize - BufferPool.headroom)
        receive.pointee.message = msghdr()
        receive.pointee.message.msg_name = UnsafeMutableRawPointer(receive).advanced(
            by: MemoryLayout<DgramReceive>.offset(of: \DgramReceive.address.storage)!)
        receive.pointee.message.msg_namelen = socklen_t(MemoryLayout<sockaddr_un>.size)
        receive.pointee.message.msg_iov = UnsafeMutableRawPointer(receive).advanced(
            by: MemoryLayout<DgramReceive>.offset(of: \DgramReceive.iov)!).assumingMemoryBound(to: iovec.self)
        receive.pointee.message.msg_iovlen = 1
        receive.pointee.pending = true
        let sqe = ring.sqe()
        io_uring_prep_recvmsg(sqe, net.pointee.dgramFD, &receive.pointee.message, 0)
        sqe.setToken(Token(.dgramReceive, slot: UInt16(n)))
    }

    private func dgramReceiveDone(network n: Int, result: Int32) {
        let net = networks + n
        let receive = net.pointee.dgramReceive
        receive.pointee.pending = false
        let buffer = receive.pointee.buffer
        defer {
            pool.release(buffer)
            if running { armDgramReceive(network: n) }
        }
        guard result >= 0 else { return }
        receive.pointee.address.length = receive.pointee.message.msg_namelen
        guard receive.pointee.message.msg_flags & Int32(MSG_TRUNC) == 0 else {
            net.pointee.truncated &+= 1
            return
        }
        guard !receive.pointee.address.isUnnamed else {
            net.pointee.unaddressable &+= 1
            return
        }
        let frame = pool.pointer(buffer, BufferPool.headroom)
        let isHandshake = result == 4 && frame.loadUnaligned(as: UInt32.self) == UInt32(bigEndian: 0x5646_4B54)  // "VFKT"
        let s: UInt16
        if let existing = findPeer(network: n, address: receive.pointee.address) {
            s = existing
        } else {
            guard let created = addDgramPeer(network: n, address: receive.pointee.address, vfkit: isHandshake) else { return }
            s = created
        }
        if isHandshake {
            if ports[Int(s)].kind == .dgramPeer { ports[Int(s)].kind = .dgramShared }
            return
        }
        forward(buffer: buffer, offset: BufferPool.headroom, length: Int(result), header: .none, from: s)
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    private func findPeer(network n: Int, address: UnixAddress) -> UInt16? {
        let key = Self.hash(address.pathBytes)
        guard let s = peersByAddress[n][key], let stored = ports[Int(s)].address,
              stored.pointee.pathBytes.elementsEqual(address.pathBytes) else { return nil }
        return s
    }

    private func addDgramPeer(network n: Int, address: UnixAddress, vfkit: Bool) -> UInt16? {
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
        peersByAddress[n][Self.hash(address.pathBytes)] = s
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

    private func armAccept(network n: Int) {
        guard networks[n].streamFD >= 0, !networks[n].acceptPending else { return }
        networks[n].acceptPending = true
        let sqe = ring.sqe()
        io_uring_prep_accept(sqe, networks[n].streamFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        sqe.setToken(Token(.streamAccept, slot: UInt16(n)))
    }

    private func acceptDone(network n: Int, result: Int32) {
        networks[n].acceptPending = false
        if running { armAccept(network: n) }
        guard result >= 0 else {
            if result != -ECANCELED { Log.warning("network \(specs[n].name): accept: \(errnoText(-result))") }
            return
        }
        let id = "stream-\(nextPortNumber)"
        nextPortNumber += 1
        guard let s = addPort(network: n, kind: .stream, fd: result, info: PortInfo(id: id, peer: "stream.sock")) else {
            close(result)
            return
        }
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
        let maxFrame = networks[Int(port.pointee.network)].maxFrame
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
        if let address = port.pointee.address {
            let key = Self.hash(address.pointee.pathBytes)
            if peersByAddress[n][key] == s { peersByAddress[n][key] = nil }
        }
        // Frames not yet submitted are dropped now; those in flight complete (or are cancelled).
        while port.pointee.queueCount > port.pointee.inFlight {
            let last = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount - 1)
            pool.release(last.pointee.buffer)
            port.pointee.queueCount -= 1
        }
        if port.pointee.fd >= 0 && (port.pointee.receivePending || port.pointee.inFlight > 0) {
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
              !port.pointee.retryPending else { return }
        while port.pointee.queueCount > 0 { popHead(port, sent: false) }
        if port.pointee.fd >= 0 { close(port.pointee.fd) }
        if let info = infos[Int(s)], info.restoreIPv6, let interface = info.interface {
            Link.setIPv6(interface: interface, enabled: true)
        }
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
        armDeviceRead(s)
        return s
    }

    /// Closes a device that never became a port (and restores what opening it changed).
    func closeUnused(_ device: OpenedDevice) {
        close(device.fd)
        if device.info.restoreIPv6, let interface = device.info.interface { Link.setIPv6(interface: interface, enabled: true) }
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
                    offloads: [],
                    rx: TrafficCount(packets: p.rxPackets, bytes: p.rxBytes),
                    tx: TrafficCount(packets: p.txPackets, bytes: p.txBytes),
                    drops: drops))
            }
            return NetworkStatus(name: spec.name, mode: spec.mode.rawValue, subnet: spec.subnet.description,
                                 gateway: spec.gateway.description, mtu: spec.mtu,
                                 sockets: SocketPaths(), ports: list)
        }
    }
}
