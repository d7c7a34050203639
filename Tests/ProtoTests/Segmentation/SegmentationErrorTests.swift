// Every refusal of Segmentation.plan (.badHeader, .unsupported, .tooBig), emitSegment with plans
// that do not fit, and fuzzing: random, truncated and corrupted frames and headers never crash.
import XCTest
@testable import Proto

final class SegmentationErrorTests: XCTestCase {
    func plan(_ bytes: [UInt8], _ header: VirtioNetHeader, mtu: Int = 1500) -> Result<SegmentationPlan, SegmentationError> {
        bytes.withUnsafeBytes { Segmentation.plan(frame: $0, header: header, mtu: mtu) }
    }

    func frame(_ configure: (inout SuperFrame) -> Void = { _ in }) -> SuperFrame {
        var frame = SuperFrame()
        frame.payload = SuperFrame.payload(3000, seed: 3)
        configure(&frame)
        return frame
    }

    /// `bytes` with the big-endian 16-bit `value` at `offset`.
    func patched(_ bytes: [UInt8], _ offset: Int, be16 value: UInt16) -> [UInt8] {
        var b = bytes
        b[offset] = UInt8(value >> 8); b[offset + 1] = UInt8(value & 0xFF)
        return b
    }

    func testValidFramePlans() {
        let f = frame()
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448)),
                       .success(SegmentationPlan(l3Offset: 14, l4Offset: 34, headerLength: 66, segmentPayload: 1448,
                                                 count: 3, isIPv6: false, isUDP: false)))
        // Without NEEDS_CSUM, csum_start and csum_offset may be 0.
        var header = f.header(gsoSize: 1448)
        header.flags = 0; header.checksumStart = 0; header.checksumOffset = 0
        XCTAssertEqual(try plan(f.bytes, header).get().count, 3)
    }

    func testUnsupportedGSOTypes() {
        let f = frame()
        for type: UInt8 in [0, 2, 3, 6, 7, 0x80, 0x83, 0x41, 0xFF] {
            var header = f.header(gsoSize: 1448)
            header.gsoType = type
            XCTAssertEqual(plan(f.bytes, header), .failure(.unsupported), "gso type \(type)")
        }
        var udp = frame { $0.udp = true }
        XCTAssertEqual(plan(udp.bytes, VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoUDP, gsoSize: 1400,
                                                       checksumStart: 34, checksumOffset: 6)), .failure(.unsupported))
        // IPv6 whose pseudo-header destination is not the fixed header's, or with AH.
        udp = frame { $0.ipv6 = true; $0.extensions = [43]; $0.segmentsLeft = 1 }
        XCTAssertEqual(plan(udp.bytes, udp.header(gsoSize: 1448)), .failure(.unsupported))
        let ah = frame { $0.ipv6 = true; $0.extensions = [60] }
        var bytes = ah.bytes
        bytes[14 + 6] = 51   // Next Header: AH (its 8 bytes stand where the destination options were)
        XCTAssertEqual(plan(bytes, ah.header(gsoSize: 1448)), .failure(.unsupported))
    }

    func testBadVirtioFields() {
        let f = frame()
        var header = f.header(gsoSize: 0)
        XCTAssertEqual(plan(f.bytes, header), .failure(.badHeader), "gso_size 0")
        header = f.header(gsoSize: 1448, hdrLen: f.bytes.count + 1)
        XCTAssertEqual(plan(f.bytes, header), .failure(.badHeader), "hdr_len past the end")
        XCTAssertEqual(try plan(f.bytes, f.header(gsoSize: 1448, hdrLen: f.bytes.count)).get().count, 3, "hdr_len at the end")
        for (start, offset) in [(60000, 16), (34, 60000), (0xFFFF, 0xFFFF), (14, 16), (34, 6), (35, 16), (0, 16), (34, 0)] {
            header = f.header(gsoSize: 1448)
            header.checksumStart = UInt16(start); header.checksumOffset = UInt16(offset)
            XCTAssertEqual(plan(f.bytes, header), .failure(.badHeader), "csum_start \(start) csum_offset \(offset)")
        }
    }

    func testGSOTypeMustMatchIPVersionAndProtocol() {
        let v4 = frame(), v6 = frame { $0.ipv6 = true }
        let udp4 = frame { $0.udp = true }, udp6 = frame { $0.udp = true; $0.ipv6 = true }
        func withType(_ f: SuperFrame, _ type: UInt8) -> VirtioNetHeader {
            var header = f.header(gsoSize: 1000); header.gsoType = type; return header
        }
        XCTAssertEqual(plan(v6.bytes, withType(v6, VirtioNetHeader.gsoTCPv4)), .failure(.badHeader))
        XCTAssertEqual(plan(v4.bytes, withType(v4, VirtioNetHeader.gsoTCPv6)), .failure(.badHeader))
        XCTAssertEqual(plan(v4.bytes, withType(v4, VirtioNetHeader.gsoUDPL4)), .failure(.badHeader))
        XCTAssertEqual(plan(udp4.bytes, withType(udp4, VirtioNetHeader.gsoTCPv4)), .failure(.badHeader))
        XCTAssertEqual(plan(udp6.bytes, withType(udp6, VirtioNetHeader.gsoTCPv6)), .failure(.badHeader))
        // UDP_L4 takes either version; ECN is only a flag.
        XCTAssertNotNil(try? plan(udp4.bytes, withType(udp4, VirtioNetHeader.gsoUDPL4)).get())
        XCTAssertNotNil(try? plan(udp6.bytes, withType(udp6, VirtioNetHeader.gsoUDPL4)).get())
        XCTAssertNotNil(try? plan(v6.bytes, withType(v6, VirtioNetHeader.gsoTCPv6 | VirtioNetHeader.gsoECN)).get())
        // ICMP under a TCPv4 header.
        var icmp = v4.bytes
        icmp[14 + 9] = 1
        XCTAssertEqual(plan(icmp, v4.header(gsoSize: 1000)), .failure(.badHeader))
        // Not IP at all.
        XCTAssertEqual(plan(patched(v4.bytes, 12, be16: 0x0806), v4.header(gsoSize: 1000)), .failure(.badHeader))
    }

    func testBadIPv4Headers() {
        let f = frame()
        let b = f.bytes, header = f.header(gsoSize: 1448)
        var bad = b; bad[14] = 0x44                                // IHL 4
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "IHL 4")
        bad = b; bad[14] = 0x55                                    // version 5
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "version 5")
        bad = b; bad[14] = 0x46                                    // IHL 6: TCP would start 4 bytes later
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "IHL 6 against csum_start 34")
        bad = Array(b[..<44]); bad[14] = 0x4F                      // IHL 15 past the end
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "IHL past the end")
        let ipLength = b.count - 14
        XCTAssertEqual(plan(patched(b, 16, be16: UInt16(ipLength + 1)), header), .failure(.badHeader), "total length > frame")
        XCTAssertEqual(plan(patched(b, 16, be16: UInt16(ipLength - 1)), header), .failure(.badHeader), "total length < frame")
        XCTAssertEqual(plan(patched(b, 16, be16: 0), header), .failure(.badHeader), "total length 0 on a short packet")
        XCTAssertEqual(plan(patched(b, 16, be16: 19), header), .failure(.badHeader), "total length < IHL")
        XCTAssertEqual(plan(patched(b, 20, be16: 0x2000), header), .failure(.badHeader), "MF")
        XCTAssertEqual(plan(patched(b, 20, be16: 0x0010), header), .failure(.badHeader), "fragment offset")
        XCTAssertEqual(plan(Array(b[..<33]), header), .failure(.badHeader), "IPv4 header truncated")
    }

    func testBadIPv6Headers() {
        let f = frame { $0.ipv6 = true; $0.extensions = [0] }
        let b = f.bytes, header = f.header(gsoSize: 1448)
        XCTAssertNotNil(try? plan(b, header).get())
        let payloadLength = b.count - 14 - 40
        XCTAssertEqual(plan(patched(b, 18, be16: UInt16(payloadLength + 1)), header), .failure(.badHeader), "payload length > frame")
        XCTAssertEqual(plan(patched(b, 18, be16: UInt16(payloadLength - 1)), header), .failure(.badHeader), "payload length < frame")
        XCTAssertEqual(plan(patched(b, 18, be16: 0), header), .failure(.badHeader), "payload length 0 on a short packet")
        var bad = b; bad[14] = 0x40
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "version 4 under 0x86dd")
        bad = b; bad[54 + 1] = 200                                  // Hdr Ext Len past the end
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "extension header past the end")
        XCTAssertEqual(plan(Array(b[..<60]), header), .failure(.badHeader), "extension header truncated")
        XCTAssertEqual(plan(Array(b[..<50]), header), .failure(.badHeader), "fixed header truncated")
        // Hop-by-hop that is not first.
        let two = frame { $0.ipv6 = true; $0.extensions = [60, 0] }
        XCTAssertEqual(plan(two.bytes, two.header(gsoSize: 1448)), .failure(.badHeader))
        // A Fragment header (44) where the options were.
        bad = b; bad[14 + 6] = 44
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "fragment")
    }

    func testBadTransportHeaders() {
        let f = frame()
        let b = f.bytes, header = f.header(gsoSize: 1448)
        var bad = b; bad[34 + 12] = 0x40                            // data offset 4
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "data offset 4")
        let tiny = frame { $0.payload = [] }
        bad = tiny.bytes; bad[34 + 12] = 0xF0                       // data offset 15 past the end
        XCTAssertEqual(plan(bad, tiny.header(gsoSize: 1448)), .failure(.badHeader), "data offset past the end")
        // TCP header cut short, IP length adjusted to match.
        bad = patched(Array(b[..<50]), 16, be16: 36)
        XCTAssertEqual(plan(bad, header), .failure(.badHeader), "TCP header truncated")
        let udp = frame { $0.udp = true; $0.payload = [] }
        bad = patched(Array(udp.bytes[..<40]), 16, be16: 26)
        XCTAssertEqual(plan(bad, udp.header(gsoSize: 1000)), .failure(.badHeader), "UDP header truncated")
        for length in [0, 1, 13, 14] {
            XCTAssertEqual(plan(Array(b[..<length]), header), .failure(.badHeader), "frame of \(length) bytes")
        }
    }

    func testTooBig() {
        let f = frame()
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448), mtu: 52), .failure(.tooBig), "headers fill the MTU")
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448), mtu: 40), .failure(.tooBig), "headers exceed the MTU")
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448), mtu: 0), .failure(.tooBig))
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448), mtu: -1), .failure(.tooBig))
        XCTAssertEqual(plan(f.bytes, f.header(gsoSize: 1448), mtu: Int.min), .failure(.tooBig))
        XCTAssertEqual(try plan(f.bytes, f.header(gsoSize: 1448), mtu: 53).get().segmentPayload, 1, "one byte per segment")
        XCTAssertEqual(try plan(f.bytes, f.header(gsoSize: 1448), mtu: Int.max).get().segmentPayload, 1448)
        let udp4 = frame { $0.udp = true }
        XCTAssertEqual(plan(udp4.bytes, udp4.header(gsoSize: 1473)), .failure(.tooBig), "UDP is never cut smaller")
        XCTAssertEqual(try plan(udp4.bytes, udp4.header(gsoSize: 1472)).get().count, 3)
        let udp6 = frame { $0.udp = true; $0.ipv6 = true }
        XCTAssertEqual(plan(udp6.bytes, udp6.header(gsoSize: 1453)), .failure(.tooBig))
        XCTAssertEqual(try plan(udp6.bytes, udp6.header(gsoSize: 1452)).get().count, 3)
    }

    func testEmitSegmentRejectsPlansThatDoNotFit() {
        let f = frame()
        let b = f.bytes
        guard case .success(let good) = plan(b, f.header(gsoSize: 1448)) else { return XCTFail() }
        var plans: [(SegmentationPlan, Int)] = [(good, -1), (good, 3), (good, Int.max), (good, Int.min)]
        var p = good; p.headerLength = b.count + 1; plans.append((p, 0))
        p = good; p.headerLength = Int.min; plans.append((p, 0))
        p = good; p.l4Offset = Int.max; plans.append((p, 0))
        p = good; p.l4Offset = Int.min; plans.append((p, 0))
        p = good; p.l3Offset = Int.min; plans.append((p, 0))
        p = good; p.l3Offset = 30; plans.append((p, 0))
        p = good; p.isIPv6 = true; plans.append((p, 0))
        p = good; p.segmentPayload = 0; plans.append((p, 0))
        p = good; p.segmentPayload = -5; plans.append((p, 0))
        p = good; p.segmentPayload = 10; p.count = 1000; plans.append((p, 999))
        var out = [UInt8](repeating: 0xA5, count: 70000)
        for (bad, index) in plans {
            let written = b.withUnsafeBytes { input in
                out.withUnsafeMutableBytes { Segmentation.emitSegment(index, of: input, plan: bad, into: $0.baseAddress!) }
            }
            XCTAssertEqual(written, 0, "\(bad) index \(index)")
        }
        XCTAssertTrue(out.allSatisfy { $0 == 0xA5 })
        XCTAssertEqual(Segmentation.emitSegment(0, of: UnsafeRawBufferPointer(start: nil, count: 0), plan: good,
                                                into: out.withUnsafeMutableBytes { $0.baseAddress! }), 0)
    }

    // MARK: fuzz

    /// Plans `bytes` under `header` and, when that succeeds, emits every segment into a buffer of
    /// exactly its length plus a guard band that must stay untouched.
    func exercise(_ bytes: [UInt8], _ header: VirtioNetHeader, mtu: Int) {
        guard case .success(let plan) = plan(bytes, header, mtu: mtu) else { return }
        XCTAssertGreaterThanOrEqual(plan.count, 1)
        var total = 0
        for index in 0..<plan.count {
            let length = plan.segmentLength(index, frameLength: bytes.count)
            XCTAssertLessThanOrEqual(length - plan.l3Offset, max(mtu, plan.headerLength - plan.l3Offset))
            var out = [UInt8](repeating: 0xA5, count: length + 16)
            let written = bytes.withUnsafeBytes { input in
                out.withUnsafeMutableBytes { Segmentation.emitSegment(index, of: input, plan: plan, into: $0.baseAddress!) }
            }
            XCTAssertEqual(written, length)
            XCTAssertTrue(out[length...].allSatisfy { $0 == 0xA5 }, "wrote past segment \(index)")
            total += length - plan.headerLength
        }
        XCTAssertEqual(total, bytes.count - plan.headerLength)
    }

    /// describeHeaderless on a copy: a NEEDS_CSUM answer must complete, a GSO answer must plan.
    func describe(_ bytes: [UInt8], mtu: Int) {
        var copy = bytes
        guard let header = copy.withUnsafeMutableBytes({ Segmentation.describeHeaderless(frame: $0, mtu: mtu) }) else { return }
        if header == .none { XCTAssertEqual(copy, bytes, "a .none frame is left unchanged"); return }
        XCTAssertTrue(copy.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        if header.isGSO {
            var again = bytes
            _ = again.withUnsafeMutableBytes { Segmentation.describeHeaderless(frame: $0, mtu: mtu) }
            guard case .success = plan(again, header, mtu: mtu) else { return XCTFail("describeHeaderless gave \(header) that plan refuses") }
            exercise(again, header, mtu: mtu)
        }
    }

    static let templates: [SuperFrame] = {
        var list: [SuperFrame] = []
        for (ipv6, extensions, udp, vlan) in [(false, [UInt8](), false, false), (true, [], false, false),
                                              (true, [0, 60], false, true), (false, [], true, true),
                                              (true, [60], true, false), (true, [43], false, false)] {
            var f = SuperFrame(vlanID: vlan ? 5 : nil, ipv6: ipv6, extensions: extensions, udp: udp)
            f.flags = [.ack, .psh, .fin, .cwr]
            f.payload = SuperFrame.payload(2500, seed: 11)
            list.append(f)
        }
        return list
    }()

    func testFuzzTruncatedFrames() {
        for f in Self.templates {
            let bytes = f.bytes
            for length in 0...bytes.count {
                let cut = Array(bytes[..<length])
                exercise(cut, f.header(gsoSize: 1000), mtu: 1500)
                exercise(cut, f.header(gsoSize: 1000, hdrLen: 0), mtu: 576)
                describe(cut, mtu: 1500)
            }
        }
    }

    func testFuzzCorruptedFramesAndHeaders() {
        var rng = SplitMix64(seed: 0x5E6_0001)
        let types: [UInt8] = [1, 4, 5, 0x81, 0x84, 3, 0, 0xFF]
        for iteration in 0..<20000 {
            let f = Self.templates[iteration % Self.templates.count]
            var bytes = f.bytes
            if iteration % 3 != 0 { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng) / 8) }
            // Flip a few bytes, mostly in the headers.
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let limit = min(bytes.count, rng.next() % 4 == 0 ? bytes.count : f.headerLength + 8)
                if limit > 0 { bytes[Int.random(in: 0..<limit, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            }
            var header = f.header(gsoSize: [1, 536, 1448, 8948, 65535][Int.random(in: 0..<5, using: &rng)])
            switch iteration % 4 {
            case 0: break
            case 1: header.gsoType = types[Int.random(in: 0..<types.count, using: &rng)]
            case 2:
                header.checksumStart = UInt16.random(in: 0...UInt16.max, using: &rng)
                header.checksumOffset = UInt16.random(in: 0...64, using: &rng)
            default:
                header.headerLength = UInt16.random(in: 0...UInt16.max, using: &rng)
                header.gsoSize = UInt16.random(in: 0...UInt16.max, using: &rng)
            }
            let mtu = [68, 576, 1280, 1500, 9000, 65520, 100_000][Int.random(in: 0..<7, using: &rng)]
            exercise(bytes, header, mtu: mtu)
            describe(bytes, mtu: mtu)
        }
    }

    func testFuzzRandomFrames() {
        var rng = SplitMix64(seed: 0x5E6_0002)
        for iteration in 0..<20000 {
            let length = Int.random(in: 0...300, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Half the time, make it look like IP so the walk goes deeper.
            if length >= 34 && iteration % 2 == 0 {
                bytes[12] = 0x08; bytes[13] = 0x00; bytes[14] = 0x45
                if iteration % 4 == 0 { bytes[12] = 0x86; bytes[13] = 0xDD; bytes[14] = 0x60 }
            }
            let header = VirtioNetHeader(flags: UInt8.random(in: 0...3, using: &rng),
                                         gsoType: [1, 4, 5][Int.random(in: 0..<3, using: &rng)],
                                         headerLength: UInt16.random(in: 0...400, using: &rng),
                                         gsoSize: UInt16.random(in: 0...2000, using: &rng),
                                         checksumStart: UInt16.random(in: 0...100, using: &rng),
                                         checksumOffset: [0, 6, 16][Int.random(in: 0..<3, using: &rng)])
            exercise(bytes, header, mtu: Int.random(in: -10...2000, using: &rng))
            describe(bytes, mtu: Int.random(in: -10...2000, using: &rng))
        }
    }
}
