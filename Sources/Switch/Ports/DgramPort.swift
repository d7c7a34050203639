// DgramPort: dgram.sock and dgram-offload.sock: peers by sender address, their receive, send and probes.
//
// Every peer sends to the network's listening socket; one multishot recvmsg takes all of it into
// the shared ring, and the sender's address names the port (created at its first datagram). A
// peer is answered through a socket of its own connected to it (`dgramPeer`: its send buffer
// and POLLOUT are its own, docs/DESIGN.md §3), or, when it accepts datagrams from dgram.sock only
// (it connected to it, or sent the VFKT handshake), through dgram.sock itself (`dgramShared`:
// one datagram in flight, EAGAIN retried on the short timer, never parked on the shared socket).
// Peers that stop sending are probed every few seconds, since a datagram peer never says goodbye.
import SwitchSys
import Glibc
import Proto

/// The multishot recvmsg of a dgram socket: the message header template that tells the kernel how
/// much room the sender address needs, and whether the request is armed.
struct DgramReceive {
    var message = msghdr()
    var pending = false
}

extension UnsafeMutablePointer where Pointee == DgramReceive {
    /// The request's msghdr where it lives (`message` is the first stored property, offset 0): the
    /// kernel and `ReceivedMessage` read it after the call that prepared the request returned.
    @inline(__always)
    var messagePointer: UnsafeMutablePointer<msghdr> {
        UnsafeMutableRawPointer(self).assumingMemoryBound(to: msghdr.self)
    }
}

extension ForwardingLoop {
    // MARK: - Receive

    /// Arms the multishot recvmsg of dgram.sock or dgram-offload.sock: a completion per datagram,
    /// each in a ring buffer laid out as io_uring_recvmsg_out, sender address, payload.
    func armDgramReceive(offload: Bool) {
        let receive = dgramReceives + (offload ? 1 : 0)
        let fd = sockets.dgramFD(offload: offload)
        guard !receive.pointee.pending, fd >= 0, running else { return }
        receive.pointee.message = msghdr()
        receive.pointee.message.msg_namelen = socklen_t(MemoryLayout<sockaddr_un>.size)
        receive.pointee.pending = true
        ring.prepareRecvMsgMultishot(fd: fd, message: receive.messagePointer, group: BufferRing.sharedGroup,
                                     token: Token(.dgramReceive, aux: offload ? 1 : 0))
    }

    /// The pool slot a multishot completion on the shared ring filled, if it names one; the ring
    /// no longer holds it.
    @inline(__always)
    private func takenBuffer(_ flags: UInt32) -> UInt32? {
        guard flags & CompletionFlag.buffer != 0 else { return nil }
        let buffer = flags >> CompletionFlag.bufferShift
        buffers.taken(buffer)
        return buffer
    }

    func dgramReceiveDone(offload: Bool, result: Int32, flags: UInt32) {
        let receive = dgramReceives + (offload ? 1 : 0)
        let more = flags & CompletionFlag.more != 0
        let taken = takenBuffer(flags)
        defer {
            if let taken { pool.release(taken) }
            if !more {
                receive.pointee.pending = false
                if Errno(completion: result) == .ENOBUFS { receivesStarved = true } else { armDgramReceive(offload: offload) }
            }
        }
        guard result >= 0, let buffer = taken else { return }
        let start = pool.pointer(buffer, BufferRing.start)
        guard let received = ReceivedMessage(buffer: start, result: result, message: receive.messagePointer) else { return }
        if received.flags & UInt32(MSG_TRUNC) != 0 {
            truncated &+= 1
            return
        }
        var address = UnixAddress()
        let nameLength = min(Int(received.nameLength), MemoryLayout<sockaddr_un>.size)
        withUnsafeMutableBytes(of: &address.storage) { raw in
            raw.baseAddress!.copyMemory(from: received.name, byteCount: nameLength)
        }
        address.length = socklen_t(nameLength)
        guard !address.isUnnamed else {
            unaddressable &+= 1
            return
        }
        let payload = received.payload
        let length = received.payloadLength
        let offset = payload - pool.pointer(buffer)
        let isHandshake = length == 4 && payload.loadUnaligned(as: UInt32.self) == UInt32(bigEndian: 0x5646_4B54)  // "VFKT"
        let slot: UInt16
        if let existing = findPeer(address: address) {
            slot = existing
        } else {
            guard let created = addDgramPeer(address: address, vfkit: isHandshake, offload: offload) else { return }
            slot = created
        }
        if isHandshake {
            // vfkit and krunkit's vfkit mode: connected to dgram.sock, offloading on (docs/DESIGN.md §2).
            if ports[Int(slot)].kind == .dgramPeer { ports[Int(slot)].kind = .dgramShared }
            ports[Int(slot)].offloadPeer = true
            return
        }
        forward(buffer: buffer, offset: offset, length: length, header: .none, from: slot)
    }

