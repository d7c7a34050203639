// SendQueue: how a port's queued frames are submitted and completed, whatever its kind.
//
// Each kind's own half is in its file (TAPPort, DgramPort, StreamPort); what they share is here:
// the dispatch by kind, the linked-SQE chain that link and dgram ports send with, the queue's
// head, waiting for POLLOUT, and the one errno table that says which failed sends end a port.
import SwitchSys
import Glibc
import Proto

extension ForwardingLoop {
    static let iovOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.iov)!
    static let prefixOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.prefix)!
    static let messageOffset = MemoryLayout<TxEntry>.offset(of: \TxEntry.message)!

    /// Submits the next chain of queued frames of port `slot` unless one is in flight.
    func submitSends(_ slot: UInt16) {
        let port = ports + Int(slot)
        let token = Token(.send, slot: slot, generation: port.pointee.generation)
        if port.pointee.kind == .tap {
            submitTAPSends(port, token: token)
            return
        }
        if port.pointee.kind == .vhostUser {
            submitVhostSends(port, slot: slot)  // copies into guest memory at once: nothing in flight
            return
        }
        if port.pointee.kind == .shard {
            submitShardSends(port)  // copies into the peer shard's buffers at once: nothing in flight
            return
        }
        guard port.pointee.inFlight == 0, port.pointee.queueCount > 0, !port.pointee.retryPending,
              !port.pointee.waitingWritable else { return }
        switch port.pointee.kind {
        case .tap, .link, .dgramPeer, .dgramConnected: submitChain(port, token: token)
        case .dgramShared: submitSharedDgramSend(port, token: token)
        case .stream: submitStreamSend(port, token: token)
        case .vhostUser, .shard: break  // above
        case .vxlan: submitVXLANSends(port, token: token)
        }
    }

    /// One linked chain of up to `sendBatch` sends: writev with a virtio-net header to a link
    /// port, send to a dgram peer's own socket. Linked, so they go out in order and a full peer
    /// stops the rest of the chain.
    private func submitChain(_ port: UnsafeMutablePointer<PortState>, token: Token) {
        let n = min(port.pointee.queueCount, Self.sendBatch)
        for i in 0..<n {
            let entry = port.pointee.queue! + port.pointee.queueIndex(i)
            let frame = pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset))
            let submission: Submission
            if port.pointee.kind.hasVnetHeader {
                submission = prepareDeviceWrite(entry, port, token: token)
            } else {
                // MSG_DONTWAIT: a full peer gives EAGAIN here, and the loop waits for POLLOUT itself.
                // (Left to io_uring's internal retry, a unix datagram send that hit a full peer
                // was re-sent with an emptied buffer: zero-length datagrams, seen on Linux 6.18.)
                submission = ring.prepareSend(fd: port.pointee.fd, bytes: frame, length: Int(entry.pointee.length),
                                              flags: Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), token: token)
            }
            if i < n - 1 { submission.link() }
        }
        port.pointee.inFlight = n
    }

    /// A send of port `slot` completed (one per frame, or one per stream sendmsg).
    func sendDone(slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        guard port.pointee.phase != .free, port.pointee.inFlight > 0 else { return }
        switch port.pointee.kind {
        case .tap: tapSendDone(slot, result: result)
        case .link, .dgramPeer, .dgramShared, .dgramConnected:
            if Errno(completion: result) == .EAGAIN && port.pointee.kind == .dgramShared {
                sharedDgramSendBlocked(slot)
                return
            }
            chainSendDone(slot, result: result)
        case .stream: streamSendDone(slot, result: result)
        case .vhostUser, .shard: break  // never in flight
        case .vxlan: vxlanSendDone(slot, result: result)
        }
        if port.pointee.phase == .closing {
            finishIfIdle(slot)
        } else if port.pointee.inFlight == 0 && port.pointee.queueCount > 0 {
            markDirty(slot)
        }
    }

    /// One completion of a chain (`submitChain`).
    private func chainSendDone(_ slot: UInt16, result: Int32) {
        let port = ports + Int(slot)
        port.pointee.inFlight -= 1
        // Completions of a chain arrive in order: each is the queue's head unless an earlier one
        // of the chain stopped it, after which the rest come back ECANCELED and stay queued.
        let error = Errno(completion: result)
        if error == .EAGAIN {
            port.pointee.chainStopped = true
            port.pointee.peerFull = true
        } else if error != .ECANCELED && !port.pointee.chainStopped {
            popHead(port, sent: error == nil)
            if let error {
                port.pointee.chainStopped = true  // the rest of the chain is cancelled: resend it
                sendFailed(slot, errno: error)
            }
        }
        if port.pointee.inFlight == 0 {
            port.pointee.chainStopped = false
            if port.pointee.peerFull {
                port.pointee.peerFull = false
                if port.pointee.isActive { armWritable(slot) }
            }
        }
    }

    /// Releases the head entry of a port's queue.
    @inline(__always)
    func popHead(_ port: UnsafeMutablePointer<PortState>, sent: Bool) {
        let entry = port.pointee.queue! + port.pointee.queueIndex(0)
        if sent {
            port.pointee.txPackets &+= 1
            port.pointee.txBytes &+= UInt64(entry.pointee.length)
        }
        pool.release(entry.pointee.buffer)
        port.pointee.queueHead = (port.pointee.queueHead + 1) % port.pointee.queueCapacity
        port.pointee.queueCount -= 1
    }

    /// Waits until port `slot` can take more (its peer's queue has room), then sends again.
    private func armWritable(_ slot: UInt16) {
        let port = ports + Int(slot)
        guard port.pointee.fd >= 0, !port.pointee.waitingWritable else { markDirty(slot); return }
        port.pointee.waitingWritable = true
        ring.preparePoll(fd: port.pointee.fd, events: Int32(POLLOUT),
                         token: Token(.writable, slot: slot, generation: port.pointee.generation))
    }

    func writableDone(slot: UInt16) {
        ports[Int(slot)].waitingWritable = false
        if ports[Int(slot)].isActive { markDirty(slot) } else { finishIfIdle(slot) }
    }

    /// What a failed send means for its port: the peer is gone, or the frame is lost and we go on.
    func sendFailed(_ slot: UInt16, errno code: Errno) {
        switch code {
        case .ECONNREFUSED, .ENOENT, .ENOTCONN, .EPIPE, .ECONNRESET, .EBADFD, .ENODEV, .ENXIO, .EBADF:
            ports[Int(slot)].count(.sendError)
            removePort(slot, reason: "peer gone (\(code))")
        case .EPERM where ports[Int(slot)].kind == .dgramPeer:
            // The peer connected its socket to dgram.sock: it accepts datagrams from there only.
            ports[Int(slot)].count(.sendError)
            ports[Int(slot)].kind = .dgramShared
        default:  // ECANCELED (a broken chain), ENOBUFS, EMSGSIZE, EAGAIN, EINVAL ...
            ports[Int(slot)].count(.sendError)
        }
    }

    /// On the short timer: sends again to the shared dgram peers whose send hit EAGAIN.
    func retrySends() {
        let list = retrying
        retrying.removeAll(keepingCapacity: true)
        for slot in list {
            ports[Int(slot)].retryPending = false
            if ports[Int(slot)].isActive { submitSends(slot) } else { finishIfIdle(slot) }
        }
    }
}
