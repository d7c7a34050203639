// Segmentation of TCP and UDP super-frames, each cut checked here and by scapy (check_segments.py).
import XCTest
@testable import Proto

final class SegmentationTests: XCTestCase {
    static let segmentSizes = [536, 1448, 1460, 8948]
    static let mtus = [1500, 9000, 65520]

    /// Segments `frame` and checks the cut on the Swift side: segment count and sizes, frame
    /// lengths within the MTU, the payload reassembling, checksums (with the test's reference
    /// sum). Returns the case for scapy, or nil when the plan failed.
    func cut(_ name: String, _ frame: SuperFrame, gsoSize: Int, mtu: Int, hdrLen: Int? = nil,
             file: StaticString = #filePath, line: UInt = #line) -> ScapyCase? {
        let bytes = frame.bytes
        guard let (plan, segments) = segmentAll(bytes, header: frame.header(gsoSize: gsoSize, hdrLen: hdrLen), mtu: mtu,
                                                file: file, line: line) else { return nil }
        let maximumIP = frame.ipv6 ? 65535 + 40 : 65535
        let size = frame.udp ? gsoSize : min(gsoSize, min(mtu, maximumIP) - frame.ipHeaders)
        let expectedCount = max(1, (frame.payload.count + size - 1) / size)
        XCTAssertEqual(plan, SegmentationPlan(l3Offset: frame.l3Offset, l4Offset: frame.l4Offset,
                                              headerLength: frame.headerLength, segmentPayload: size,
                                              count: expectedCount, isIPv6: frame.ipv6, isUDP: frame.udp),
                       name, file: file, line: line)
        var reassembled: [UInt8] = []
        for (index, segment) in segments.enumerated() {
            XCTAssertLessThanOrEqual(segment.count, mtu + frame.l3Offset, "\(name) segment \(index)", file: file, line: line)
            XCTAssertEqual(Array(segment[..<frame.l3Offset]), Array(bytes[..<frame.l3Offset]), file: file, line: line)
            reassembled += segment[frame.headerLength...]
            if !frame.ipv6 {
                let ipSum = withSlice(segment, frame.l3Offset..<frame.l4Offset) { referenceSum($0) }
                XCTAssertEqual(ipSum, 0xFFFF, "\(name) segment \(index) IPv4 header checksum", file: file, line: line)
            }
            let sum = referenceL4Sum(segment, l3: frame.l3Offset, l4: frame.l4Offset, end: segment.count,
                                     ipv6: frame.ipv6, udp: frame.udp)
            XCTAssertEqual(sum, 0xFFFF, "\(name) segment \(index) L4 checksum", file: file, line: line)
        }
        XCTAssertEqual(reassembled, frame.payload, "\(name) payload", file: file, line: line)
        return ScapyCase(name: name, mtu: mtu, segment_payload: size, segments: expectedCount,
                         seq0: frame.sequenceNumber, flags: frame.flags.rawValue, ip_id0: frame.identification,
                         frames: segments, expectedPayload: frame.payload)
    }

    /// Payload sizes for an effective segment size `size`: exactly one segment, two with a short
    /// tail, and the largest the IP length field allows (~64 KiB).
    func payloadSizes(_ frame: SuperFrame, size: Int) -> [(String, Int)] {
        [("one", size), ("two", size + 100), ("max", 65535 - (frame.ipHeaders - (frame.ipv6 ? 40 : 0)))]
    }

    /// The full matrix of gso sizes × MTUs × payload sizes for one kind of TCP frame.
    func tcpMatrix(_ name: String, _ template: SuperFrame, gsoSizes: [Int] = segmentSizes, mtus: [Int] = mtus) -> [ScapyCase] {
        var cases: [ScapyCase] = []
        var seed: UInt64 = 1
        for gso in gsoSizes {
            for mtu in mtus {
                let size = min(gso, mtu - template.ipHeaders)
                for (label, count) in payloadSizes(template, size: size) {
                    var frame = template
                    seed += 1
                    frame.payload = SuperFrame.payload(count, seed: seed)
                    frame.partialChecksum = seed % 2 == 0
                    if let c = cut("\(name) gso \(gso) mtu \(mtu) \(label)", frame, gsoSize: gso, mtu: mtu) { cases.append(c) }
                }
            }
        }
        return cases
    }

    func testTCPv4() throws {
        let cases = tcpMatrix("tcp4", SuperFrame())
        XCTAssertEqual(cases.count, 36)
        try ScapyChecker.check(cases)
    }

    func testTCPv6() throws {
        var frame = SuperFrame(ipv6: true)
        frame.flags = [.ack, .psh, .fin]
        let cases = tcpMatrix("tcp6", frame)
        XCTAssertEqual(cases.count, 36)
        try ScapyChecker.check(cases)
    }

    func testTCPv6WithExtensionHeaders() throws {
        var cases = tcpMatrix("tcp6 hop-by-hop", SuperFrame(ipv6: true, extensions: [0]),
                              gsoSizes: [1448, 8948], mtus: [1500, 9000])
        cases += tcpMatrix("tcp6 destination options", SuperFrame(ipv6: true, extensions: [60]),
                           gsoSizes: [536, 1460], mtus: [1500, 65520])
        cases += tcpMatrix("tcp6 hop-by-hop + destination options", SuperFrame(ipv6: true, extensions: [0, 60]),
                           gsoSizes: [1448], mtus: [1500])
        // A routing header with no segments left: the destination is already the final one.
        cases += tcpMatrix("tcp6 routing, segments left 0", SuperFrame(ipv6: true, extensions: [43]),
                           gsoSizes: [1448], mtus: [1500])
        try ScapyChecker.check(cases)
    }

