// VhostUserDevice: the backend side of one vhost-user-net connection (one port): control messages,
// guest memory and the queue pair, for the forwarding loop to drive.
//
// Control (QEMU docs/interop/vhost-user.rst): messages are read one at a time, header then payload,
// asking the socket for no more than the current message still needs, so the descriptors passed with
// a message (SCM_RIGHTS rides on its first byte) always arrive while that message is being read.
// Partial messages stay buffered across calls. A malformed header, a truncated payload, or values no
// correct frontend sends (a queue index past the pair, a ring size that is not a power of two, ring
// addresses outside guest memory, features not offered) end the connection: the protocol has no
// error reply without REPLY_ACK, and the spec lets a backend close on such errors ("Communication").
// An unknown or unsupported request is refused (a failure reply when NEED_REPLY asks for one) and
// logged; the connection stays.
//
// Ring states ("Ring states"): a ring starts at SET_VRING_KICK and stops at GET_VRING_BASE. Once
// VHOST_USER_F_PROTOCOL_FEATURES is negotiated (bit 30 in SET_FEATURES, or SET_PROTOCOL_FEATURES
// received: QEMU does the latter whenever the backend offers the bit) rings start disabled until
// SET_VRING_ENABLE 1. A started but disabled transmit ring is drained and its frames discarded
// (`txReady` stays true for it so the loop keeps draining); a disabled receive ring gets nothing.
//
// Queue 0 is the guest's receive queue (switch → guest, "rx"), queue 1 its transmit queue ("tx"),
// virtio-net §5.1.2.
import Glibc
import Proto
import SwitchSys

/// What `serviceControl` did to the connection.
enum VhostUserControlResult: Equatable {
    /// Messages handled. `changed`: a kick fd or the readiness of a ring changed (re-arm kick reads).
    case ok(changed: Bool)
    /// The connection must end (the peer closed it, or sent something malformed).
    case closed(reason: String)
}

/// One vhost-user-net connection: control state, guest memory and the two queues of one queue pair.
/// A struct the loop keeps in an UnsafeMutablePointer (no class: no ARC per frame).
struct VhostUserDevice {
    /// Features offered in GET_FEATURES (see docs: VERSION_1, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC,
    /// checksum and TSO both ways, MTU, PROTOCOL_FEATURES).
    static let offeredFeatures: UInt64 = VirtioFeature.version1 | VirtioFeature.netMergeableRxBuffers
        | VirtioFeature.ringEventIndex | VirtioFeature.ringIndirectDescriptors
        | VirtioFeature.netChecksum | VirtioFeature.netGuestChecksum
        | VirtioFeature.netGuestTSO4 | VirtioFeature.netGuestTSO6
        | VirtioFeature.netHostTSO4 | VirtioFeature.netHostTSO6
        | VirtioFeature.netMTU | VirtioFeature.protocolFeatures
    /// Protocol features offered in GET_PROTOCOL_FEATURES: MQ (GET_QUEUE_NUM), REPLY_ACK, NET_MTU.
    static let offeredProtocolFeatures: UInt64 = VhostUserProtocolFeature.multipleQueues
        | VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.mtu
    /// Queue pairs (GET_QUEUE_NUM).
    static let queuePairs: UInt64 = 1
    /// The smallest MTU NET_SET_MTU may set (virtio-net §5.1.4.1: 68, the IPv4 minimum).
    static let minimumMTU = 68

    /// The largest MTU the switch carries; NET_SET_MTU above it is refused.
    let mtu: Int
    /// Names the port in log lines.
    var name = "vhost-user"

    /// Features the frontend acknowledged (SET_FEATURES).
    private(set) var features: UInt64 = 0
    /// Protocol features the frontend acknowledged (SET_PROTOCOL_FEATURES).
    private(set) var protocolFeatures: UInt64 = 0
    private var protocolFeaturesNegotiated = false
    /// The MTU the frontend set with NET_SET_MTU (nil: none).
    private(set) var guestMTU: Int? = nil
    private(set) var memory = GuestMemory()
    /// Queue 0: switch → guest.
    private(set) var rx = Virtqueue()
    /// Queue 1: guest → switch.
    private(set) var tx = Virtqueue()
    /// Rings the guest broke (each makes the device unusable: the loop removes the port).
    private(set) var guestErrors: UInt64 = 0
    /// Why the device stopped, once a guest broke a ring.
    private(set) var brokenReason: String? = nil
    /// Bumped whenever a kick fd is replaced or closed (fd numbers are reused, so comparing them is not enough).
    private(set) var kickGeneration: UInt64 = 0

