// VXLANPort: the ports of a network's remote VTEPs: their creation, the VXLAN socket's receive
// (decapsulation), their sends (encapsulation) and split horizon between them.
//
// Receive: one multishot recvmsg on the tunnel's UDP socket into the shared buffer ring, as
// dgram.sock does; the sender's address names the VTEP's port, the VXLAN header is checked (I
// flag, VNI) and the inner frame is forwarded from the same buffer, no copy, its L4 checksum taken
// as possibly partial (as from a header-less offload peer). Anything else is a counted drop
// (VXLANTunnel).
// Send: a VTEP port is a non-offload socket port, so Egress has already completed checksums and
// cut super-frames to the network MTU; each queued frame goes out as one sendmsg of [UDP + VXLAN
// prefix written into the entry, inner frame] to the VTEP's address, in linked chains like a dgram
// peer's but longer, from a larger queue (one super-frame is ~45 segments). The send socket is
// shared by every VTEP: a full socket (EAGAIN) is never parked on, the port retries on the short
// timer like a shared dgram peer.
import SwitchSys
import Glibc
import Proto

extension ForwardingLoop {
    // MARK: - Ports

    /// At the start of `run`: one `vxlan` port per remote VTEP, then the receive.
    func startVXLAN() {
        guard vxlan.isEnabled, let tunnel = spec.vxlan else { return }
        for i in 0..<vxlan.remoteCount {
            let address = tunnel.remotes[i]
            let peer = InetSocketAddress(address, port: tunnel.port).description
            // No port security: a VTEP carries every station of the remote site (like a link port).
            guard let slot = addPort(kind: .vxlan, fd: -1, info: PortInfo(id: "vxlan-\(address)", peer: peer,
                                                                          security: PortSecuritySpec.none)) else { continue }
            growQueue(of: slot, to: max(spec.queueFrames, Self.vxlanQueueFrames))
            ports[Int(slot)].vxlanRemote = Int32(i)
            vxlan.remotes[i].slot = slot
            vxlan.remotes[i].generation = ports[Int(slot)].generation
            vxlan.remotes[i].hasPort = true
        }
        Log.info("network \(spec.name): vxlan vni \(tunnel.vni) on \(InetSocketAddress(tunnel.local, port: tunnel.port)), "
                 + "\(vxlan.remoteCount) remote VTEP(s)"
                 + (vxlan.sockets.writesUDPHeader ? "" : " (source port fixed: no raw socket)"))
        armVXLANReceive()
    }

    /// The smallest send queue of a VTEP port. A VTEP is a non-offload port: a TAP's receive share
    /// of one loop turn (32 super-frames of up to 64 KiB) becomes up to ~45 segments each here, more
    /// than a guest port's default queue holds before the next submit.
    static let vxlanQueueFrames = 2048
    /// Sends per linked chain of a VTEP port (the raw socket rarely blocks: long chains, few turns).
    static let vxlanSendBatch: Int32 = 256

    /// Replaces a new port's (empty) send queue by a larger one, raising the pool's limit to match.
    private func growQueue(of slot: UInt16, to capacity: Int) {
        let port = ports + Int(slot)
        let old = Int(port.pointee.queueCapacity)
        guard capacity > old, port.pointee.queueCount == 0 else { return }
        port.pointee.queue!.deallocate()
        port.pointee.queue = .allocate(capacity: capacity)
        port.pointee.queue!.initialize(repeating: TxEntry(buffer: 0, offset: 0, length: 0, header: .none), count: capacity)
        port.pointee.queueCapacity = Int32(capacity)
        pool.setLimit(pool.limit + capacity - old)
    }

    /// At the end of `run`: cancels the receive, so the socket's port is free once the
    /// Dataplane closes it (a multishot request holds its file until it ends).
    func stopVXLAN() {
        guard vxlan.isEnabled, vxlan.receive.pointee.pending else { return }
        ring.prepareCancel(fd: vxlan.sockets.receive, token: Token(.cancel))
    }