    // MARK: - Peers

    private func findPeer(address: UnixAddress) -> UInt16? {
        guard let slot = peersByAddress[address.hash], let stored = ports[Int(slot)].address,
              stored.pointee.sameAddress(as: address) else { return nil }
        return slot
    }

    private func addDgramPeer(address: UnixAddress, vfkit: Bool, offload: Bool) -> UInt16? {
        var kind = PortKind.dgramShared
        var fd: Int32 = -1
        if !vfkit, let socket = try? Socket.open(Int32(SOCK_DGRAM.rawValue)) {
            // A socket of its own, connected to the peer: its send buffer and writability are this
            // peer's alone, so a peer that stops reading stalls nothing else (docs/DESIGN.md §3).
            Socket.setOption(socket, SOL_SOCKET, SO_SNDBUF, 1 << 20)
            if Socket.connect(socket, to: address) == 0 {
                kind = .dgramPeer
                fd = socket
            } else {
                Descriptor.close(socket)
            }
        }
        let id = "dgram-\(nextPortNumber)"
        nextPortNumber += portNumberStep
        guard let slot = addPort(kind: kind, fd: fd, info: PortInfo(id: id, peer: address.display)) else {
            if fd >= 0 { Descriptor.close(fd) }
            return nil
        }
        let stored = UnsafeMutablePointer<UnixAddress>.allocate(capacity: 1)
        stored.initialize(to: address)
        ports[Int(slot)].address = stored
        ports[Int(slot)].offloadPeer = vfkit || offload
        ports[Int(slot)].viaOffloadSocket = offload
        peersByAddress[address.hash] = slot
        Log.info("network \(spec.name): dgram peer \(address.display) joined as \(id)")
        return slot
    }

    /// Forgets a removed port's address (a later datagram from it makes a new port).
    func forgetPeer(_ slot: UInt16) {
        guard let address = ports[Int(slot)].address else { return }
        let key = address.pointee.hash
        if peersByAddress[key] == slot { peersByAddress[key] = nil }
    }

    /// Removes dgram peers whose address no longer accepts datagrams.
    func probePeers() {
        var i = 0
        while i < portCount {
            let slot = portList[i]
            i += 1
            guard let address = ports[Int(slot)].address, ports[Int(slot)].lastReceive != now else { continue }
            guard let probe = try? Socket.open(Int32(SOCK_DGRAM.rawValue)) else { continue }
            let r = Socket.connect(probe, to: address.pointee)
            Descriptor.close(probe)
            if r == ECONNREFUSED || r == ENOENT {
                removePort(slot, reason: "peer gone (\(errnoText(r)))")
                i -= 1  // the list shifted
            }
        }
    }

    // MARK: - Send (dgramShared; dgramPeer and attached dgram send in chains, SendQueue.swift)

    /// One sendmsg on dgram.sock (or dgram-offload.sock) to the peer's address.
    func submitSharedDgramSend(_ port: UnsafeMutablePointer<PortState>, token: Token) {
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
        ring.prepareSendMsg(fd: sockets.dgramFD(offload: port.pointee.viaOffloadSocket),
                            message: (raw + Self.messageOffset).assumingMemoryBound(to: msghdr.self),
                            flags: Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), token: token)
        port.pointee.inFlight = 1
    }

    /// dgram.sock is shared by every connected peer: never park on it, retry shortly.
    func sharedDgramSendBlocked(_ slot: UInt16) {
        let port = ports + Int(slot)
        port.pointee.inFlight = 0
        if !port.pointee.retryPending {
            port.pointee.retryPending = true
            retrying.append(slot)
        }
    }
}