    // Control message being read.
    private var inbound = [UInt8](repeating: 0, count: VhostUserHeader.size + VhostUserHeader.maxPayload)
    private var inboundCount = 0
    private var pendingFDs: [Int32] = []
    private var isClosed = false

    /// A device for a switch that carries frames up to `mtu` bytes of IP payload.
    init(mtu: Int) {
        self.mtu = mtu
    }

    // MARK: - What the loop reads

    /// The virtio-net header length on both queues (12 with VERSION_1 or MRG_RXBUF, else 10:
    /// virtio-net §5.1.6).
    var headerSize: Int {
        features & (VirtioFeature.version1 | VirtioFeature.netMergeableRxBuffers) != 0 ? 12 : 10
    }

    /// The guest takes partial checksums and TSO super-frames on receive.
    var guestTakesOffloads: Bool {
        let all = VirtioFeature.netGuestChecksum | VirtioFeature.netGuestTSO4 | VirtioFeature.netGuestTSO6
        return features & all == all
    }

    /// The guest may send partial checksums (CSUM) and TSO super-frames (HOST_TSO4/6).
    var guestSendsOffloads: Bool {
        features & (VirtioFeature.netChecksum | VirtioFeature.netHostTSO4 | VirtioFeature.netHostTSO6) != 0
    }

    /// Queue 0 (switch → guest) kick eventfd: the guest added receive buffers (-1: none).
    var rxKickFD: Int32 { rx.kickFD }
    /// Queue 1 (guest → switch) kick eventfd: the guest added frames to send (-1: none).
    var txKickFD: Int32 { tx.kickFD }

    /// The receive ring can take frames: translated, started, enabled, not broken.
    var rxReady: Bool { isUsable(rx) && isEnabled(rx) }
    /// The transmit ring is to be drained: translated, started, not broken. A disabled ring is
    /// ready too (the protocol wants its frames consumed and discarded; `receiveFromGuest` does that).
    var txReady: Bool { isUsable(tx) }

    /// Transmit chains dropped: longer than the loop's buffer, or shorter than the header.
    var txDrops: UInt64 { tx.oversizeDrops &+ tx.shortDrops }
    /// Transmit chains discarded while the ring was disabled.
    var txDisabledDiscards: UInt64 { tx.disabledDiscards }

    private func isUsable(_ q: Virtqueue) -> Bool {
        brokenReason == nil && !isClosed && q.started && q.isTranslated
    }

    private func isEnabled(_ q: Virtqueue) -> Bool { !protocolFeaturesNegotiated || q.enabled }

    // MARK: - Rings

    /// Copies the next frame the guest made available on its transmit queue into `destination`:
    /// virtio-net header (`headerSize` bytes) then frame, whatever the descriptor split, and puts the
    /// chain on the used ring. A chain longer than `capacity` (or shorter than the header) is dropped
    /// (used length 0), counted in `txDrops`, and the next one is tried. `.empty` when nothing is
    /// waiting or the ring is not ready; `.broken` when the guest broke the ring.
    mutating func receiveFromGuest(into destination: UnsafeMutableRawPointer, capacity: Int) -> GuestTransfer {
        if let brokenReason { return .broken(brokenReason) }
        guard isUsable(tx) else { return .empty }
        let result = tx.receive(into: destination, capacity: capacity, minimumLength: headerSize,
                                discard: !isEnabled(tx), memory: memory)
        if case .broken(let why) = result { return markBroken(queue: 1, why) }
        return result
    }

    /// Writes `header` (num_buffers set here) and `length` bytes of `frame` into the guest's receive
    /// buffers, merging buffers when MRG_RXBUF is negotiated. All or nothing: `.noRoom` consumes
    /// nothing (also when the ring is not ready, or a frame does not fit one buffer without MRG_RXBUF).
    mutating func sendToGuest(header: VirtioNetHeader, frame: UnsafeRawPointer, length: Int) -> GuestTransfer {
        if let brokenReason { return .broken(brokenReason) }
        guard rxReady else { return .noRoom }
        let result = rx.send(header: header, headerSize: headerSize, frame: frame, length: length,
                             mergeable: features & VirtioFeature.netMergeableRxBuffers != 0, memory: memory)
        if case .broken(let why) = result { return markBroken(queue: 0, why) }
        return result
    }

