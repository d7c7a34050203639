// StreamPort: stream.sock and stream-offload.sock: accept, the framed byte stream in and out.
//
// After passt's tap_passt_input / tap_send_frames_passt: a frame is a 4-byte big-endian length
// and the frame. Receive reads what the socket holds into the port's reassembly buffer, walks the
// complete frames (StreamFramer.drain), copies each into a pool buffer of its own and carries a
// partial frame to the next read; a bad length resets the connection. Send is one sendmsg of up
// to `sendBatch` frames (prefix and frame as two iovecs each); a short write is finished by the
// next sendmsg, starting `partial` bytes into the head entry, so the stream never holds half a frame.
import SwitchSys
import Glibc
import Proto

extension ForwardingLoop {
    // MARK: - Accept

    func armAccept(offload: Bool) {
        let fd = sockets.streamFD(offload: offload)
        let pending = offload ? acceptPending.1 : acceptPending.0
        guard fd >= 0, !pending else { return }
        if offload { acceptPending.1 = true } else { acceptPending.0 = true }
        ring.prepareAccept(fd: fd, flags: Int32(SOCK_CLOEXEC.rawValue), token: Token(.streamAccept, aux: offload ? 1 : 0))
    }

    func acceptDone(offload: Bool, result: Int32) {
        if offload { acceptPending.1 = false } else { acceptPending.0 = false }
        if running { armAccept(offload: offload) }
        guard result >= 0 else {
            let error = Errno(result: result)
            if error != .ECANCELED { Log.warning("network \(spec.name): accept: \(error)") }
            return
        }
        let id = "stream-\(nextPortNumber)"
        nextPortNumber += portNumberStep
        let peer = offload ? "stream-offload.sock" : "stream.sock"
        guard let slot = addPort(kind: .stream, fd: result, info: PortInfo(id: id, peer: peer)) else {
            Descriptor.close(result)
            return
        }
        ports[Int(slot)].offloadPeer = offload
        ports[Int(slot)].viaOffloadSocket = offload
        Log.info("network \(spec.name): stream peer joined as \(id)")
        armStreamReceive(slot)
    }

    // MARK: - Receive

    func armStreamReceive(_ slot: UInt16) {
        let port = ports + Int(slot)
        port.pointee.receivePending = true
        let fill = Int(port.pointee.streamFill)
        ring.prepareRecv(fd: port.pointee.fd, into: port.pointee.streamBuffer! + fill, length: Self.streamBufferSize - fill,
                         token: Token(.streamReceive, slot: slot, generation: port.pointee.generation))
    }

    func streamReceiveDone(slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        port.pointee.receivePending = false
        guard port.pointee.isActive else { finishIfIdle(slot); return }
        if result == 0 { removePort(slot, reason: "stream closed"); return }
        if let error = Errno(completion: result) {
            if error == .EAGAIN || error == .EINTR { armStreamReceive(slot); return }
            removePort(slot, reason: "stream receive failed (\(error))")
            return
        }
        let base = port.pointee.streamBuffer!
        let end = Int(port.pointee.streamFill) + Int(result)
        let maxFrame = port.pointee.offloadPeer ? Self.maxOffloadFrame : self.maxFrame
        let kept = StreamFramer.drain(base, end: end, maxFrame: maxFrame) { frame, length in
            // Reassembly copies: the frame moves into a pool buffer of its own.
            guard let buffer = pool.allocate() else {
                port.pointee.rxPackets &+= 1
                port.pointee.count(.noBuffer)
                return
            }
            pool.pointer(buffer, BufferPool.headroom).copyMemory(from: frame, byteCount: length)
            forward(buffer: buffer, offset: BufferPool.headroom, length: length, header: .none, from: slot)
            pool.release(buffer)
        }
        switch kept {
        case .success(let fill):
            port.pointee.streamFill = Int32(fill)
        case .failure(let bad):
            Socket.reset(port.pointee.fd)
            removePort(slot, reason: "stream frame length \(bad.length) outside 14...\(maxFrame), connection reset")
            return
        }
        armStreamReceive(slot)
    }

    // MARK: - Send

    /// One sendmsg of up to `sendBatch` queued frames, each as length prefix + frame.
    func submitStreamSend(_ port: UnsafeMutablePointer<PortState>, token: Token) {
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
        ring.prepareSendMsg(fd: port.pointee.fd, message: message, flags: Int32(MSG_NOSIGNAL) | Int32(MSG_WAITALL),
                            token: token)
        port.pointee.inFlight = n
    }

    /// The sendmsg completed: pops the frames it wrote whole and keeps how far into the next it got.
    func streamSendDone(_ slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        if let error = Errno(completion: result) {
            port.pointee.inFlight = 0
            if error == .EAGAIN || error == .EINTR {
                markDirty(slot)
            } else {
                sendFailed(slot, errno: error)
            }
            return
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
}
