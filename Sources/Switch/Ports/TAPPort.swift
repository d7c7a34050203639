// TAPPort: receive and send of the ports that read their own fd: TAP, link (AF_PACKET) and attached dgram.
//
// Receive: one multishot read per port, a completion per frame, buffers from the port's own ring
// (ReceiveShares), so a flooding port uses up its own share only. Send: a TAP takes or drops each
// frame at once and never says EAGAIN, so its writes need no links; a link port and an attached
// dgram socket send in linked chains (SendQueue.swift). Opening the devices is TAP.swift and
// Link.swift, on the control thread.
import SwitchSys
import Glibc
import Proto

extension ForwardingLoop {
    // MARK: - Receive

    /// Arms the multishot read of a port that reads its own fd (TAP, link, attached dgram): one
    /// request, a completion per frame, buffers from the port's own ring.
    func armDeviceRead(_ slot: UInt16) {
        let port = ports + Int(slot)
        port.pointee.receivePending = true
        ring.prepareReadMultishot(fd: port.pointee.fd, group: shares.group(of: slot),
                                  token: Token(.deviceRead, slot: slot, generation: port.pointee.generation))
    }

    func deviceReadDone(slot: UInt16, result: Int32, flags: UInt32) {
        let port = ports + Int(slot)
        let more = flags & CompletionFlag.more != 0
        if !more { port.pointee.receivePending = false }
        var buffer: UInt32? = nil
        if flags & CompletionFlag.buffer != 0 {
            let taken = flags >> CompletionFlag.bufferShift
            if shares.hasRing(slot) { shares.taken(taken, port: slot) } else { buffers.taken(taken) }
            buffer = taken
        }
        defer { if let buffer { pool.release(buffer) } }
        guard port.pointee.isActive else { finishIfIdle(slot); return }
        let headerSize = Int(port.pointee.headerSize)
        if let error = Errno(completion: result) {
            switch error {
            case .ENOBUFS:
                if !shares.hasRing(slot) {
                    port.pointee.count(.noBuffer)
                    receivesStarved = true
                } else {
                    // Its own ring ran dry: its share of this turn is used up (or the pool was short).
                    port.pointee.count(shares.starve(slot) ? .rxBudget : .noBuffer)
                }
                return
            case .EAGAIN, .EINTR, .ECANCELED: break
            case .ENETDOWN where port.pointee.kind == .link && infos[Int(slot)]?.interface.map(Link.exists) == true:
                break  // the interface went down, not away: it reports that once, then reads block
            default:
                removePort(slot, reason: "read failed (\(error))")
                return
            }
        } else if result >= headerSize, let buffer {
            let start = BufferRing.start
            // A 10-byte header (AF_PACKET on older kernels) has no num_buffers; an attached dgram socket has none.
            var header = headerSize == 0 ? VirtioNetHeader.none : VirtioNetHeader(loading: pool.pointer(buffer, start))
            if headerSize == 10 { header.numBuffers = 0 }
            forward(buffer: buffer, offset: start + headerSize, length: Int(result) - headerSize, header: header, from: slot)
        } else {
            port.pointee.count(.runt)
        }
        if !more { armDeviceRead(slot) }
    }

    /// Re-arms every receive that ended because the shared buffer ring ran dry (device reads
    /// without a ring of their own, and the dgram sockets' recvmsg).
    func rearmStarved() {
        guard buffers.count > 0 else { return }
        receivesStarved = false
        for i in 0..<portCount {
            let slot = portList[i]
            // Ports on a ring of their own are re-armed by refillShares.
            if ports[Int(slot)].kind.readsOwnFD && !ports[Int(slot)].receivePending && !shares.hasRing(slot) {
                armDeviceRead(slot)
            }
        }
        for offload in [false, true] { armDgramReceive(offload: offload) }
    }

    /// Once per loop turn (not per completion batch, which would give a flooding port more than
    /// one share per turn): tops up the ports' own rings and re-arms the reads that ran dry.
    func refillShares() {
        shares.refill(from: &pool) { ports[Int($0)].isActive }
        for i in 0..<shares.readyCount {
            let slot = shares.ready(i)
            if !ports[Int(slot)].receivePending { armDeviceRead(slot) }
        }
    }