    /// After a batch on a queue: publishes the used index and writes the call eventfd if the guest
    /// wants an interrupt (EVENT_IDX `used_event`, else the NO_INTERRUPT flag). True if it signalled.
    mutating func notifyGuest(rx onReceiveQueue: Bool) -> Bool {
        guard brokenReason == nil, !isClosed else { return false }
        let wanted = onReceiveQueue ? rx.publishUsed() : tx.publishUsed()
        let call = onReceiveQueue ? rx.callFD : tx.callFD
        guard wanted, call >= 0 else { return false }
        EventFD.signal(call)
        return true
    }

    /// After draining the transmit queue (`.empty`) or finding no receive room (`.noRoom`): asks the
    /// guest for a kick on its next buffer (EVENT_IDX `avail_event`), then looks again. True when more
    /// is already there (transmit: frames waiting; receive: buffers added since `.noRoom`), so the
    /// caller drains or sends again instead of waiting for the kick.
    mutating func enableKick(rx onReceiveQueue: Bool) -> Bool {
        if onReceiveQueue {
            guard rxReady else { return false }
            return rx.enableNotification(sinceSeen: true)
        }
        guard txReady else { return false }
        return tx.enableNotification(sinceSeen: false)
    }

    /// Unmaps all regions and closes the kick, call and err fds (and any passed fd not yet taken).
    /// Idempotent. The socket is the loop's to close.
    mutating func close() {
        guard !isClosed else { return }
        isClosed = true
        for q in [rx, tx] {
            for fd in [q.kickFD, q.callFD, q.errorFD] where fd >= 0 { closeDescriptor(fd) }
        }
        rx.kickFD = -1; rx.callFD = -1; rx.errorFD = -1
        tx.kickFD = -1; tx.callFD = -1; tx.errorFD = -1
        rx.dropTranslation()
        tx.dropTranslation()
        memory.unmapAll()
        closePending()
        kickGeneration &+= 1
    }

    private mutating func markBroken(queue: Int, _ why: String) -> GuestTransfer {
        let reason = "queue \(queue): \(why)"
        if brokenReason == nil {
            guestErrors &+= 1
            Log.warning("\(name): the guest broke its ring (\(reason)); the port stops")
        }
        brokenReason = reason
        return .broken(reason)
    }

    // MARK: - Control

    private struct Snapshot: Equatable {
        var kickGeneration: UInt64
        var rxReady: Bool
        var txReady: Bool
    }

    private var snapshot: Snapshot { Snapshot(kickGeneration: kickGeneration, rxReady: rxReady, txReady: txReady) }