    func testTCPFlagsAndVLAN() throws {
        var frame = SuperFrame(vlanID: 42)
        frame.flags = [.ack, .psh, .fin, .cwr, .ece]
        var cases = tcpMatrix("tcp4 vlan fin|psh|cwr", frame)
        frame.ipv6 = true
        frame.extensions = [60]
        cases += tcpMatrix("tcp6 vlan fin|psh|cwr", frame, gsoSizes: [1448], mtus: [1500, 9000])
        // No options: a 20-byte TCP header.
        var bare = SuperFrame()
        bare.tcpOptions = []
        bare.flags = [.ack, .urg, .fin]
        cases += tcpMatrix("tcp4 no options urg|fin", bare, gsoSizes: [1460], mtus: [1500])
        try ScapyChecker.check(cases)
    }

    /// gso_size above what the MTU allows is cut down; hdr_len is a hint that is recomputed.
    func testTCPCutBelowGSOSizeAndHdrLenIgnored() throws {
        var frame = SuperFrame()
        frame.payload = SuperFrame.payload(20000, seed: 99)
        var cases: [ScapyCase] = []
        if let c = cut("tcp4 gso 8948 mtu 1500", frame, gsoSize: 8948, mtu: 1500) {
            XCTAssertEqual(c.segment_payload, 1500 - 52)
            cases.append(c)
        }
        if let c = cut("tcp4 hdr_len 0", frame, gsoSize: 1448, mtu: 1500, hdrLen: 0) { cases.append(c) }
        if let c = cut("tcp4 hdr_len 54 (too short)", frame, gsoSize: 1448, mtu: 1500, hdrLen: 54) { cases.append(c) }
        if let c = cut("tcp4 mtu 576", frame, gsoSize: 1448, mtu: 576) { cases.append(c) }
        try ScapyChecker.check(cases)
    }

    /// IPv6 packets longer than Payload Length can say carry 0 there (Linux BIG TCP).
    func testTCPv6BigWithZeroPayloadLength() throws {
        var frame = SuperFrame(ipv6: true)
        frame.zeroIPLength = true
        frame.payload = SuperFrame.payload(100_000, seed: 7)
        var cases: [ScapyCase] = []
        if let c = cut("tcp6 big", frame, gsoSize: 8948, mtu: 9000) { cases.append(c) }
        var v4 = SuperFrame()
        v4.zeroIPLength = true
        v4.payload = SuperFrame.payload(70_000, seed: 8)
        if let c = cut("tcp4 big", v4, gsoSize: 1448, mtu: 1500) { cases.append(c) }
        try ScapyChecker.check(cases)
    }

    func testUDP() throws {
        var cases: [ScapyCase] = []
        var seed: UInt64 = 1000
        let templates = [("udp4", SuperFrame(udp: true)), ("udp6", SuperFrame(ipv6: true, udp: true)),
                         ("udp6 destination options", SuperFrame(ipv6: true, extensions: [60], udp: true)),
                         ("udp4 vlan", SuperFrame(vlanID: 7, udp: true))]
        for (name, template) in templates {
            for gso in [536, 1448, 1472, 8948] {
                for mtu in Self.mtus {
                    for (label, count) in payloadSizes(template, size: gso) {
                        var frame = template
                        seed += 1
                        frame.payload = SuperFrame.payload(count, seed: seed)
                        frame.partialChecksum = seed % 2 == 0
                        if gso + template.ipHeaders > mtu {
                            let result = frame.bytes.withUnsafeBytes {
                                Segmentation.plan(frame: $0, header: frame.header(gsoSize: gso), mtu: mtu)
                            }
                            XCTAssertEqual(result, .failure(.tooBig), "\(name) gso \(gso) mtu \(mtu)")
                        } else if let c = cut("\(name) gso \(gso) mtu \(mtu) \(label)", frame, gsoSize: gso, mtu: mtu) {
                            cases.append(c)
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(cases.count, 100)
        try ScapyChecker.check(cases)
    }

    /// A UDP datagram that fits in one segment is sent whole even if gso_size would not fit.
    func testUDPSingleDatagramUnderMTU() throws {
        var frame = SuperFrame(udp: true)
        frame.payload = SuperFrame.payload(1000, seed: 5)
        guard let c = cut("udp4 one short datagram", frame, gsoSize: 1472, mtu: 1100) else { return }
        XCTAssertEqual(c.segments, 1)
        XCTAssertEqual(c.frames.first?.count, frame.bytes.count)
    }

    /// A super-frame without payload (a pure ACK flagged as GSO) becomes one complete frame.
    func testEmptyPayloadIsOneFrame() throws {
        var frame = SuperFrame()
        frame.flags = [.ack, .fin]
        guard let c = cut("tcp4 empty", frame, gsoSize: 1448, mtu: 1500) else { return }
        XCTAssertEqual(c.segments, 1)
        try ScapyChecker.check([c])
    }
}
