// CaptureTap: the forwarding thread's side of `switchd capture`: capture slots and sending records.
//
// Design notes.
// - Frames the services emit (ARP, DHCP, RA, DNS replies) are not the ingress of any port and are
//   not captured. The network has a fixed table of `CaptureTable.capacity` slots changed only by
//   loop commands, so the forwarding thread owns them; with no capture running the whole cost per
//   frame is one predictable branch on `count` in `ForwardingLoop.forward`.
// - A record (Capture.swift, `CaptureRecordHeader`) is sent synchronously with
//   sendmsg(MSG_DONTWAIT): the kernel copies the frame, so no pool buffer waits for a reader, and
//   nothing is allocated per frame (header, iovecs and message header are preallocated once; every
//   capture of a frame shares them, one sendmsg at a time).
// - A slow reader never slows forwarding. The writing end has a 4 MiB send buffer
//   (SO_SNDBUFFORCE; a connected unix pair is bounded by that alone, not by max_dgram_qlen). When
//   it is full, sendmsg fails with EAGAIN: the frame is counted lost and the capture is stalled.
//   While stalled, frames the filter keeps are counted lost without any syscall, and one POLLOUT
//   poll on io_uring clears the stall when the reader has drained most of the buffer (a unix socket
//   is writable again at 3/4 free). A reader that has gone (EPIPE, ECONNRESET, POLLHUP) finishes
//   the capture; its counters stay until the client's control connection, the capture's lease,
//   closes and the slot is freed.
import SwitchSys
import CPcap
import Glibc
import Proto

/// A capture slot and the generation it was given, naming one capture across commands.
struct CaptureTicket: Equatable {
    var index: Int
    var generation: UInt16
}

/// What the control thread prepared for a new capture: the loop takes ownership on success.
struct CaptureSetup {
    /// The writing end of the capture's socketpair.
    var fd: Int32
    /// Only frames received on this port (an id, resolved on the loop), or every port.
    var port: String?
    /// The filter in libpcap's layout, or nil for every frame.
    var program: UnsafeMutablePointer<bpf_insn>?
}

/// One capture of a network, owned by the forwarding thread.
struct CaptureSlot {
    enum State: UInt8 {
        case free
        /// Frames are sent to its reader.
        case active
        /// Its reader has gone or the switch stopped: counters kept until its lease ends.
        case finished
    }
    static let allPorts = UInt16.max

    var state = State.free
    var generation: UInt16 = 0
    var fd: Int32 = -1
    var port = CaptureSlot.allPorts
    var portGeneration: UInt16 = 0
    var program: UnsafeMutablePointer<bpf_insn>? = nil
    /// The reader's socket was full: count frames lost without trying until POLLOUT.
    var stalled = false
    /// A POLLOUT poll is armed on `fd`.
    var pollArmed = false
    var captured: UInt64 = 0
    var lost: UInt64 = 0

    var stats: CaptureStats { CaptureStats(captured: captured, lost: lost) }
}

/// The network's capture slots and the preallocated message every record is sent with.
struct CaptureTable {
    static let capacity = 8

    let slots: UnsafeMutablePointer<CaptureSlot>
    /// Active captures: the forwarding path looks at the slots only when this is not 0.
    var count = 0
    /// iov[0] is the record header, iov[1] the frame; `message` points at them.
    let header: UnsafeMutableRawPointer
    let iov: UnsafeMutablePointer<iovec>
    let message: UnsafeMutablePointer<msghdr>

    /// Allocates the table (once, when the loop is created).
    init() {
        slots = .allocate(capacity: Self.capacity)
        slots.initialize(repeating: CaptureSlot(), count: Self.capacity)
        header = .allocate(byteCount: CaptureRecordHeader.size, alignment: 8)
        iov = .allocate(capacity: 2)
        iov.initialize(repeating: iovec(iov_base: header, iov_len: CaptureRecordHeader.size), count: 2)
        message = .allocate(capacity: 1)
        message.initialize(to: msghdr())
        message.pointee.msg_iov = iov
        message.pointee.msg_iovlen = 2
    }

    /// Frees the table and whatever programs its slots still hold.
    func deallocate() {
        for i in 0..<Self.capacity { slots[i].program?.deallocate() }
        slots.deallocate()
        header.deallocate()
        iov.deallocate()
        message.deallocate()
    }
}

extension ForwardingLoop {
    /// Offers a frame received on port `slot` to the network's captures. Called from `forward` only
    /// when a capture is active; allocates nothing.
    @inline(never)
    func capture(_ frame: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader, from slot: UInt16) {
        let table = captures
        var stamped = false
        for i in 0..<CaptureTable.capacity {
            let c = table.slots + i
            guard c.pointee.state == .active else { continue }
            if c.pointee.port != CaptureSlot.allPorts
                && (c.pointee.port != slot || c.pointee.portGeneration != ports[Int(slot)].generation) { continue }
            var kept = length
            if let program = c.pointee.program {
                kept = min(Int(bpf_filter(program, frame.assumingMemoryBound(to: UInt8.self), UInt32(length),
                                          UInt32(length))), length)
                if kept == 0 { continue }
            }
            if c.pointee.stalled {
                c.pointee.lost &+= 1
                continue
            }
            if !stamped {
                stamped = true
                var flags: UInt16 = 0
                if header.isGSO { flags |= CaptureRecordHeader.superFrame }
                if header.flags & VirtioNetHeader.needsChecksum != 0 { flags |= CaptureRecordHeader.partialChecksum }
                CaptureRecordHeader(timestamp: CaptureSocket.realtimeNanoseconds(), originalLength: UInt32(length),
                                    port: slot, flags: flags).store(to: table.header)
            }
            table.iov[1] = iovec(iov_base: frame, iov_len: kept)
            switch CaptureSocket.send(c.pointee.fd, table.message) {
            case 0:
                c.pointee.captured &+= 1
            case EAGAIN, ENOBUFS:
                c.pointee.lost &+= 1
                c.pointee.stalled = true
                armCaptureWritable(index: i)
            case EPIPE, ECONNRESET, ENOTCONN, ECONNREFUSED:
                c.pointee.lost &+= 1
                finishCapture(index: i, reason: "its reader has gone")
            default:  // EMSGSIZE, ENOMEM: this frame only
                c.pointee.lost &+= 1
            }
        }
    }