    /// Reads every complete control message waiting on `fd` (a unix stream socket; never blocks:
    /// partial messages stay buffered for the next call), handles them and writes the replies.
    mutating func serviceControl(fd: Int32) -> VhostUserControlResult {
        guard !isClosed else { return .closed(reason: "the device is closed") }
        let before = snapshot
        var buffer = [UInt8]()
        swap(&buffer, &inbound)
        defer { swap(&buffer, &inbound) }
        while true {
            var want = VhostUserHeader.size - inboundCount
            if want <= 0 {
                let header = buffer.withUnsafeBytes { VhostUserHeader(loading: $0) }
                want = VhostUserHeader.size + Int(header.size) - inboundCount
                if want == 0 {
                    inboundCount = 0
                    var fds = pendingFDs
                    pendingFDs = []
                    let outcome = buffer.withUnsafeBytes { raw in
                        handle(header, payload: UnsafeRawBufferPointer(rebasing: raw[VhostUserHeader.size ..< VhostUserHeader.size + Int(header.size)]),
                               fds: &fds, socket: fd)
                    }
                    for leftover in fds { closeDescriptor(leftover) }
                    if let reason = outcome { return closing(reason) }
                    continue
                }
            }
            let start = inboundCount
            var failure: String? = nil
            let received: FDPassing.Received? =
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: FDPassing.maxDescriptors) { fds in
                    let r: FDPassing.Received? = buffer.withUnsafeMutableBytes { raw in
                        do {
                            return try FDPassing.receive(socket: fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[start ..< start + want]),
                                                         descriptors: fds.baseAddress!, capacity: fds.count)
                        } catch {
                            failure = "\(error)"
                            return nil
                        }
                    }
                    if let r { for i in 0 ..< r.descriptorCount { pendingFDs.append(fds[i]) } }
                    return r
                }
            if let failure { return closing("control socket: \(failure)") }
            guard let received else { break }  // nothing more waiting
            if received.descriptorsDropped {
                Log.warning("\(name): the frontend passed more than \(FDPassing.maxDescriptors) descriptors with one message; the rest were closed")
            }
            if received.byteCount == 0 {
                return closing(inboundCount == 0 ? "the frontend closed the connection"
                                                 : "the frontend closed the connection in the middle of a message")
            }
            inboundCount += received.byteCount
            if inboundCount == VhostUserHeader.size {
                let header = buffer.withUnsafeBytes { VhostUserHeader(loading: $0) }
                if let malformation = header.malformation { return closing(malformation) }
            }
        }
        return .ok(changed: snapshot != before)
    }

    private mutating func closing(_ reason: String) -> VhostUserControlResult {
        closePending()
        inboundCount = 0
        return .closed(reason: reason)
    }

    private mutating func closePending() {
        for fd in pendingFDs { closeDescriptor(fd) }
        pendingFDs = []
    }

    /// What handling a request came to.
    private enum Outcome {
        /// Done; acknowledged with 0 if NEED_REPLY asks.
        case ok
        /// Refused (logged); acknowledged with 1 if NEED_REPLY asks.
        case failed(String)
        /// Done, with this reply payload.
        case reply([UInt8])
        /// The connection must end.
        case disconnect(String)
    }

    /// Handles one message; returns why the connection must end, or nil. Takes the fds it keeps out of `fds`.
    private mutating func handle(_ header: VhostUserHeader, payload: UnsafeRawBufferPointer, fds: inout [Int32],
                                 socket: Int32) -> String? {
        let outcome = dispatch(header.request, payload, &fds)
        Log.debug("\(name): \(header.request), \(payload.count)-byte payload, \(fds.count) fds left, flags 0x\(String(header.flags, radix: 16)): \(outcome)")
        let replyAck = protocolFeatures & VhostUserProtocolFeature.replyAck != 0 && header.needsReply
        let answer: [UInt8]?
        switch outcome {
        case .ok: answer = replyAck ? VhostUserPayload.u64(0) : nil
        case .failed(let why):
            Log.warning("\(name): \(why)")
            answer = replyAck ? VhostUserPayload.u64(1) : nil
        case .reply(let payload): answer = payload
        case .disconnect(let why): return why
        }
        guard let answer else { return nil }
        let bytes = VhostUserHeader.reply(to: header.request, payload: answer)
        return bytes.withUnsafeBytes { raw -> String? in
            do {
                try FDPassing.send(socket: socket, raw)
                return nil
            } catch {
                return "reply to \(header.request): \(error)"
            }
        }
    }

    private mutating func dispatch(_ request: VhostUserRequest, _ payload: UnsafeRawBufferPointer,
                                   _ fds: inout [Int32]) -> Outcome {
        func truncated(_ needed: Int) -> Outcome {
            .disconnect("truncated \(request): \(payload.count)-byte payload, needs \(needed)")
        }
        func u64() -> UInt64? { payload.count >= 8 ? payload.loadUnaligned(as: UInt64.self) : nil }
        func state() -> (index: UInt32, num: UInt32)? {
            payload.count >= 8 ? (payload.loadUnaligned(as: UInt32.self), payload.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) : nil
        }
        func badQueue(_ index: UInt32) -> Outcome {
            .disconnect("\(request) for queue \(index): there is one queue pair (0 and 1)")
        }

        switch request {
        case .getFeatures:
            return .reply(VhostUserPayload.u64(Self.offeredFeatures))

        case .setFeatures:
            guard let value = u64() else { return truncated(8) }
            guard value & ~Self.offeredFeatures == 0 else {
                return .disconnect("SET_FEATURES 0x\(String(value, radix: 16)) asks for features not offered (0x\(String(value & ~Self.offeredFeatures, radix: 16)))")
            }
            features = value
            if value & VirtioFeature.protocolFeatures != 0 { protocolFeaturesNegotiated = true }
            for i in 0 ..< 2 {
                var q = queue(i)
                q.eventIndex = value & VirtioFeature.ringEventIndex != 0
                q.indirectAllowed = value & VirtioFeature.ringIndirectDescriptors != 0
                if let reason = setQueue(i, q, translating: true) { return .disconnect(reason) }
            }
            return .ok

        case .getProtocolFeatures:
            return .reply(VhostUserPayload.u64(Self.offeredProtocolFeatures))

        case .setProtocolFeatures:
            guard let value = u64() else { return truncated(8) }
            guard value & ~Self.offeredProtocolFeatures == 0 else {
                return .disconnect("SET_PROTOCOL_FEATURES 0x\(String(value, radix: 16)) asks for protocol features not offered")
            }
            protocolFeatures = value
            protocolFeaturesNegotiated = true
            return .ok

        case .setOwner:
            return .ok

        case .resetOwner:
            // Deprecated; the spec recommends ignoring it or disabling all rings. Stop both rings (the
            // frontend configures them again before use).
            for i in 0 ..< 2 {
                var q = queue(i)
                q.flushUsed()
                q.stop()
                _ = setQueue(i, q, translating: false)
            }
            return .ok

        case .setMemTable:
            return setMemTable(payload, &fds)

        case .setVringNum:
            guard let (index, num) = state() else { return truncated(8) }
            guard index < 2 else { return badQueue(index) }
            guard num > 0, num <= UInt32(Virtqueue.maxSize), num & (num - 1) == 0 else {
                return .disconnect("SET_VRING_NUM \(num) for queue \(index): not a power of two up to \(Virtqueue.maxSize)")
            }
            var q = queue(Int(index))
            q.size = Int(num)
            return setQueue(Int(index), q, translating: true).map { .disconnect($0) } ?? .ok

        case .setVringAddr:
            guard payload.count >= 40 else { return truncated(40) }
            let index = payload.loadUnaligned(as: UInt32.self)
            guard index < 2 else { return badQueue(index) }
            var q = queue(Int(index))
            // The log address (and VHOST_VRING_F_LOG) is for migration logging, which is not offered.
            q.descriptorUserAddress = payload.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            q.usedUserAddress = payload.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
            q.availUserAddress = payload.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            q.addressesSet = true
            q.needsSync = true
            return setQueue(Int(index), q, translating: true).map { .disconnect($0) } ?? .ok

        case .setVringBase:
            guard let (index, num) = state() else { return truncated(8) }
            guard index < 2 else { return badQueue(index) }
            guard num <= UInt32(UInt16.max) else { return .disconnect("SET_VRING_BASE \(num) for queue \(index): past 16 bits") }
            var q = queue(Int(index))
            q.lastAvail = UInt16(num)
            q.needsSync = true
            return setQueue(Int(index), q, translating: true).map { .disconnect($0) } ?? .ok

        case .getVringBase:
            guard let (index, _) = state() else { return truncated(8) }
            guard index < 2 else { return badQueue(index) }
            var q = queue(Int(index))
            q.flushUsed()
            q.stop()
            if q.kickFD >= 0 {
                closeDescriptor(q.kickFD)
                q.kickFD = -1
            }
            kickGeneration &+= 1
            let base = UInt32(q.lastAvail)
            _ = setQueue(Int(index), q, translating: false)
            return .reply(VhostUserPayload.state(index: index, num: base))

        case .setVringKick, .setVringCall, .setVringErr:
            guard let value = u64() else { return truncated(8) }
            let index = UInt32(value & 0xff)
            guard index < 2 else { return badQueue(index) }
            let noDescriptor = value & 0x100 != 0
            var fd: Int32 = -1
            if !noDescriptor {
                guard fds.count == 1 else { return .disconnect("\(request) for queue \(index) with \(fds.count) descriptors (needs 1)") }
                fd = fds.removeFirst()
            }
            var q = queue(Int(index))
            switch request {
            case .setVringKick:
                // Starts the ring (libvhost-user and DPDK start on this message; QEMU kicks right after).
                // With no fd the frontend wants the ring polled: started, kickFD -1.
                if q.kickFD >= 0 { closeDescriptor(q.kickFD) }
                q.kickFD = fd
                q.started = true
                kickGeneration &+= 1
            case .setVringCall:
                if q.callFD >= 0 { closeDescriptor(q.callFD) }
                q.callFD = fd
            default:
                if q.errorFD >= 0 { closeDescriptor(q.errorFD) }
                q.errorFD = fd
            }
            _ = setQueue(Int(index), q, translating: false)
            return .ok

        case .getQueueNum:
            return .reply(VhostUserPayload.u64(Self.queuePairs))

        case .setVringEnable:
            guard let (index, num) = state() else { return truncated(8) }
            guard index < 2 else { return badQueue(index) }
            var q = queue(Int(index))
            q.enabled = num != 0
            _ = setQueue(Int(index), q, translating: false)
            return .ok

        case .netSetMTU:
            guard let value = u64() else { return truncated(8) }
            guard value >= UInt64(Self.minimumMTU), value <= UInt64(mtu) else {
                return .failed("NET_SET_MTU \(value) refused: the switch carries MTUs \(Self.minimumMTU)...\(mtu)")
            }
            guestMTU = Int(value)
            return .ok

        default:
            return .failed("refused \(request): not supported by switchd")
        }
    }

    private func queue(_ index: Int) -> Virtqueue { index == 0 ? rx : tx }

    /// Stores queue `index`, translating its rings first when asked; returns why the connection must
    /// end when the addresses are set but lie outside guest memory.
    private mutating func setQueue(_ index: Int, _ q: Virtqueue, translating: Bool) -> String? {
        var q = q
        var failure: String? = nil
        if translating && !q.translate(memory) {
            failure = "queue \(index): ring addresses (descriptors 0x\(String(q.descriptorUserAddress, radix: 16)), avail 0x\(String(q.availUserAddress, radix: 16)), used 0x\(String(q.usedUserAddress, radix: 16)), size \(q.size)) are outside guest memory or misaligned"
        }
        if index == 0 { rx = q } else { tx = q }
        return failure
    }

    private mutating func setMemTable(_ payload: UnsafeRawBufferPointer, _ fds: inout [Int32]) -> Outcome {
        guard payload.count >= 8 else { return .disconnect("truncated SET_MEM_TABLE: \(payload.count)-byte payload") }
        let count = Int(payload.loadUnaligned(as: UInt32.self))
        guard count <= GuestMemory.maxRegions else {
            return .disconnect("SET_MEM_TABLE with \(count) regions (at most \(GuestMemory.maxRegions))")
        }
        guard payload.count >= 8 + 32 * count else {
            return .disconnect("truncated SET_MEM_TABLE: \(payload.count)-byte payload for \(count) regions")
        }
        guard fds.count == count else {
            return .disconnect("SET_MEM_TABLE with \(count) regions and \(fds.count) descriptors")
        }
        var next = GuestMemory()
        for i in 0 ..< count {
            let base = 8 + 32 * i
            let guestAddress = payload.loadUnaligned(fromByteOffset: base, as: UInt64.self)
            let size = payload.loadUnaligned(fromByteOffset: base + 8, as: UInt64.self)
            let userAddress = payload.loadUnaligned(fromByteOffset: base + 16, as: UInt64.self)
            let offset = payload.loadUnaligned(fromByteOffset: base + 24, as: UInt64.self)
            let mapping: SharedMapping
            do {
                mapping = try SharedMemory.map(fd: fds[i], size: size, offset: offset)
            } catch {
                next.unmapAll()
                return .disconnect("SET_MEM_TABLE region \(i): \(error)")
            }
            guard next.add(guestAddress: guestAddress, userAddress: userAddress, size: size,
                           host: mapping.base + Int(offset), mapping: mapping) else {
                SharedMemory.unmap(mapping)
                next.unmapAll()
                return .disconnect("SET_MEM_TABLE region \(i) (guest 0x\(String(guestAddress, radix: 16)), size \(size)) wraps the address space")
            }
        }
        // The mappings keep the files; the fds are no longer needed (the caller closes what is left in `fds`).
        var previous = memory
        memory = next
        var failure: String? = nil
        for i in 0 ..< 2 where failure == nil {
            failure = setQueue(i, queue(i), translating: true)
        }
        previous.unmapAll()
        return failure.map { .disconnect($0) } ?? .ok
    }
}

/// Closes a descriptor switchd received from the frontend.
private func closeDescriptor(_ fd: Int32) {
    Descriptor.close(fd)
}
