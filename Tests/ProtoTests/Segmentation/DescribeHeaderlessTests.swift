// describeHeaderless: the virtio-net header for frames from header-less offload peers (krunkit
// offloading=on), checked by completing the checksum and by scapy.
import XCTest
@testable import Proto

final class DescribeHeaderlessTests: XCTestCase {
    func describe(_ bytes: inout [UInt8], mtu: Int = 1500) -> VirtioNetHeader? {
        bytes.withUnsafeMutableBytes { Segmentation.describeHeaderless(frame: $0, mtu: mtu) }
    }

    func frame(_ payload: Int, seed: UInt64 = 21, _ configure: (inout SuperFrame) -> Void = { _ in }) -> SuperFrame {
        var f = SuperFrame()
        f.partialChecksum = false   // a complete or garbage checksum: recomputed from scratch
        f.payload = SuperFrame.payload(payload, seed: seed)
        configure(&f)
        return f
    }

    /// Describes `f`, checks the header and the pseudo-header sum left in the checksum field,
    /// completes the checksum as the egress would and checks it; returns the completed frame.
    func describeAndComplete(_ name: String, _ f: SuperFrame, mtu: Int = 1500, expectGSO: Bool,
                             file: StaticString = #filePath, line: UInt = #line) -> ([UInt8], VirtioNetHeader)? {
        var bytes = f.bytes
        guard let header = describe(&bytes, mtu: mtu) else { XCTFail("\(name): nil", file: file, line: line); return nil }
        XCTAssertEqual(header.flags, VirtioNetHeader.needsChecksum, name, file: file, line: line)
        XCTAssertEqual(Int(header.checksumStart), f.l4Offset, name, file: file, line: line)
        XCTAssertEqual(header.checksumOffset, f.udp ? 6 : 16, name, file: file, line: line)
        // The field holds the pseudo-header sum: the reference sum of the pseudo-header alone
        // (the L4 bytes replaced by zeros).
        var zeroed = bytes
        let field = f.l4Offset + (f.udp ? 6 : 16)
        let stored = UInt16(bytes[field]) << 8 | UInt16(bytes[field + 1])
        zeroed[field] = 0; zeroed[field + 1] = 0
        let pseudoOnly = referenceL4Sum(Array(zeroed[..<f.l4Offset]) + [UInt8](repeating: 0, count: bytes.count - f.l4Offset),
                                        l3: f.l3Offset, l4: f.l4Offset, end: bytes.count, ipv6: f.ipv6, udp: f.udp)
        XCTAssertEqual(stored, pseudoOnly, "\(name): pseudo-header sum", file: file, line: line)
        if expectGSO {
            let type = f.ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4
            XCTAssertEqual(header.gsoType, type | (f.flags.contains(.cwr) ? VirtioNetHeader.gsoECN : 0), name, file: file, line: line)
            XCTAssertEqual(Int(header.headerLength), f.headerLength, name, file: file, line: line)
            XCTAssertEqual(Int(header.gsoSize), mtu - f.ipHeaders, name, file: file, line: line)
        } else {
            XCTAssertEqual(header.gsoType, VirtioNetHeader.gsoNone, name, file: file, line: line)
            XCTAssertEqual(header.gsoSize, 0, name, file: file, line: line)
        }
        var completed = bytes
        XCTAssertTrue(completed.withUnsafeMutableBytes { header.completeChecksum(in: $0) }, file: file, line: line)
        let end = f.l3Offset + (f.ipv6 ? 40 + Int(f.bytes[f.l3Offset + 4]) << 8 + Int(f.bytes[f.l3Offset + 5])
                                       : Int(f.bytes[f.l3Offset + 2]) << 8 + Int(f.bytes[f.l3Offset + 3]))
        XCTAssertEqual(referenceL4Sum(completed, l3: f.l3Offset, l4: f.l4Offset, end: end, ipv6: f.ipv6, udp: f.udp), 0xFFFF,
                       "\(name): completed checksum", file: file, line: line)
        return (completed, header)
    }

