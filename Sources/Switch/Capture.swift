// Capture: `switchd capture` in the dataplane: BPF filters, the network's capture slots, and the
// records the forwarding thread sends to each capture's reader.
//
// Design notes.
// - A capture is not a port: it sees the ingress of every port of one network (or of one port) and
//   sends nothing into the switch. Frames the services emit (ARP, DHCP, RA, DNS replies) are not
//   the ingress of any port and are not captured. The network has a fixed table of
//   `CaptureTable.capacity` slots changed only by loop commands, so the forwarding thread owns them;
//   with no capture running the whole cost per frame is one predictable branch on `count` in
//   `ForwardingLoop.forward`.
// - Filters are classic BPF that libpcap compiled from a tcpdump expression in the client
//   (`pcap_compile` on a dead DLT_EN10MB handle), run here by libpcap's own interpreter
//   (`bpf_filter`), so an expression means exactly what it means to tcpdump. A program is checked
//   once with `bpf_validate` when the request is decoded; the loop never sees an unchecked one.
// - A record is one message on a SOCK_SEQPACKET socketpair: a 16-byte header
//   (`CaptureRecordHeader`) and the frame as received, super-frames whole. It is sent synchronously
//   with sendmsg(MSG_DONTWAIT): the kernel copies the frame, so no pool buffer waits for a reader,
//   and nothing is allocated per frame (header, iovecs and message header are preallocated once
//   per network; every capture of a frame shares them, one sendmsg at a time).
// - A slow reader never slows forwarding. The writing end has a 4 MiB send buffer
//   (SO_SNDBUFFORCE; a connected unix pair is bounded by that alone, not by max_dgram_qlen). When
//   it is full, sendmsg fails with EAGAIN: the frame is counted lost and the capture is stalled.
//   While stalled, frames the filter keeps are counted lost without any syscall, and one POLLOUT
//   poll on io_uring clears the stall when the reader has drained most of the buffer (a unix socket
//   is writable again at 3/4 free). A reader that has gone (EPIPE, ECONNRESET, POLLHUP) finishes
//   the capture; its counters stay until the client's control connection, the capture's lease,
//   closes and the slot is freed.
import CLiburing
import CPcap
import Glibc
import Proto

/// One classic BPF instruction, as `struct bpf_insn` holds it.
public struct BPFInstruction: Equatable, Sendable {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32) {
        self.code = code; self.jt = jt; self.jf = jf; self.k = k
    }

    var insn: bpf_insn { bpf_insn(code: code, jt: jt, jf: jf, k: k) }
}

/// A classic BPF program that `bpf_validate` accepted: a capture's filter.
public struct CaptureFilter: Equatable, Sendable {
    /// The most instructions a program may have (BPF_MAXINSNS).
    public static let maxInstructions = 4096

    public let instructions: [BPFInstruction]

    /// Checks `instructions` as the kernel's and libpcap's interpreters require: 1...4096
    /// instructions, jumps forward and inside the program, ending in a return.
    public init(_ instructions: [BPFInstruction]) throws(SwitchError) {
        guard !instructions.isEmpty else { throw SwitchError("the filter program is empty") }
        guard instructions.count <= Self.maxInstructions else {
            throw SwitchError("the filter program has \(instructions.count) instructions, more than \(Self.maxInstructions)")
        }
        let valid = instructions.map(\.insn).withUnsafeBufferPointer { bpf_validate($0.baseAddress, Int32($0.count)) }
        guard valid != 0 else { throw SwitchError("the filter program is not valid BPF (bpf_validate refused it)") }
        self.instructions = instructions
    }

    /// Runs the filter over `frame`: the number of bytes to keep, 0 when the frame does not match.
    /// (For tests and tools; the forwarding thread runs its own copy of the program.)
    public func run(on frame: UnsafeRawBufferPointer) -> Int {
        let program = makeProgram()
        defer { program.deallocate() }
        let kept = bpf_filter(program, frame.baseAddress?.assumingMemoryBound(to: UInt8.self),
                              UInt32(frame.count), UInt32(frame.count))
        return min(Int(kept), frame.count)
    }

    /// The program in libpcap's layout, on the heap for the dataplane; the caller deallocates it.
    func makeProgram() -> UnsafeMutablePointer<bpf_insn> {
        let program = UnsafeMutablePointer<bpf_insn>.allocate(capacity: instructions.count)
        for (i, instruction) in instructions.enumerated() { (program + i).initialize(to: instruction.insn) }
        return program
    }
}

