// VhostUserPort: vhost-user.sock: accept, the control messages, and frames through the guest's virtqueues.
//
// A QEMU guest joins with `-netdev vhost-user` on the network's vhost-user.sock (switchd is the
// server; QEMU's `-chardev socket,reconnect=1` comes back after a restart). Each connection is one
// port. Its control messages (docs/interop/vhost-user.rst: features, memory table, ring addresses,
// kick/call eventfds) are handled on the loop thread when the socket is readable: they are rare,
// and keeping them here means the rings are never touched by two threads. VhostUserDevice
// (VhostUser/) does the protocol and the ring walking; this file wires it into the loop:
//
// - Guest TX (queue 1): a read of the TX kick eventfd completes → `drainGuest` copies each frame
//   (virtio-net header first) out of guest memory into a pool buffer (one copy: the pool owns the
//   buffer's lifetime across floods and queues, guest memory cannot be held that long) and forwards
//   it as a TAP frame; `sendBudget` frames per turn, the rest on the next turn (`vhostBacklog`).
//   With the ring drained, the device asks the guest for the next kick (EVENT_IDX avail_event).
// - Guest RX (queue 0): frames are queued like any port's; `submitVhostSends` copies them into the
//   guest's receive buffers (merged buffers for super-frames) at once, no request in flight. No
//   room: the rest stay queued (bounded by the port's queue: drops.queueFull), and the RX kick read
//   (the guest adding buffers) sends again.
// - Interrupts: once per batch per queue the device says whether the guest wants one (EVENT_IDX
//   used_event); the loop writes the call eventfd through io_uring then.
//
// The kick reads carry an epoch in their token: a kick fd that changes (SET_VRING_KICK again, or
// GET_VRING_BASE stopping the ring) gets a new read, and the old one is cancelled by token and its
// completion ignored.
import SwitchSys
import Glibc
import Proto

/// The loop's side of one vhost-user port: the device, and the kick reads in flight.
struct VhostUserPortState {
    var device: VhostUserDevice
    /// The kick fd each queue's read is on (-1: none armed), [0] RX, [1] TX, and its epoch.
    var armedKick: (Int32, Int32) = (-1, -1)
    var epoch: (UInt32, UInt32) = (0, 0)
    /// Where the kick reads put the eventfd counters, [0] RX, [1] TX.
    let kickValues: UnsafeMutablePointer<UInt64>
    /// Requests of this port in flight: the control poll and the kick reads (and call writes).
    var pending: Int32 = 0
    var controlArmed = false
    /// In `vhostBacklog`: guest TX not drained in the last turn.
    var backlogged = false

    init(mtu: Int) {
        device = VhostUserDevice(mtu: mtu)
        kickValues = .allocate(capacity: 2)
        kickValues.initialize(repeating: 0, count: 2)
    }
}

extension ForwardingLoop {
    /// Guest frames taken from one port's TX ring per loop turn before the others get a turn.
    static let vhostBudget = 256
    /// The value written to a call eventfd.
    static let callValue: UInt64 = 1

    // MARK: - Accept

    func armVhostAccept() {
        guard sockets.vhostUser >= 0, !vhostAcceptPending else { return }
        vhostAcceptPending = true
        ring.prepareAccept(fd: sockets.vhostUser, flags: Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                           token: Token(.vhostAccept))
    }

    func vhostAcceptDone(result: Int32) {
        vhostAcceptPending = false
        if running { armVhostAccept() }
        guard result >= 0 else {
            let error = Errno(result: result)
            if error != .ECANCELED { Log.warning("network \(spec.name): vhost-user accept: \(error)") }
            return
        }
        let id = "vhost-user-\(nextPortNumber)"
        nextPortNumber += portNumberStep
        guard let slot = addPort(kind: .vhostUser, fd: result, info: PortInfo(id: id, peer: "vhost-user.sock")) else {
            Descriptor.close(result)
            return
        }
        let state = UnsafeMutablePointer<VhostUserPortState>.allocate(capacity: 1)
        state.initialize(to: VhostUserPortState(mtu: mtu))
        ports[Int(slot)].vhost = state
        Log.info("network \(spec.name): vhost-user guest joined as \(id)")
        armVhostControl(slot)
    }

    // MARK: - Control

    private func armVhostControl(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost, !state.pointee.controlArmed else { return }
        state.pointee.controlArmed = true
        state.pointee.pending += 1
        ring.preparePollMultishot(fd: port.pointee.fd, events: Int32(POLLIN),
                                  token: Token(.vhostControl, slot: slot, generation: port.pointee.generation))
    }