    func testSmallFramesGetNeedsChecksum() throws {
        var frames: [[UInt8]] = []
        let cases: [(String, SuperFrame)] = [
            ("tcp4", frame(100)),
            ("tcp4 exactly the MTU", frame(1500 - 52)),
            ("tcp4 vlan exactly the MTU", frame(1500 - 52) { $0.vlanID = 9 }),
            ("tcp6 hop-by-hop", frame(700) { $0.ipv6 = true; $0.extensions = [0] }),
            ("udp4", frame(1) { $0.udp = true }),
            ("udp4 larger than the MTU", frame(4000) { $0.udp = true }),
            ("udp6 destination options", frame(1200) { $0.udp = true; $0.ipv6 = true; $0.extensions = [60] }),
            ("udp6 larger than the MTU", frame(30000) { $0.udp = true; $0.ipv6 = true }),
            ("tcp6 no payload", frame(0) { $0.ipv6 = true }),
        ]
        for (name, f) in cases {
            if let (completed, _) = describeAndComplete(name, f, expectGSO: false) { frames.append(completed) }
        }
        try ScapyChecker.check([ScapyCase(name: "describeHeaderless, completed", kind: "frames", frames: frames)])
    }

    func testLargeTCPFramesGetTSO() throws {
        var cases: [ScapyCase] = []
        let frames: [(String, SuperFrame, Int)] = [
            ("tcp4 64 KiB", frame(65000), 1500),
            ("tcp4 vlan one byte over the MTU", frame(1500 - 52 + 1) { $0.vlanID = 9 }, 1500),
            ("tcp6 hop-by-hop cwr", frame(60000) { $0.ipv6 = true; $0.extensions = [0]; $0.flags = [.ack, .cwr, .psh] }, 9000),
            ("tcp6 65550-byte frame", frame(65550 - 14 - 40 - 32) { $0.ipv6 = true }, 1500),
        ]
        for (name, f, mtu) in frames {
            guard let (_, header) = describeAndComplete(name, f, mtu: mtu, expectGSO: true) else { continue }
            // The frame as described (pseudo-header sum in place) is cut by plan/emitSegment.
            var described = f.bytes
            _ = describe(&described, mtu: mtu)
            guard let (plan, segments) = segmentAll(described, header: header, mtu: mtu) else { continue }
            XCTAssertEqual(plan.segmentPayload, mtu - f.ipHeaders)
            cases.append(ScapyCase(name: "\(name) mtu \(mtu)", mtu: mtu, segment_payload: plan.segmentPayload,
                                   segments: plan.count, seq0: f.sequenceNumber, flags: f.flags.rawValue,
                                   ip_id0: f.identification, frames: segments, expectedPayload: f.payload))
        }
        XCTAssertEqual(cases.count, 4)
        try ScapyChecker.check(cases)
    }

