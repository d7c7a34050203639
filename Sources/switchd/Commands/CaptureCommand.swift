// CaptureCommand: `switchd capture NETWORK`, the frames entering a network's ports, as pcap or one line each.
//
// Protocol (docs/status-json.md, "capture"): the request `{"op":"capture",...}` carries the BPF
// program compiled here; the reply passes the reading end of a SOCK_SEQPACKET socket, one record per
// message (a 16-byte CaptureRecordHeader, then the frame). The control connection stays open: it is
// the capture's lease. At the end the client asks `{"op":"captureStats"}` on it for the lost count,
// then closes it, which ends the capture in the daemon.
import ArgumentParser
import Foundation
import Glibc
import Proto
import Switch
import SwitchSys

struct CaptureCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture the frames entering a network's ports: pcap with -w, else one line per frame.",
        discussion: """
            Captures what the ports of NETWORK receive (only PORT's with --port), as it arrives: GSO \
            super-frames whole, so TCP segments may be longer than the MTU and carry partial checksums. \
            Frames the gateway services send (ARP, DHCP, RA, DNS replies) are not any port's ingress \
            and are not captured. EXPR is a tcpdump expression (pcap-filter(7)) compiled by libpcap. \
            -w FILE writes pcap; -w - streams it to standard output, for `| tcpdump -n -r -` or \
            `| wireshark -k -i -`. Stops after N frames, on SIGINT or SIGTERM, or when switchd ends the \
            capture; then prints on standard error how many frames were captured and how many were lost \
            because this reader was too slow (switchd never waits for it).
            """
    )

    @Argument(help: "The network.")
    var network: String

    @Option(help: ArgumentHelp("Only frames received on this port (an id from `switchd status`).", valueName: "PORT"))
    var port: String?

    @Option(help: ArgumentHelp("A tcpdump filter expression, e.g. 'icmp or arp'.", valueName: "EXPR"))
    var filter: String?

    @Option(help: ArgumentHelp("Stop after this many frames.", valueName: "N"))
    var count: Int?

    @Option(name: [.customShort("w"), .customLong("write")],
            help: ArgumentHelp("Write pcap to FILE, or to standard output with -.", valueName: "FILE"))
    var write: String?

    @OptionGroup var locate: LocateOptions

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func execute() throws {
        let compiled = try filter.map { expression throws(ControlError) in try Pcap.compile(expression) }
        let path = try locate.controlSocket()
        let writer = try write.map { target throws(ControlError) in try PcapWriter(path: target) }
        // SIGINT, SIGTERM and SIGHUP wait for the watcher thread; SIGPIPE is ignored, so a pipe reader
        // that goes away is a failed write, after which the counts are still printed.
        Signals.block()
        let connection = try CaptureConnection.open(
            path: path, request: .capture(network: network, port: port, filter: compiled))
        let watcher = Thread {
            _ = Signals.next()
            connection.interrupt()
        }
        watcher.start()

        let (captured, end) = connection.receive(limit: count) { header, frame in
            if let writer {
                writer.write(header, frame: frame)
            } else {
                print(CaptureSummary.line(header, frame))
            }
        } flush: {
            writer?.flush() ?? (fflush(stdout) == 0)
        }
        let stats = try? connection.stats()
        connection.close()
        if end == .daemon { printError("switchd ended the capture (the network was removed or switchd stopped)") }
        if end == .outputFailed { printError("switchd: cannot write \(write ?? "standard output") any more: stopping") }
        var summary = "\(captured) frames captured"
        if let stats {
            summary += ", \(stats.lost) lost" + (stats.lost > 0 ? " (the reader was too slow)" : "")
        } else {
            summary += " (switchd did not report how many were lost)"
        }
        printError(summary)
    }
}

/// The client's side of one capture: the control connection (the capture's lease) and the socket
/// the records arrive on.
final class CaptureConnection: @unchecked Sendable {
    private let control: UnixSocket
    private let records: Int32
    private var stopped = false
    private let lock = Lock()

    /// Why `receive` returned.
    enum End { case count, interrupted, daemon, outputFailed }

    private init(control: UnixSocket, records: Int32) {
        self.control = control
        self.records = records
    }

    deinit { Descriptor.close(records) }

    /// Asks switchd at `path` for a capture; returns once it runs.
    static func open(path: String, request: ControlRequest) throws -> CaptureConnection {
        let control: UnixSocket
        do {
            control = try UnixSocket.connect(to: path)
        } catch {
            switch error.errno {
            case ENOENT, ECONNREFUSED: throw ControlError("no switchd running at \(path)")
            case EACCES: throw ControlError("permission denied on \(path)")
            default: throw error
            }
        }
        let writeError = try ControlClient.sendRequest(request.line, on: control)
        var fd: Int32 = -1
        let reply: ControlReply
        do {
            reply = try readReply(control, passed: &fd)
        } catch let error as ControlError where writeError != nil {
            if fd >= 0 { Descriptor.close(fd) }
            Log.debug("capture: \(error)")
            throw ControlClient.noReply(path: path, writeError: writeError)
        }
        guard reply.ok else {
            if fd >= 0 { Descriptor.close(fd) }
            throw ControlError(reply.error ?? "capture refused without a message")
        }
        guard fd >= 0 else { throw ControlError("switchd accepted the capture but passed no socket") }
        return CaptureConnection(control: control, records: fd)
    }