    /// Once a second: logs the ports whose receive share kept running out (at most every
    /// `ReceiveShares.throttleLogInterval` per port). Allocates only when it logs.
    func logThrottled() {
        let loopTurns = turns &- turnsAtTick
        turnsAtTick = turns
        for i in 0..<portCount {
            let slot = portList[i]
            guard shares.hasRing(slot),
                  let dry = shares.throttled(slot, budget: ports[Int(slot)].dropCount(.rxBudget), loopTurns: loopTurns,
                                             now: now) else { continue }
            Log.warning("network \(spec.name): port \(infos[Int(slot)]?.id ?? "?") is throttled: it filled its "
                        + "receive share (\(ReceiveShares.ringEntries) frames a turn) in \(dry) of \(loopTurns) loop "
                        + "turns in the last second; the rest wait or are dropped in its own kernel queue (drops.rxBudget)")
        }
    }

    // MARK: - Send

    /// A TAP takes or drops each frame at once, never EAGAIN: writes complete in order as they are
    /// submitted, so they need no links and every queued frame can be in flight.
    func submitTAPSends(_ port: UnsafeMutablePointer<PortState>, token: Token) {
        for i in port.pointee.inFlight..<port.pointee.queueCount {
            let entry = port.pointee.queue! + port.pointee.queueIndex(i)
            prepareDeviceWrite(entry, port, token: token)
        }
        port.pointee.inFlight = port.pointee.queueCount
    }

    /// The write of virtio-net header + frame to a TAP or AF_PACKET port.
    ///
    /// When the frame's buffer is this entry's alone (reference count 1: not flooded, not a
    /// segment sharing its slot) and the header fits in front of the frame inside the slot, the
    /// header is stored there and header + frame go out as one plain write. Otherwise (a flooded
    /// buffer may be on its way to ports with other headers) the header is stored in the entry and
    /// both go out as a writev of two. The plain write spares the kernel importing an iovec array
    /// per frame (2.3 % of the forwarding core at the small-frame limit; docs/decisions.md).
    @inline(__always) @discardableResult
    func prepareDeviceWrite(_ entry: UnsafeMutablePointer<TxEntry>, _ port: UnsafeMutablePointer<PortState>,
                            token: Token) -> Submission {
        let raw = UnsafeMutableRawPointer(entry)
        var header = entry.pointee.header
        header.numBuffers = 0
        let headerSize = Int(port.pointee.headerSize)
        let offset = Int(entry.pointee.offset), length = Int(entry.pointee.length)
        // `store` writes all 12 bytes: in front of the frame only for a 12-byte header (or none).
        if (headerSize == VirtioNetHeader.size || headerSize == 0) && offset >= headerSize
            && pool.referenceCount(entry.pointee.buffer) == 1 {
            let start = pool.pointer(entry.pointee.buffer, offset - headerSize)
            if headerSize > 0 { header.store(to: start) }
            return ring.prepareWrite(fd: port.pointee.fd, from: start, length: UInt32(headerSize + length), token: token)
        }
        header.store(to: raw + Self.prefixOffset)
        entry.pointee.iov.0 = iovec(iov_base: raw + Self.prefixOffset, iov_len: headerSize)
        entry.pointee.iov.1 = iovec(iov_base: pool.pointer(entry.pointee.buffer, offset), iov_len: length)
        return ring.prepareWritev(fd: port.pointee.fd, iovecs: (raw + Self.iovOffset).assumingMemoryBound(to: iovec.self),
                                  count: 2, token: token)
    }

    /// One TAP write completed.
    func tapSendDone(_ slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        port.pointee.inFlight -= 1
        if Errno(completion: result) != .ECANCELED {  // cancelled: the port is closing, and drops what is left
            popHead(port, sent: result >= 0)
            if let error = Errno(completion: result) { sendFailed(slot, errno: error) }
        }
    }
}
