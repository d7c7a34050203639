// The capture client's parts: tcpdump expressions compiled by libpcap and run on golden frames, the
// capture request's decoding (bad filter programs refused), the pcap file libpcap writes, and a
// capture through a real control socket and dataplane, ended by closing its connection.
import Glibc
import Proto
@testable import Switch
import SwitchSys
import XCTest
@testable import switchd

final class CaptureCommandTests: XCTestCase {
    // MARK: - Golden frames

    private static let ethernetIPv4: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
    private static let ethernetIPv6: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xDD]

    /// IPv4 10.77.0.11 → 10.77.0.12, protocol `proto`, total length 20 + `payload`.
    private static func ipv4(_ proto: UInt8, payload: Int) -> [UInt8] {
        [0x45, 0x00, 0x00, UInt8(20 + payload), 0x00, 0x01, 0x40, 0x00, 0x40, proto, 0x00, 0x00,
         10, 77, 0, 11, 10, 77, 0, 12]
    }

    /// A TCP SYN from port 49152 to `port`.
    private static func tcp(to port: UInt16) -> [UInt8] {
        [0xC0, 0x00, UInt8(port >> 8), UInt8(port & 0xFF), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFA, 0xF0, 0, 0, 0, 0]
    }

    static let icmpEcho = ethernetIPv4 + ipv4(1, payload: 8) + [0x08, 0x00, 0xF7, 0xFF, 0x00, 0x00, 0x00, 0x00]
    static let tcp80 = ethernetIPv4 + ipv4(6, payload: 20) + tcp(to: 80)
    static let tcp443 = ethernetIPv4 + ipv4(6, payload: 20) + tcp(to: 443)
    static let udp80 = ethernetIPv4 + ipv4(17, payload: 8) + [0xC0, 0x00, 0x00, 0x50, 0x00, 0x08, 0x00, 0x00]
    static let tcp80v6 = ethernetIPv6
        + [0x60, 0, 0, 0, 0x00, 0x14, 0x06, 0x40] + [0xFD] + [UInt8](repeating: 0, count: 14) + [1]
        + [0xFD] + [UInt8](repeating: 0, count: 14) + [2] + tcp(to: 80)
    static let arpRequest: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
                                      0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x01,
                                      10, 77, 0, 11, 0, 0, 0, 0, 0, 0, 10, 77, 0, 12]

    private static let frames: [(String, [UInt8])] = [
        ("icmpEcho", icmpEcho), ("tcp80", tcp80), ("tcp443", tcp443), ("udp80", udp80), ("tcp80v6", tcp80v6),
        ("arpRequest", arpRequest),
    ]

    private func matching(_ expression: String) throws -> [String] {
        let filter = try Pcap.compile(expression)
        return Self.frames.compactMap { name, bytes in
            let kept = bytes.withUnsafeBytes { filter.run(on: $0) }
            if kept != 0 { XCTAssertEqual(kept, bytes.count, "\(expression) keeps all of \(name)") }
            return kept != 0 ? name : nil
        }
    }

    func testTcpdumpExpressionsOnGoldenFrames() throws {
        XCTAssertEqual(try matching("icmp"), ["icmpEcho"])
        XCTAssertEqual(try matching("tcp port 80"), ["tcp80", "tcp80v6"])
        XCTAssertEqual(try matching("arp"), ["arpRequest"])
        XCTAssertEqual(try matching("udp or icmp"), ["icmpEcho", "udp80"])
        XCTAssertEqual(try matching("host 10.77.0.12 and not arp"), ["icmpEcho", "tcp80", "tcp443", "udp80"])
        XCTAssertEqual(try matching("ip6"), ["tcp80v6"])
        XCTAssertEqual(try matching("tcp[tcpflags] & tcp-syn != 0 and dst port 443"), ["tcp443"])
        XCTAssertEqual(try matching(""), Self.frames.map(\.0), "an empty expression keeps everything")
    }

    func testBadExpressionNamesLibpcapsMessage() {
        XCTAssertThrowsError(try Pcap.compile("icmp and and")) {
            XCTAssertEqual("\($0)", "bad filter \"icmp and and\": can't parse filter expression: syntax error")
        }
        XCTAssertThrowsError(try Pcap.compile("port 99999")) {
            XCTAssertEqual("\($0)", "bad filter \"port 99999\": illegal port number 99999 > 65535")
        }
    }

    // MARK: - The request

    private func decode(_ text: String) throws -> ControlRequest { try ControlRequest(line: Array(text.utf8)) }

    private func assertRejected(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    func testCaptureRequestsRoundTrip() throws {
        let filter = try Pcap.compile("icmp")
        for request in [ControlRequest.capture(network: "lab", port: nil, filter: nil),
                        .capture(network: "lab", port: "tap0", filter: filter), .captureStats] {
            let line = request.line
            XCTAssertEqual(line.last, 0x0A)
            XCTAssertEqual(try ControlRequest(line: Array(line.dropLast())), request)
        }
        XCTAssertEqual(String(decoding: ControlRequest.capture(network: "lab", port: nil, filter: nil).line, as: UTF8.self),
                       "{\"network\":\"lab\",\"op\":\"capture\"}\n")
        XCTAssertEqual(try decode(#"{"op":"capture","network":"lab","filter":[[6,0,0,262144]]}"#),
                       .capture(network: "lab", port: nil, filter: try CaptureFilter([BPFInstruction(code: 6, jt: 0, jf: 0, k: 262_144)])))
        XCTAssertEqual(try decode(#"{"op":"captureStats"}"#), .captureStats)
    }

    func testBadFilterArraysAreRefused() {
        let shape = "malformed request: filter instruction 0 is not [code, jt, jf, k] (code < 65536, jt and jf < 256, k < 2^32)"
        assertRejected(#"{"op":"capture","network":"lab","filter":"icmp"}"#,
                       "malformed request: filter must be an array of [code, jt, jf, k]")
        assertRejected(#"{"op":"capture","network":"lab","filter":{"code":6}}"#,
                       "malformed request: filter must be an array of [code, jt, jf, k]")
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,0,0]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[6,0,0,0]]"#, "malformed request: not valid JSON")
        assertRejected(#"{"op":"capture","network":"lab","filter":[6,0,0,0]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,0,0,0,0]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[["6",0,0,0]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[65536,0,0,0]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,256,0,0]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,0,0,-1]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,0,0,4294967296]]}"#, shape)
        assertRejected(#"{"op":"capture","network":"lab","filter":[[6,0,0,0],[6,0,0,1.5]]}"#,
                       shape.replacingOccurrences(of: "instruction 0", with: "instruction 1"))
        assertRejected(#"{"op":"capture","network":"lab","filter":[]}"#, "the filter program is empty")
        let tooLong = "[" + Array(repeating: "[6,0,0,0]", count: 4097).joined(separator: ",") + "]"
        assertRejected(#"{"op":"capture","network":"lab","filter":"# + tooLong + "}", "filter has 4097 instructions, more than 4096")
        // Shaped right but not a program: a jump past the end; no final return.
        assertRejected(#"{"op":"capture","network":"lab","filter":[[5,0,0,5],[6,0,0,0]]}"#,
                       "the filter program is not valid BPF (bpf_validate refused it)")
        assertRejected(#"{"op":"capture","network":"lab","filter":[[40,0,0,12]]}"#,
                       "the filter program is not valid BPF (bpf_validate refused it)")
        assertRejected(#"{"op":"capture","filter":[[6,0,0,0]]}"#, "malformed request: network is missing")
        assertRejected(#"{"op":"capture","network":"lab","port":7}"#, "malformed request: port must be a string")
        assertRejected(#"{"op":"capture","network":"lab","snaplen":96}"#, "malformed request: unknown key \"snaplen\"")
        assertRejected(#"{"op":"captureStats","network":"lab"}"#, "malformed request: unknown key \"network\"")
    }

    func testServiceRepliesToCaptureRequests() {
        let service = ControlService(handler: FakeHandler(), privilegedUIDs: [0])
        let root = PeerCredentials(pid: 1, uid: 0, gid: 0), user = PeerCredentials(pid: 2, uid: 4242, gid: 4242)
        func reply(_ text: String, _ peer: PeerCredentials, _ session: ControlSession?) -> String {
            String(decoding: service.reply(to: Array(text.utf8), from: peer, session: session).line.dropLast(), as: UTF8.self)
        }
        let capture = #"{"op":"capture","network":"lab"}"#
        XCTAssertEqual(reply(capture, root, nil), #"{"error":"capture needs a control connection that stays open","ok":false}"#)
        XCTAssertEqual(reply(capture, root, ControlSession()), #"{"error":"the fake switch cannot capture","ok":false}"#)
        XCTAssertEqual(reply(#"{"op":"captureStats"}"#, root, ControlSession()), #"{"error":"this connection holds no capture","ok":false}"#)
        XCTAssertTrue(reply(capture, user, ControlSession()).hasPrefix(#"{"error":"permission denied"#))
    }

    // MARK: - The pcap file

    func testPcapWriterWritesWhatTcpdumpReads() throws {
        let path = NSTemporaryDirectory() + "/switchd-pcap-\(getpid()).pcap"
        defer { unlink(path) }
        do {
            let writer = try PcapWriter(path: path)
            let header = CaptureRecordHeader(timestamp: 1_700_000_000_123_456_789, originalLength: 100, port: 3, flags: 0)
            Self.icmpEcho.withUnsafeBytes { writer.write(header, frame: $0) }
            XCTAssertTrue(writer.flush())
        }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        func le32(_ at: Int) -> UInt32 { bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        XCTAssertEqual(bytes.count, 24 + 16 + Self.icmpEcho.count)
        XCTAssertEqual(le32(0), 0xA1B2_C3D4, "microsecond pcap magic")
        XCTAssertEqual(le32(16), 262_144, "snapshot length")
        XCTAssertEqual(le32(20), 1, "LINKTYPE_ETHERNET")
        XCTAssertEqual(le32(24), 1_700_000_000)
        XCTAssertEqual(le32(28), 123_456, "microseconds")
        XCTAssertEqual(le32(32), UInt32(Self.icmpEcho.count), "captured length")
        XCTAssertEqual(le32(36), 100, "original length")
        XCTAssertEqual(Array(bytes[40...]), Self.icmpEcho)
        XCTAssertThrowsError(try PcapWriter(path: "/nonexistent/dir/x.pcap")) {
            XCTAssertTrue("\($0)".hasPrefix("cannot write /nonexistent/dir/x.pcap: "), "\($0)")
        }
    }

    // MARK: - Through the control socket

    func testCaptureThroughTheControlSocketEndsWithItsConnection() throws {
        let dir = NSTemporaryDirectory() + "/switchd-capture-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dataplane = try Dataplane(runDir: dir, network: NetworkSpec(name: "cap", subnet: IPv4Subnet("10.97.0.0/24")!))
        try dataplane.start()
        defer { dataplane.shutdown() }
        let server = try ControlServer(path: dir + "/control.sock", group: nil)
        server.serve(ControlService(handler: dataplane, privilegedUIDs: [geteuid()]))
        defer { server.stop() }

        let connection = try CaptureConnection.open(
            path: dir + "/control.sock",
            request: .capture(network: "cap", port: nil, filter: try Pcap.compile("ether proto 0x88b5")))
        XCTAssertEqual(dataplane.status().first?.captures, 1)
        // A dgram peer sends five frames: three 0x88b5, two ARP.
        let peer = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(peer) }
        var address = UnixAddress(path: dir + "/peer.sock")!
        _ = address.withSockaddr { bind(peer, $0, $1) }
        address = UnixAddress(path: dir + "/cap/dgram.sock")!
        for i in 0..<5 {
            var frame = [UInt8](repeating: UInt8(i), count: 60)
            frame.replaceSubrange(0..<14, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 0x01,
                                                 0x88, i % 2 == 0 ? 0xB5 : 0x06])
            if i % 2 != 0 { frame[12] = 0x08 }
            _ = frame.withUnsafeBytes { raw in address.withSockaddr { sendto(peer, raw.baseAddress, raw.count, 0, $0, $1) } }
        }
        var seen: [UInt8] = []
        var flushes = 0
        let (captured, end) = connection.receive(limit: 3) { header, frame in
            XCTAssertEqual(header.originalLength, 60)
            seen.append(frame[20])
        } flush: {
            flushes += 1
            return true
        }
        XCTAssertEqual(captured, 3)
        XCTAssertEqual(end, .count)
        XCTAssertEqual(seen, [0, 2, 4], "the 0x88b5 frames, in order")
        XCTAssertGreaterThanOrEqual(flushes, 1)
        XCTAssertEqual(try connection.stats(), CaptureStats(captured: 3, lost: 0))
        connection.close()
        var waited = 0
        while dataplane.status().first?.captures != nil && waited < 100 {
            usleep(10_000)
            waited += 1
        }
        XCTAssertNil(dataplane.status().first?.captures, "closing the connection ended the capture")
    }
}