    /// The next reply line on `control`, and an fd passed with it.
    private static func readReply(_ control: UnixSocket, passed fd: inout Int32) throws -> ControlReply {
        var reader = LineReader(limit: Int.max)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count: Int
            do {
                count = try control.read(into: &buffer, passed: &fd)
            } catch {
                guard error.errno == ECONNRESET else { throw error }
                count = 0  // closed with our request unread: a reply it wrote first has been read already
            }
            if count == 0 {
                guard let last = reader.finish() else { throw ControlError("switchd closed the connection without a reply") }
                return try ControlReply(line: last)
            }
            if case .line(let line)? = reader.append(buffer[..<count]).first { return try ControlReply(line: line) }
        }
    }

    /// Hands each record to `body` until `limit` records, an interruption or the end of the capture;
    /// `flush` runs after each batch of records that arrived together (false: the output failed).
    func receive(limit: Int?, _ body: (CaptureRecordHeader, UnsafeRawBufferPointer) -> Void,
                 flush: () -> Bool) -> (Int, End) {
        let size = CaptureRecordHeader.size + Int(Pcap.snapLength) + 4096
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var captured = 0
        while true {
            var waiting = true  // the first record of a batch is waited for; the rest are taken as they are
            while true {
                guard let n = CaptureSocket.receive(records, into: buffer, waiting: waiting) else { break }  // EAGAIN: the batch is done
                if n == 0 || interrupted {
                    _ = flush()
                    return (captured, interrupted ? .interrupted : .daemon)
                }
                waiting = false
                let record = UnsafeRawBufferPointer(start: buffer.baseAddress, count: n)
                guard let header = CaptureRecordHeader(loading: record) else { continue }
                body(header, UnsafeRawBufferPointer(rebasing: record[CaptureRecordHeader.size...]))
                captured += 1
                if let limit, captured >= limit {
                    _ = flush()
                    return (captured, .count)
                }
            }
            if !flush() { return (captured, .outputFailed) }
        }
    }

    /// Stops `receive` from another thread (a signal): what is queued is left unread.
    func interrupt() {
        lock.withLock { stopped = true }
        CaptureSocket.stopReading(records)
    }

    private var interrupted: Bool { lock.withLock { stopped } }

    /// The daemon's counters for this capture.
    func stats() throws -> CaptureStats {
        try control.write(ControlRequest.captureStats.line)
        var fd: Int32 = -1
        let reply = try Self.readReply(control, passed: &fd)
        if fd >= 0 { Descriptor.close(fd) }
        guard reply.ok, let stats = reply.capture else { throw ControlError(reply.error ?? "no capture counters in the reply") }
        return stats
    }

    /// Ends the lease: the daemon removes the capture.
    func close() { control.shutdownBoth() }
}

/// One line per frame when no pcap is written: time, MACs, and what the Ethernet payload is.
enum CaptureSummary {
    static func line(_ header: CaptureRecordHeader, _ frame: UnsafeRawBufferPointer) -> String {
        var seconds = time_t(header.timestamp / 1_000_000_000)
        var local = tm()
        localtime_r(&seconds, &local)
        var line = String(format: "%02d:%02d:%02d.%06d", local.tm_hour, local.tm_min, local.tm_sec,
                          Int(header.timestamp % 1_000_000_000 / 1000))
        guard let ethernet = EthernetFrame(validating: frame) else { return line + " runt, length \(header.originalLength)" }
        line += " \(ethernet.source) > \(ethernet.destination)"
        switch ethernet.etherType {
        case .ipv4:
            if let ip = IPv4Header(validating: ethernet.payload) {
                line += " IPv4 \(ip.source) > \(ip.destination) \(name(ip.protocol))"
            } else {
                line += " IPv4 (truncated)"
            }
        case .ipv6:
            if let ip = IPv6Header(validating: ethernet.payload) {
                line += " IPv6 \(ip.source) > \(ip.destination) \(name(ip.nextHeader))"
            } else {
                line += " IPv6 (truncated)"
            }
        case .arp:
            line += " ARP"
        default:
            line += String(format: " ethertype 0x%04x", ethernet.etherType.rawValue)
        }
        line += ", length \(header.originalLength)"
        if header.flags & CaptureRecordHeader.superFrame != 0 { line += " (super-frame)" }
        return line
    }

    private static func name(_ p: IPProtocol) -> String {
        switch p {
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        case .icmpv6: "icmp6"
        default: "proto \(p.rawValue)"
        }
    }
}
