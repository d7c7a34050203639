// PortTable: port lifecycle on the loop: claim a slot, wire the port in, take it out, free it.
//
// A slot is claimed with a fresh queue (and a stream port's buffers) and put on `portList`. A
// removed port leaves forwarding at once (off the list, its MACs and bindings flushed, unsent
// frames dropped, its requests cancelled) but keeps its slot in the `closing` phase until every
// request of it has completed; only then is the slot freed and its generation bumped, so late
// completions and MAC entries naming the old generation go stale.
import SwitchSys
import Glibc
import Proto

extension ForwardingLoop {
    /// Claims a slot for a new port and wires it into the network; nil when no slot is left.
    func addPort(kind: PortKind, fd: Int32, info: PortInfo) -> UInt16? {
        guard let slot = freeSlots.popLast() else {
            portLimit &+= 1
            Log.warning("network \(spec.name): port limit \(Self.maxPorts) reached, refusing \(info.id)")
            return nil
        }
        let port = ports + Int(slot)
        let generation = port.pointee.generation
        port.pointee = PortState()
        port.pointee.generation = generation
        port.pointee.phase = .active
        port.pointee.kind = kind
        port.pointee.fd = fd
        port.pointee.takesOffloads = kind.hasVnetHeader
        port.pointee.lastReceive = now
        port.pointee.guards = PortGuards.of(kind: kind, info: info, network: spec)
        let capacity = spec.queueFrames
        port.pointee.queue = .allocate(capacity: capacity)
        port.pointee.queue!.initialize(repeating: TxEntry(buffer: 0, offset: 0, length: 0, header: .none), count: capacity)
        port.pointee.queueCapacity = Int32(capacity)
        if kind == .stream {
            port.pointee.streamBuffer = .allocate(byteCount: Self.streamBufferSize, alignment: 16)
            port.pointee.streamIOV = .allocate(capacity: 2 * Int(Self.sendBatch))
            port.pointee.streamMessage = .allocate(capacity: 1)
        }
        infos[Int(slot)] = info
        if shard.isSharded && kind != .shard {
            Log.info("network \(spec.name): port \(info.id) on forwarding thread \(shard.index)")
        }
        portList[portCount] = slot
        portCount += 1
        pool.setLimit(pool.limit + capacity)
        if kind.readsOwnFD {
            // Its own receive ring, so a flood from it uses up its share only (ReceiveShares).
            pool.setLimit(pool.limit + ReceiveShares.ringEntries)
            do throws(SwitchError) {
                try shares.open(slot, uring: ring, pool: &pool)
            } catch {
                pool.setLimit(pool.limit - ReceiveShares.ringEntries)
                Log.warning("network \(spec.name): \(info.id) receives from the shared buffer ring: \(error)")
            }
        }
        return slot
    }

    /// Adds a TAP or link port whose fd the control thread opened; returns its slot.
    func addDevicePort(kind: PortKind, fd: Int32, headerSize: Int, info: PortInfo) -> UInt16? {
        guard let slot = addPort(kind: kind, fd: fd, info: info) else { return nil }
        ports[Int(slot)].headerSize = Int32(headerSize)
        if info.isUplink { policy.uplink = slot }
        armDeviceRead(slot)
        return slot
    }

    /// Closes a device that never became a port (and restores what opening it changed).
    func closeUnused(_ device: OpenedDevice) {
        Descriptor.close(device.fd)
        if device.kind == .link { Link.restore(device.info) }
    }

    /// The slot of the port with `id`.
    func slot(id: String) -> UInt16? {
        for i in 0..<portCount {
            let slot = portList[i]
            if infos[Int(slot)]?.id == id && ports[Int(slot)].kind != .shard { return slot }
        }
        return nil
    }

    /// Takes a port out of forwarding now and frees it once its requests have completed.
    func removePort(_ slot: UInt16, reason: String) {
        let port = ports + Int(slot)
        guard port.pointee.phase == .active else { return }
        Log.info("network \(spec.name): port \(infos[Int(slot)]?.id ?? "?") removed: \(reason)")
        port.pointee.phase = .closing
        for i in 0..<portCount where portList[i] == slot {
            (portList + i).update(from: portList + i + 1, count: portCount - i - 1)
            portCount -= 1
            break
        }
        announceForgotten(port: slot)
        table.flush(port: slot)
        security.bindings.flush(port: slot)
        if running { services?.portRemoved(slot: slot, generation: port.pointee.generation) }  // not at shutdown
        if policy.uplink == slot { policy.uplink = Self.noUplink }
        forgetPeer(slot)
        // Frames not yet submitted are dropped now; those in flight complete (or are cancelled).
        while port.pointee.queueCount > port.pointee.inFlight {
            let last = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount - 1)
            pool.release(last.pointee.buffer)
            port.pointee.queueCount -= 1
        }
        if port.pointee.kind == .vhostUser { cancelVhostRequests(slot) }
        if port.pointee.fd >= 0 && (port.pointee.receivePending || port.pointee.inFlight > 0 || port.pointee.waitingWritable) {
            if port.pointee.kind == .stream { Socket.shutdown(port.pointee.fd) }
            ring.prepareCancel(fd: port.pointee.fd, token: Token(.cancel))
        }
        pool.setLimit(pool.limit - Int(port.pointee.queueCapacity))
        finishIfIdle(slot)
    }

    /// Frees a closing port's slot once nothing of it is in flight.
    func finishIfIdle(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard port.pointee.phase == .closing, !port.pointee.receivePending, port.pointee.inFlight == 0,
              !port.pointee.retryPending, !port.pointee.waitingWritable,
              (port.pointee.vhost?.pointee.pending ?? 0) == 0 else { return }
        while port.pointee.queueCount > 0 { popHead(port, sent: false) }
        if port.pointee.fd >= 0 { Descriptor.close(port.pointee.fd) }
        if shares.close(slot, uring: ring, pool: &pool) { pool.setLimit(pool.limit - ReceiveShares.ringEntries) }
        if port.pointee.kind == .link, let info = infos[Int(slot)] { Link.restore(info) }
        releaseVhost(port)
        port.pointee.queue?.deallocate()
        port.pointee.streamBuffer?.deallocate()
        port.pointee.streamIOV?.deallocate()
        port.pointee.streamMessage?.deallocate()
        port.pointee.address?.deallocate()
        let generation = port.pointee.generation &+ 1
        port.pointee = PortState()
        port.pointee.generation = generation
        infos[Int(slot)] = nil
        freeSlots.append(slot)
    }

    /// Closes every port and waits (briefly) for their requests to finish.
    func closeAll() {
        finishCaptures()
        while portCount > 0 { removePort(portList[0], reason: "shutting down") }
        ring.submit()
        var waited = 0
        while waited < 50 && (0..<Self.maxPorts).contains(where: { ports[$0].phase == .closing }) {
            ring.submitAndWait(timeoutNanos: 10_000_000)
            _ = ring.drain { handle($0) }
            if !retrying.isEmpty { retrySends() }
            waited += 1
        }
        for slot in 0..<Self.maxPorts where ports[slot].phase == .closing && ports[slot].fd >= 0 {
            Descriptor.close(ports[slot].fd)  // completions never came: close anyway, we are exiting
            ports[slot].fd = -1
        }
    }
}