    /// Waits (on the ring) until a stalled capture's reader has made room.
    private func armCaptureWritable(index i: Int) {
        let c = captures.slots + i
        guard !c.pointee.pollArmed else { return }
        c.pointee.pollArmed = true
        ring.preparePoll(fd: c.pointee.fd, events: Int32(POLLOUT),
                         token: Self.captureToken(index: i, generation: c.pointee.generation))
    }

    private static func captureToken(index i: Int, generation: UInt16) -> Token {
        Token(.captureWritable, generation: generation, aux: UInt32(i))
    }

    /// The POLLOUT of a stalled capture: the reader made room (resume) or has gone (finish).
    func captureWritableDone(_ c: Completion) {
        let i = Int(c.token.aux)
        guard i < CaptureTable.capacity else { return }
        let slot = captures.slots + i
        guard slot.pointee.generation == c.token.generation, slot.pointee.state == .active else { return }
        slot.pointee.pollArmed = false
        // io_uring completes a poll on EPOLLRDHUP too: the reader shut its end down, which the
        // protocol does not allow (and which would complete every later poll at once).
        if c.result > 0 && c.result & (Int32(POLLHUP | POLLERR) | CaptureSocket.pollRDHUP) != 0 {
            finishCapture(index: i, reason: "its reader has gone")
        } else {
            slot.pointee.stalled = false
        }
    }

    /// Stops sending to a capture and closes its socket (its reader sees the end); the slot and its
    /// counters stay until `removeCapture`.
    func finishCapture(index i: Int, reason: String) {
        let c = captures.slots + i
        guard c.pointee.state == .active else { return }
        if c.pointee.pollArmed {
            ring.preparePollRemove(Self.captureToken(index: i, generation: c.pointee.generation), token: Token(.cancel))
            c.pointee.pollArmed = false
        }
        Descriptor.close(c.pointee.fd)
        c.pointee.fd = -1
        c.pointee.state = .finished
        c.pointee.stalled = false
        captures.count -= 1
        Log.info("network \(spec.name): capture \(i) finished, \(reason): \(c.pointee.captured) frames sent, "
                 + "\(c.pointee.lost) lost")
    }

    /// Adds a capture from a command (loop thread). On failure the caller still owns `setup`'s fd and program.
    func addCapture(_ setup: CaptureSetup) -> Result<CaptureTicket, SwitchError> {
        var port = CaptureSlot.allPorts
        if let id = setup.port {
            guard let found = slot(id: id) else {
                return .failure(SwitchError("network \(spec.name) has no port \(id)"))
            }
            port = found
        }
        let table = captures
        guard let i = (0..<CaptureTable.capacity).first(where: { table.slots[$0].state == .free }) else {
            return .failure(SwitchError("too many captures on \(spec.name) (at most \(CaptureTable.capacity))"))
        }
        let c = table.slots + i
        let generation = c.pointee.generation &+ 1
        c.pointee = CaptureSlot()
        c.pointee.generation = generation
        c.pointee.state = .active
        c.pointee.fd = setup.fd
        c.pointee.port = port
        if port != CaptureSlot.allPorts { c.pointee.portGeneration = ports[Int(port)].generation }
        c.pointee.program = setup.program
        captures.count += 1
        Log.info("network \(spec.name): capture \(i) started (\(setup.port.map { "port \($0)" } ?? "all ports"), "
                 + (setup.program == nil ? "no filter)" : "filtered)"))
        return .success(CaptureTicket(index: i, generation: generation))
    }

    /// The counters of a capture, nil when the ticket names none.
    func captureStats(_ ticket: CaptureTicket) -> CaptureStats? {
        guard ticket.index < CaptureTable.capacity else { return nil }
        let c = captures.slots[ticket.index]
        guard c.generation == ticket.generation, c.state != .free else { return nil }
        return c.stats
    }

    /// Ends a capture whose lease has ended and frees its slot; returns its final counters.
    func removeCapture(_ ticket: CaptureTicket) -> CaptureStats? {
        guard let stats = captureStats(ticket) else { return nil }
        finishCapture(index: ticket.index, reason: "its client closed the control connection")
        let c = captures.slots + ticket.index
        c.pointee.program?.deallocate()
        c.pointee = CaptureSlot()
        c.pointee.generation = ticket.generation
        return stats
    }

    /// At shutdown: every reader sees the end of its capture.
    func finishCaptures() {
        for i in 0..<CaptureTable.capacity { finishCapture(index: i, reason: "the switch is stopping") }
    }
}