    /// Split horizon: a frame from one remote VTEP is never sent on to another. Every VTEP of a
    /// full mesh gets the sender's own copy (head-end replication), so relaying would duplicate
    /// it, and between three switchd hosts loop it.
    @inline(__always)
    func crossesTunnels(from ingress: UInt16, to out: UInt16) -> Bool {
        ports[Int(ingress)].kind == .vxlan && ports[Int(out)].kind == .vxlan
    }

    // MARK: - Receive

    /// Arms the multishot recvmsg of the tunnel's socket: a completion per datagram, each in a
    /// shared-ring buffer laid out as io_uring_recvmsg_out, sender address, payload.
    func armVXLANReceive() {
        guard vxlan.isEnabled, !vxlan.receive.pointee.pending, running else { return }
        vxlan.receive.pointee.message = msghdr()
        vxlan.receive.pointee.message.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        vxlan.receive.pointee.pending = true
        ring.prepareRecvMsgMultishot(fd: vxlan.sockets.receive, message: vxlan.receive.messagePointer,
                                     group: BufferRing.sharedGroup, token: Token(.vxlanReceive))
    }

    /// Re-arms the receive once the shared ring has buffers again (it ended with ENOBUFS).
    func rearmVXLANReceive() {
        guard buffers.count > 0 else { return }
        vxlan.starved = false
        armVXLANReceive()
    }

    func vxlanReceiveDone(result: Int32, flags: UInt32) {
        let more = flags & CompletionFlag.more != 0
        var taken: UInt32? = nil
        if flags & CompletionFlag.buffer != 0 {
            let buffer = flags >> CompletionFlag.bufferShift
            buffers.taken(buffer)
            taken = buffer
        }
        defer {
            if let taken { pool.release(taken) }
            if !more {
                vxlan.receive.pointee.pending = false
                if result == -ENOBUFS { vxlan.starved = true } else { armVXLANReceive() }
            }
        }
        guard result >= 0, let buffer = taken else { return }
        guard let received = ReceivedMessage(buffer: pool.pointer(buffer, BufferRing.start), result: result,
                                             message: vxlan.receive.messagePointer),
              received.flags & UInt32(MSG_TRUNC) == 0 else {
            vxlan.malformed &+= 1
            return
        }
        let payload = UnsafeRawBufferPointer(start: received.payload, count: received.payloadLength)
        let skip: Int
        switch vxlan.encapsulation.innerFrameOffset(payload: payload) {
        case .success(let offset): skip = offset
        case .failure(.wrongVNI):
            vxlan.wrongVNI &+= 1
            return
        case .failure:
            vxlan.malformed &+= 1
            return
        }
        let nameLength = min(Int(received.nameLength), MemoryLayout<sockaddr_in6>.size)
        guard let remote = vxlan.remote(sender: received.name, length: nameLength), remote.pointee.hasPort,
              ports[Int(remote.pointee.slot)].isActive,
              ports[Int(remote.pointee.slot)].generation == remote.pointee.generation else {
            vxlanFromUnknown(sender: received.name, length: nameLength)
            return
        }
        let offset = received.payload - pool.pointer(buffer) + skip
        let length = payload.count - skip
        // The inner TCP/UDP checksum may be partial: a kernel VTEP behind a veth (or any device with
        // encapsulation checksum offload) leaves it to "hardware" that never runs, and the UDP
        // socket hands the datagram over as it is. Described like a header-less offload peer's
        // frame (field rewritten to the pseudo-header sum, NEEDS_CSUM), it is right either way:
        // TAP ports take it with the offload, socket ports get it completed (Egress).
        let inner = UnsafeMutableRawBufferPointer(start: pool.pointer(buffer, offset), count: length)
        let header = Segmentation.describeHeaderless(frame: inner, mtu: mtu) ?? .none
        forward(buffer: buffer, offset: offset, length: length, header: header, from: remote.pointee.slot)
    }