    /// A minimum-size frame's Ethernet padding is zeroed so that completing over the whole frame is right.
    func testPaddingOfAMinimumFrameIsZeroed() throws {
        let f = frame(2) { $0.udp = true }            // 14 + 20 + 8 + 2 = 44 bytes
        var bytes = f.bytes + [UInt8](repeating: 0xFF, count: 16)
        guard let header = describe(&bytes) else { return XCTFail() }
        XCTAssertEqual(header.checksumStart, 34)
        XCTAssertEqual(Array(bytes[44...]), [UInt8](repeating: 0, count: 16))
        XCTAssertTrue(bytes.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        XCTAssertEqual(referenceL4Sum(bytes, l3: 14, l4: 34, end: 44, ipv6: false, udp: true), 0xFFFF)
        try ScapyChecker.check([ScapyCase(name: "padded udp4", kind: "frames", frames: [bytes])])
        // Trailing bytes on a longer frame are an inconsistency.
        var long = frame(100).bytes + [0, 0, 0, 0]
        XCTAssertNil(describe(&long))
    }

    func testOtherFramesAreLeftAlone() {
        var cases: [(String, [UInt8])] = []
        let tcp = frame(100).bytes
        var arp = tcp; arp[12] = 0x08; arp[13] = 0x06
        cases.append(("ARP", arp))
        var lldp = tcp; lldp[12] = 0x88; lldp[13] = 0xCC
        cases.append(("LLDP", lldp))
        var icmp = tcp; icmp[14 + 9] = 1
        cases.append(("ICMP", icmp))
        var fragment = tcp; fragment[20] = 0x20               // MF
        cases.append(("IPv4 fragment", fragment))
        var later = tcp; later[21] = 0x10                      // fragment offset
        cases.append(("IPv4 later fragment", later))
        let icmp6 = frame(100) { $0.ipv6 = true }
        var echo = icmp6.bytes; echo[20] = 58
        cases.append(("ICMPv6", echo))
        var fragment6 = frame(100) { $0.ipv6 = true; $0.extensions = [60] }.bytes; fragment6[20] = 44
        cases.append(("IPv6 fragment header", fragment6))
        cases.append(("IPv6 routing with segments left", frame(100) { $0.ipv6 = true; $0.extensions = [43]; $0.segmentsLeft = 2 }.bytes))
        var ah = frame(100) { $0.ipv6 = true; $0.extensions = [60] }.bytes; ah[20] = 51
        cases.append(("IPv6 AH", ah))
        for (name, original) in cases {
            var bytes = original
            XCTAssertEqual(describe(&bytes), VirtioNetHeader.none, name)
            XCTAssertEqual(bytes, original, "\(name): unchanged")
        }
    }

    func testInconsistentFramesAreNil() {
        let tcp = frame(100).bytes
        func patched(_ b: [UInt8], _ offset: Int, _ value: UInt16) -> [UInt8] {
            var c = b; c[offset] = UInt8(value >> 8); c[offset + 1] = UInt8(value & 0xFF); return c
        }
        var cases: [(String, [UInt8])] = [
            ("empty", []), ("13 bytes", Array(tcp[..<13])), ("IPv4 truncated", Array(tcp[..<30])),
            ("total length > frame", patched(tcp, 16, UInt16(tcp.count - 14 + 1))),
            ("total length < IHL", patched(tcp, 16, 12)),
            ("TCP header truncated", patched(Array(tcp[..<50]), 16, 36)),
        ]
        var ihl = tcp; ihl[14] = 0x43
        cases.append(("IHL 3", ihl))
        var doff = tcp; doff[34 + 12] = 0x30
        cases.append(("data offset 3", doff))
        var doffLong = patched(Array(tcp[..<66]), 16, 52); doffLong[34 + 12] = 0xF0
        cases.append(("data offset past the end", doffLong))
        let udp = frame(100) { $0.udp = true }.bytes
        cases.append(("UDP length > datagram", patched(udp, 38, 109)))
        cases.append(("UDP length < datagram", patched(udp, 38, 107)))
        cases.append(("UDP header truncated", patched(Array(udp[..<40]), 16, 26)))
        let v6 = frame(100) { $0.ipv6 = true; $0.extensions = [0] }.bytes
        cases.append(("IPv6 payload length > frame", patched(v6, 18, UInt16(v6.count - 54 + 1))))
        cases.append(("IPv6 truncated", Array(v6[..<40])))
        var ext = v6; ext[55] = 100
        cases.append(("extension header past the end", ext))
        cases.append(("hop-by-hop not first", frame(100) { $0.ipv6 = true; $0.extensions = [60, 0] }.bytes))
        for (name, original) in cases {
            var bytes = original
            XCTAssertNil(describe(&bytes), name)
        }
        // A TCP frame to cut whose headers alone exceed the MTU.
        var big = frame(3000).bytes
        XCTAssertNil(describe(&big, mtu: 52))
    }
}
