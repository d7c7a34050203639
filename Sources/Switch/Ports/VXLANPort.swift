// VXLANPort: the ports of a network's remote VTEPs: their creation, the VXLAN socket's receive
// (decapsulation), their sends (encapsulation) and split horizon between them.
//
// Receive: one multishot recvmsg on the tunnel's UDP socket into the shared buffer ring, as
// dgram.sock does; the sender's address names the VTEP's port, the VXLAN header is checked (I
// flag, VNI) and the inner frame is forwarded from the same buffer, no copy, its L4 checksum taken
// as possibly partial (as from a header-less offload peer). Anything else is a counted drop
// (VXLANTunnel).
// Send: a VTEP port is a non-offload socket port, so Egress has already completed checksums and
// cut super-frames to the network MTU. Each chain sends [VXLAN header, frame] datagrams to the
// VTEP's address through the send socket of the frame's flow (its outer source port); a run of
// one super-frame's segments goes as one UDP GSO sendmsg, which is what makes this direction fast
// (docs/decisions.md "VXLAN source ports"). The queue is larger than a guest port's (one
// super-frame is ~45 segments). The send sockets are shared by every VTEP: a full one (EAGAIN) is
// never parked on, the port retries on the short timer like a shared dgram peer.
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
                 + "\(vxlan.remoteCount) remote VTEP(s)")
        armVXLANReceive()
    }

    /// The smallest send queue of a VTEP port. A VTEP is a non-offload port: a TAP's receive share
    /// of one loop turn (32 super-frames of up to 64 KiB) becomes up to ~45 segments each here, more
    /// than a guest port's default queue holds before the next submit.
    static let vxlanQueueFrames = 2048

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
        // The same split horizon holds between the trunks of forwarding threads (Shards/ShardTrunks.swift).
        let from = ports[Int(ingress)].kind, to = ports[Int(out)].kind
        return (from == .vxlan && to == .vxlan) || (from == .shard && to == .shard)
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
                if Errno(completion: result) == .ENOBUFS { vxlan.starved = true } else { armVXLANReceive() }
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

    /// One linked chain of sendmsgs to the port's VTEP, each [VXLAN header, frame] through the
    /// send socket the frame's flow hash picks (its outer UDP source port). With UDP GSO, a run of
    /// queued frames of one flow and one size (a super-frame's segments; the last may be shorter)
    /// goes as one sendmsg [header, frame, header, frame, ...] with UDP_SEGMENT = 8 + size: the
    /// kernel cuts it into one datagram per frame as late as it can (on a veth, not at all).
    func submitVXLANSends(_ port: UnsafeMutablePointer<PortState>, token: Token) {
        let remote = vxlan.remotes + Int(port.pointee.vxlanRemote)
        let name = UnsafeMutableRawPointer(mutating: UnsafeRawPointer(remote) + MemoryLayout<VXLANRemote>.offset(of: \.name)!)
        let nameLength = remote.pointee.nameLength
        let messages = remote.pointee.messages!, controls = remote.pointee.controls!
        let iovecs = remote.pointee.iovecs!, frameCounts = remote.pointee.frameCounts!
        let available = min(port.pointee.queueCount, VXLANTunnel.chainFrames)
        var next: Int32 = 0, sends: Int32 = 0, iov = 0
        while next < available && sends < VXLANTunnel.chainMessages {
            let first = frameAt(port, next)
            let hash = VXLANFlow.hash(frame: UnsafeRawBufferPointer(start: first.frame, count: first.length))
            var count: Int32 = 1
            var payload = VXLANHeader.length + first.length
            // Only frames the network MTU bounds (no VLAN tag): the kernel refuses a segment size
            // that does not fit the underlay, and the config checked exactly that much.
            if vxlan.gso && first.length <= mtu + EthernetHeaderLength.untagged {
                while next + count < available && Int(count) < VXLANTunnel.maxSegments {
                    let candidate = frameAt(port, next + count)
                    guard candidate.length <= first.length,
                          payload + VXLANHeader.length + candidate.length <= VXLANTunnel.maxGSOPayload,
                          VXLANFlow.hash(frame: UnsafeRawBufferPointer(start: candidate.frame, count: candidate.length)) == hash
                    else { break }
                    count += 1
                    payload += VXLANHeader.length + candidate.length
                    if candidate.length < first.length { break }  // only the last may be shorter
                }
            }
            let message = messages + Int(sends)
            message.pointee = msghdr()
            message.pointee.msg_name = name
            message.pointee.msg_namelen = nameLength
            message.pointee.msg_iov = iovecs + iov
            message.pointee.msg_iovlen = Int(2 * count)
            for k in 0..<count {
                let frame = k == 0 ? first : frameAt(port, next + k)
                iovecs[iov] = iovec(iov_base: vxlan.header, iov_len: VXLANHeader.length)
                iovecs[iov + 1] = iovec(iov_base: frame.frame, iov_len: frame.length)
                iov += 2
            }
            if count > 1 {
                // struct cmsghdr { size_t len; int level; int type; } then the u16 (linux/udp.h UDP_SEGMENT 103).
                let control = controls + Int(sends) * VXLANTunnel.controlSpace
                control.storeBytes(of: 18, toByteOffset: 0, as: Int.self)  // CMSG_LEN(2)
                control.storeBytes(of: 17, toByteOffset: 8, as: Int32.self)  // SOL_UDP
                control.storeBytes(of: 103, toByteOffset: 12, as: Int32.self)  // UDP_SEGMENT
                control.storeBytes(of: UInt16(VXLANHeader.length + first.length), toByteOffset: 16, as: UInt16.self)
                message.pointee.msg_control = control
                message.pointee.msg_controllen = VXLANTunnel.controlSpace
            }
            frameCounts[Int(sends)] = count
            let fd = vxlan.sendFDs[Int(hash % UInt64(vxlan.sendCount))]
            let submission = ring.prepareSendMsg(fd: fd, message: message, flags: Socket.dontWait | Socket.noSignal, token: token)
            next += count
            sends += 1
            if next < available && sends < VXLANTunnel.chainMessages { submission.link() }
        }
        remote.pointee.nextCompletion = 0
        port.pointee.inFlight = sends
    }

    /// The `i`-th queued frame of a port from the head.
    @inline(__always)
    private func frameAt(_ port: UnsafeMutablePointer<PortState>, _ i: Int32) -> (frame: UnsafeMutableRawPointer, length: Int) {
        let entry = port.pointee.queue! + port.pointee.queueIndex(i)
        return (pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset)), Int(entry.pointee.length))
    }

    /// One completion of a VTEP port's chain (one sendmsg, one or more frames). Errors lose those
    /// frames only (counted `sendError`): a VTEP is configured, not a peer that can go away, so no
    /// errno removes its port. A GSO send the kernel refuses turns GSO off for the tunnel.
    func vxlanSendDone(_ slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        let remote = vxlan.remotes + Int(port.pointee.vxlanRemote)
        let frames = remote.pointee.frameCounts![Int(remote.pointee.nextCompletion)]
        remote.pointee.nextCompletion += 1
        port.pointee.inFlight -= 1
        let error = Errno(completion: result)
        if error == .EAGAIN {
            port.pointee.chainStopped = true
            port.pointee.peerFull = true
        } else if error != .ECANCELED && !port.pointee.chainStopped {
            for _ in 0..<frames { popHead(port, sent: error == nil) }
            if let error {
                port.pointee.count(.sendError, UInt64(frames))
                port.pointee.chainStopped = true  // the rest of the chain comes back cancelled: resend it
                if frames > 1 && vxlan.gso && (error == .EINVAL || error == .EIO || error == .EOPNOTSUPP) {
                    vxlan.gso = false
                    Log.warning("network \(spec.name): vxlan: the kernel refused UDP GSO (\(error)); "
                                + "sending one datagram per frame")
                }
            }
        }
        guard port.pointee.inFlight == 0 else { return }
        port.pointee.chainStopped = false
        if port.pointee.peerFull {
            // A send socket is full: retry on the short timer, never park on a shared socket.
            port.pointee.peerFull = false
            if port.pointee.isActive && !port.pointee.retryPending {
                port.pointee.retryPending = true
                retrying.append(slot)
            }
        }
    }
}

/// The Ethernet header's length without VLAN tags (IEEE 802.3 §3.1.1).
private enum EthernetHeaderLength {
    static let untagged = 14
}