    /// Counts a datagram from an address that is no remote of ours; the first one is logged.
    private func vxlanFromUnknown(sender name: UnsafeRawPointer, length: Int) {
        vxlan.unknownVTEP &+= 1
        guard vxlan.unknownVTEP == 1 else { return }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: name, count: length)) }
        let sender = InetSocketAddress(storage)?.description ?? "an unnamed sender"
        Log.warning("network \(spec.name): vxlan datagram from \(sender), which is not in vxlan.remotes (or its "
                    + "port was removed): dropped; later ones are counted as drops.vxlanUnknownVtep")
    }

    // MARK: - Send

    /// One linked chain of up to `sendBatch` sendmsgs, each [UDP + VXLAN prefix, inner frame] to the
    /// port's VTEP. The outer UDP source port is hashed from the inner flow (VXLANEncapsulation).
    func submitVXLANSends(_ port: UnsafeMutablePointer<PortState>, token: Token) {
        let remote = vxlan.remotes + Int(port.pointee.vxlanRemote)
        let name = UnsafeMutableRawPointer(mutating: UnsafeRawPointer(remote) + MemoryLayout<VXLANRemote>.offset(of: \.name)!)
        let nameLength = remote.pointee.nameLength
        // Without a raw socket the kernel writes the UDP header: send the VXLAN header only.
        let skip = vxlan.sockets.writesUDPHeader ? 0 : UDPHeader.length
        let n = min(port.pointee.queueCount, Self.vxlanSendBatch)
        for i in 0..<n {
            let entry = port.pointee.queue! + port.pointee.queueIndex(i)
            let raw = UnsafeMutableRawPointer(entry)
            let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
            let length = Int(entry.pointee.length)
            let prefix = raw + Self.prefixOffset
            vxlan.encapsulation.emitPrefix(
                into: prefix, sourcePort: VXLANEncapsulation.sourcePort(frame: UnsafeRawBufferPointer(start: frame, count: length)),
                innerLength: length)
            entry.pointee.iov.0 = iovec(iov_base: prefix + skip, iov_len: VXLANEncapsulation.prefixLength - skip)
            entry.pointee.iov.1 = iovec(iov_base: frame, iov_len: length)
            entry.pointee.message = msghdr()
            entry.pointee.message.msg_name = name
            entry.pointee.message.msg_namelen = nameLength
            entry.pointee.message.msg_iov = (raw + Self.iovOffset).assumingMemoryBound(to: iovec.self)
            entry.pointee.message.msg_iovlen = 2
            let submission = ring.prepareSendMsg(fd: vxlan.sockets.send,
                                                 message: (raw + Self.messageOffset).assumingMemoryBound(to: msghdr.self),
                                                 flags: Socket.dontWait | Socket.noSignal, token: token)
            if i < n - 1 { submission.link() }
        }
        port.pointee.inFlight = n
    }

    /// One completion of a VTEP port's chain. Errors lose that frame only (counted `sendError`): a
    /// VTEP is configured, not a peer that can go away, so no errno removes its port.
    func vxlanSendDone(_ slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        port.pointee.inFlight -= 1
        if result == -EAGAIN {
            port.pointee.chainStopped = true
            port.pointee.peerFull = true
        } else if result != -ECANCELED && !port.pointee.chainStopped {
            popHead(port, sent: result >= 0)
            if result < 0 {
                port.pointee.count(.sendError)
                port.pointee.chainStopped = true  // the rest of the chain comes back cancelled: resend it
            }
        }
        guard port.pointee.inFlight == 0 else { return }
        port.pointee.chainStopped = false
        if port.pointee.peerFull {
            // The shared send socket is full: retry on the short timer, never park on it.
            port.pointee.peerFull = false
            if port.pointee.isActive && !port.pointee.retryPending {
                port.pointee.retryPending = true
                retrying.append(slot)
            }
        }
    }
}