/// The 16-byte header before each frame on a capture socket. All fields little-endian.
public struct CaptureRecordHeader: Equatable, Sendable {
    public static let size = 16
    /// Field offsets.
    static let timestampOffset = 0, originalLengthOffset = 8, portOffset = 12, flagsOffset = 14

    /// `flags`: the frame arrived as a GSO super-frame (its virtio-net header said so), longer than the MTU.
    public static let superFrame: UInt16 = 1
    /// `flags`: its L4 checksum holds only the pseudo-header sum (checksum offload, NEEDS_CSUM).
    public static let partialChecksum: UInt16 = 2

    /// When the switch received the frame, nanoseconds since the Unix epoch (CLOCK_REALTIME).
    public var timestamp: UInt64
    /// The frame's length as received; the message holds fewer bytes only when the filter said so.
    public var originalLength: UInt32
    /// The slot of the port that received the frame.
    public var port: UInt16
    public var flags: UInt16

    public init(timestamp: UInt64, originalLength: UInt32, port: UInt16, flags: UInt16) {
        self.timestamp = timestamp; self.originalLength = originalLength; self.port = port; self.flags = flags
    }

    /// Reads a header from the start of a record; nil when the record is shorter than one.
    public init?(loading record: UnsafeRawBufferPointer) {
        guard record.count >= Self.size, let base = record.baseAddress else { return nil }
        timestamp = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: Self.timestampOffset, as: UInt64.self))
        originalLength = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: Self.originalLengthOffset, as: UInt32.self))
        port = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: Self.portOffset, as: UInt16.self))
        flags = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: Self.flagsOffset, as: UInt16.self))
    }

    /// Writes the header's 16 bytes at `target`.
    @inline(__always)
    public func store(to target: UnsafeMutableRawPointer) {
        target.storeBytes(of: timestamp.littleEndian, toByteOffset: Self.timestampOffset, as: UInt64.self)
        target.storeBytes(of: originalLength.littleEndian, toByteOffset: Self.originalLengthOffset, as: UInt32.self)
        target.storeBytes(of: port.littleEndian, toByteOffset: Self.portOffset, as: UInt16.self)
        target.storeBytes(of: flags.littleEndian, toByteOffset: Self.flagsOffset, as: UInt16.self)
    }
}

/// A capture's counters: frames sent to its reader, and frames its filter kept that the reader
/// never got (its socket was full, or it had gone).
public struct CaptureStats: Codable, Equatable, Sendable {
    public var captured: UInt64
    public var lost: UInt64
    public init(captured: UInt64 = 0, lost: UInt64 = 0) { self.captured = captured; self.lost = lost }
}

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
        let sqe = ring.sqe()
        io_uring_prep_poll_add(sqe, c.pointee.fd, UInt32(POLLOUT))
        sqe.setToken(Self.captureToken(index: i, generation: c.pointee.generation))
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
            let sqe = ring.sqe()
            io_uring_prep_poll_remove(sqe, Self.captureToken(index: i, generation: c.pointee.generation).packed)
            sqe.setToken(Token(.cancel))
            c.pointee.pollArmed = false
        }
        close(c.pointee.fd)
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

/// A running capture, held by the control connection that asked for it (its lease): `end()`, or
/// dropping it, removes the capture from the switch. Used by one thread at a time.
public final class Capture: @unchecked Sendable {
    private let dataplane: Dataplane
    private let ticket: CaptureTicket
    private var readerFD: Int32
    private var final: CaptureStats?

    init(dataplane: Dataplane, ticket: CaptureTicket, readerFD: Int32) {
        self.dataplane = dataplane
        self.ticket = ticket
        self.readerFD = readerFD
    }

    deinit {
        end()
        if readerFD >= 0 { close(readerFD) }
    }

    /// The reading end of the capture's socket, for the client; the caller passes it on and closes it.
    public func takeReaderFD() -> Int32 {
        defer { readerFD = -1 }
        return readerFD
    }

    /// The counters so far (the final ones once ended).
    public func stats() -> CaptureStats {
        if let final { return final }
        let command = LoopCommand(.captureStats(ticket))
        dataplane.runOnLoop(command)
        return command.captureStats ?? CaptureStats()
    }

    /// Removes the capture from the switch (idempotent) and returns its final counters.
    @discardableResult
    public func end() -> CaptureStats {
        if let final { return final }
        let command = LoopCommand(.removeCapture(ticket))
        dataplane.runOnLoop(command)
        let stats = command.captureStats ?? CaptureStats()
        final = stats
        return stats
    }
}