    func vhostControlDone(slot: UInt16, result: Int32, flags: UInt32) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        if flags & CompletionFlag.more == 0 {
            state.pointee.controlArmed = false
            state.pointee.pending -= 1
        }
        guard port.pointee.isActive else { finishIfIdle(slot); return }
        if let error = Errno(completion: result), error != .ECANCELED {
            removePort(slot, reason: "vhost-user socket poll failed (\(error))")
            return
        }
        switch state.pointee.device.serviceControl(fd: port.pointee.fd) {
        case .closed(let reason):
            removePort(slot, reason: reason)
            return
        case .ok(let changed):
            if changed { vhostStateChanged(slot) }
        }
        if !state.pointee.controlArmed { armVhostControl(slot) }
    }

    /// The device's kick fds, ring readiness or features changed: follow them.
    private func vhostStateChanged(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        port.pointee.takesOffloads = state.pointee.device.guestTakesOffloads
        port.pointee.headerSize = Int32(state.pointee.device.headerSize)
        armKick(slot, queue: 0, fd: state.pointee.device.rxKickFD)
        armKick(slot, queue: 1, fd: state.pointee.device.txKickFD)
        // Frames may already wait on either side.
        if state.pointee.device.txReady { drainGuest(slot) }
        if port.pointee.queueCount > 0 { markDirty(slot) }
    }

    // MARK: - Kicks

    /// Puts queue `queue`'s kick read on `fd`, cancelling the read in flight. Done on every state
    /// change, even when the number is the same: the device may have closed the old fd and been
    /// given a new one under the same number within one batch of messages.
    private func armKick(_ slot: UInt16, queue: Int, fd: Int32) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        let armed = queue == 0 ? state.pointee.armedKick.0 : state.pointee.armedKick.1
        let epoch = queue == 0 ? state.pointee.epoch.0 : state.pointee.epoch.1
        if armed >= 0 {
            ring.prepareCancel(kickToken(slot, queue: queue, epoch: epoch), token: Token(.cancel))
        }
        let next = (epoch &+ 1) & 0x7F_FFFF
        if queue == 0 { state.pointee.epoch.0 = next; state.pointee.armedKick.0 = fd }
        else { state.pointee.epoch.1 = next; state.pointee.armedKick.1 = fd }
        if fd >= 0 { submitKickRead(slot, queue: queue) }
    }

    private func kickToken(_ slot: UInt16, queue: Int, epoch: UInt32) -> Token {
        Token(.vhostKick, slot: slot, generation: ports[Int(slot)].generation, aux: UInt32(queue) | epoch << 1)
    }

    private func submitKickRead(_ slot: UInt16, queue: Int) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        let fd = queue == 0 ? state.pointee.armedKick.0 : state.pointee.armedKick.1
        let epoch = queue == 0 ? state.pointee.epoch.0 : state.pointee.epoch.1
        let value = UnsafeMutableRawPointer(state.pointee.kickValues + queue)
        state.pointee.pending += 1
        ring.prepareRead(fd: fd, into: value, length: 8, token: kickToken(slot, queue: queue, epoch: epoch))
    }

    func vhostKickDone(slot: UInt16, aux: UInt32, result: Int32) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        state.pointee.pending -= 1
        guard port.pointee.isActive else { finishIfIdle(slot); return }
        let queue = Int(aux & 1)
        let current = queue == 0 ? state.pointee.epoch.0 : state.pointee.epoch.1
        guard aux >> 1 == current else {
            // A read that was replaced: if it still took a kick, act on it (nothing is lost), but
            // leave the re-arming to the current read.
            if result == 8 { if queue == 1 { drainGuest(slot) } else if port.pointee.queueCount > 0 { markDirty(slot) } }
            return
        }
        if let error = Errno(completion: result), error != .EAGAIN && error != .EINTR {
            // The fd went bad under us (closed by a ring stop): forget it; a new SET_VRING_KICK re-arms.
            if error != .ECANCELED {
                Log.warning("network \(spec.name): port \(infos[Int(slot)]?.id ?? "?"): kick read failed (\(error))")
            }
            if queue == 0 { state.pointee.armedKick.0 = -1 } else { state.pointee.armedKick.1 = -1 }
            return
        }
        submitKickRead(slot, queue: queue)
        if queue == 1 { drainGuest(slot) } else if port.pointee.queueCount > 0 { markDirty(slot) }
    }

    // MARK: - Guest TX

    /// Takes up to `vhostBudget` frames the guest made available and forwards them; the rest wait
    /// for the next turn.
    func drainGuest(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost, state.pointee.device.txReady else { return }
        let capacity = BufferPool.slotSize - BufferPool.headroom
        var taken = 0
        while taken < Self.vhostBudget {
            guard let buffer = pool.allocate() else {
                port.pointee.count(.noBuffer)
                break  // the rest wait in the ring: tried again next turn (backlog below)
            }
            let start = pool.pointer(buffer, BufferPool.headroom)
            switch state.pointee.device.receiveFromGuest(into: start, capacity: capacity) {
            case .done(let length):
                taken += 1
                port.pointee.lastReceive = now
                let headerSize = Int(port.pointee.headerSize)
                if length >= headerSize {
                    var header = VirtioNetHeader(loading: start)
                    if headerSize == 10 { header.numBuffers = 0 }
                    forward(buffer: buffer, offset: BufferPool.headroom + headerSize, length: length - headerSize,
                            header: header, from: slot)
                } else {
                    port.pointee.count(.runt)
                }
                pool.release(buffer)
            case .empty:
                pool.release(buffer)
                if state.pointee.device.enableKick(rx: false) { continue }  // more came meanwhile
                signalGuest(slot, rx: false)
                return
            case .noRoom:
                pool.release(buffer)
                signalGuest(slot, rx: false)
                return
            case .broken(let reason):
                pool.release(buffer)
                removePort(slot, reason: "guest error: \(reason)")
                return
            }
        }
        signalGuest(slot, rx: false)
        if !state.pointee.backlogged {
            state.pointee.backlogged = true
            vhostBacklog.append(slot)
        }
    }

    /// Once per loop turn: the guests whose TX ring held more than a turn's budget.
    func drainBacklog() {
        let slots = vhostBacklog
        vhostBacklog.removeAll(keepingCapacity: true)
        for slot in slots {
            guard let state = ports[Int(slot)].vhost else { continue }
            state.pointee.backlogged = false
            if ports[Int(slot)].isActive { drainGuest(slot) }
        }
    }

    // MARK: - Guest RX

    /// Copies port `slot`'s queued frames into the guest's receive buffers, as many as fit.
    func submitVhostSends(_ port: UnsafeMutablePointer<PortState>, slot: UInt16) {
        guard let state = port.pointee.vhost else { return }
        guard state.pointee.device.rxReady else {
            // No receive ring yet (the driver is not up) or a stopped one: nothing can take them.
            while port.pointee.queueCount > 0 {
                port.pointee.count(.sendError)
                popHead(port, sent: false)
            }
            return
        }
        var sent = 0
        while port.pointee.queueCount > 0 {
            let entry = port.pointee.queue! + port.pointee.queueIndex(0)
            let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
            switch state.pointee.device.sendToGuest(header: entry.pointee.header, frame: frame,
                                                    length: Int(entry.pointee.length)) {
            case .done:
                sent += 1
                popHead(port, sent: true)
            case .noRoom, .empty:
                // Wait for the guest to add buffers (its RX kick), unless it did meanwhile.
                if state.pointee.device.enableKick(rx: true) { continue }
                if sent > 0 { signalGuest(slot, rx: true) }
                return
            case .broken(let reason):
                removePort(slot, reason: "guest error: \(reason)")
                return
            }
        }
        if sent > 0 { signalGuest(slot, rx: true) }
    }

    /// Writes the queue's call eventfd if the guest wants an interrupt for what was just used.
    private func signalGuest(_ slot: UInt16, rx: Bool) {
        guard let state = ports[Int(slot)].vhost else { return }
        _ = state.pointee.device.notifyGuest(rx: rx)
    }

    // MARK: - Lifecycle

    /// Cancels a removed vhost-user port's requests (control poll, kick reads).
    func cancelVhostRequests(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard let state = port.pointee.vhost else { return }
        if state.pointee.controlArmed { ring.prepareCancel(fd: port.pointee.fd, token: Token(.cancel)) }
        if state.pointee.armedKick.0 >= 0 {
            ring.prepareCancel(kickToken(slot, queue: 0, epoch: state.pointee.epoch.0), token: Token(.cancel))
        }
        if state.pointee.armedKick.1 >= 0 {
            ring.prepareCancel(kickToken(slot, queue: 1, epoch: state.pointee.epoch.1), token: Token(.cancel))
        }
    }

    /// Unmaps the guest's memory and closes its eventfds, once no request of the port is in flight.
    func releaseVhost(_ port: UnsafeMutablePointer<PortState>) {
        guard let state = port.pointee.vhost else { return }
        state.pointee.device.close()
        state.pointee.kickValues.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        port.pointee.vhost = nil
    }
}
