// Pcap: libpcap for `switchd capture`: tcpdump expressions compiled to BPF, and the pcap writer.
//
// The client compiles the expression, so the daemon never parses filter syntax: it receives a BPF
// program, validates it and runs it with libpcap's interpreter (Switch/Capture.swift). Both sides
// use libpcap, so a filter means exactly what it means to tcpdump on an Ethernet interface.
import CPcap
import Glibc
import Switch

/// libpcap's view of the frames: Ethernet, whole (super-frames are up to 64 KiB and more).
enum Pcap {
    /// DLT_EN10MB.
    static let linkType: Int32 = 1
    /// The snapshot length the filter is compiled for and the file declares (tcpdump's default).
    static let snapLength: Int32 = 262_144
    /// PCAP_NETMASK_UNKNOWN: `ip broadcast` cannot be resolved without a netmask; everything else can.
    static let netmaskUnknown: UInt32 = 0xFFFF_FFFF

    /// Compiles a tcpdump expression (pcap-filter(7)) for Ethernet frames, optimised.
    static func compile(_ expression: String) throws(ControlError) -> CaptureFilter {
        guard let handle = pcap_open_dead(linkType, snapLength) else { throw ControlError("libpcap: pcap_open_dead failed") }
        defer { pcap_close(handle) }
        var program = bpf_program()
        guard pcap_compile(handle, &program, expression, 1, netmaskUnknown) == 0 else {
            throw ControlError("bad filter \"\(expression)\": \(String(cString: pcap_geterr(handle)))")
        }
        defer { pcap_freecode(&program) }
        let instructions = (0..<Int(program.bf_len)).map { i in
            let insn = program.bf_insns[i]
            return BPFInstruction(code: insn.code, jt: insn.jt, jf: insn.jf, k: insn.k)
        }
        do {
            return try CaptureFilter(instructions)
        } catch {
            throw ControlError("bad filter \"\(expression)\": \(error.description)")
        }
    }
}

/// A pcap savefile written by libpcap: a file, or standard output for `-`.
final class PcapWriter {
    private let handle: OpaquePointer
    private let dumper: OpaquePointer

    /// Opens `path` ("-": standard output) and writes the file header (microsecond timestamps,
    /// Ethernet, snapshot length 262144), flushed so a reader on a pipe starts at once.
    init(path: String) throws(ControlError) {
        guard let handle = pcap_open_dead(Pcap.linkType, Pcap.snapLength) else {
            throw ControlError("libpcap: pcap_open_dead failed")
        }
        guard let dumper = pcap_dump_open(handle, path) else {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw ControlError("cannot write \(path == "-" ? "standard output" : path): \(message)")
        }
        self.handle = handle
        self.dumper = dumper
        _ = pcap_dump_flush(dumper)
    }

    deinit {
        pcap_dump_close(dumper)
        pcap_close(handle)
    }

    /// Appends one frame (`frame` holds what was kept of it; `header.originalLength` is its length).
    func write(_ header: CaptureRecordHeader, frame: UnsafeRawBufferPointer) {
        var packet = pcap_pkthdr()
        packet.ts = timeval(tv_sec: Int(header.timestamp / 1_000_000_000),
                            tv_usec: Int(header.timestamp % 1_000_000_000 / 1000))
        packet.caplen = UInt32(frame.count)
        packet.len = header.originalLength
        pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &packet, frame.baseAddress?.assumingMemoryBound(to: UInt8.self))
    }

    /// Pushes what is buffered to the file or pipe; false when that failed (a reader that went away).
    func flush() -> Bool { pcap_dump_flush(dumper) == 0 && ferror(pcap_dump_file(dumper)) == 0 }
}
