// Capture: `switchd capture`'s public side: BPF filters, the record format, counters and the lease.
//
// Design notes.
// - A capture is not a port: it sees the ingress of every port of the network (or of one port) and
//   sends nothing into the switch. The forwarding thread's side (slots, sending records, stalls)
//   is Loop/CaptureTap.swift; this file is what the control thread and switchd see.
// - Filters are classic BPF that libpcap compiled from a tcpdump expression in the client
//   (`pcap_compile` on a dead DLT_EN10MB handle), run here by libpcap's own interpreter
//   (`bpf_filter`), so an expression means exactly what it means to tcpdump. A program is checked
//   once with `bpf_validate` when the request is decoded; the loop never sees an unchecked one.
// - A record is one message on a SOCK_SEQPACKET socketpair: a 16-byte header
//   (`CaptureRecordHeader`) and the frame as received, super-frames whole.
// - The lease: a capture lives as long as the client's control connection holds its `Capture`;
//   its counters stay readable after the reader has gone, until the lease ends.
import CPcap
import Glibc
import Proto
import SwitchSys

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
        if readerFD >= 0 { Descriptor.close(readerFD) }
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
