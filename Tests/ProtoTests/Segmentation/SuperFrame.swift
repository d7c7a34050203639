// Test scaffolding for segmentation: building GSO super-frames byte by byte and cutting them.
import XCTest
@testable import Proto

/// A GSO super-frame written field by field (not with Proto's emitters, so the tests do not
/// share their bugs): Ethernet with an optional 802.1Q tag, IPv4 or IPv6 with optional
/// hop-by-hop / destination options headers, TCP (with a timestamps option) or UDP, payload.
struct SuperFrame {
    var vlanID: UInt16? = nil
    var ipv6 = false
    /// IPv6 extension headers before the L4 header, as Next Header codes (0 hop-by-hop, 60
    /// destination options, 43 routing); each is 8 bytes of padding (routing: type 0, segments left
    /// `segmentsLeft`).
    var extensions: [UInt8] = []
    var segmentsLeft: UInt8 = 0
    var udp = false
    var flags: TCPFlags = [.ack, .psh]
    var sequenceNumber: UInt32 = 0xFFFF_F000
    var identification: UInt16 = 0xFFF0
    /// TCP options (a multiple of 4 bytes): NOP NOP Timestamps by default.
    var tcpOptions: [UInt8] = [1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
    var payload: [UInt8] = []
    /// Write the pseudo-header sum into the L4 checksum field (as a NEEDS_CSUM sender does);
    /// otherwise garbage (0xdead).
    var partialChecksum = true
    /// Write 0 into the IP length field instead of the real length (BIG TCP style).
    var zeroIPLength = false

    var l3Offset: Int { vlanID == nil ? 14 : 18 }
    var ipHeaderLength: Int { ipv6 ? 40 + 8 * extensions.count : 20 }
    var l4Offset: Int { l3Offset + ipHeaderLength }
    var l4HeaderLength: Int { udp ? 8 : 20 + tcpOptions.count }
    var headerLength: Int { l4Offset + l4HeaderLength }
    /// IP and L4 headers: what an MTU must hold besides the payload.
    var ipHeaders: Int { headerLength - l3Offset }

    /// Deterministic pseudo-random payload bytes.
    static func payload(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    var bytes: [UInt8] {
        var b: [UInt8] = []
        func be16(_ v: UInt16) { b += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func be32(_ v: UInt32) { be16(UInt16(v >> 16)); be16(UInt16(v & 0xFFFF)) }
        b += [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 0x01]
        if let vlanID { be16(0x8100); be16(0x2000 | vlanID) }
        be16(ipv6 ? 0x86DD : 0x0800)
        let l4Length = l4HeaderLength + payload.count
        let proto: UInt8 = udp ? 17 : 6
        let src4: [UInt8] = [192, 168, 107, 1], dst4: [UInt8] = [192, 168, 107, 23]
        let src6: [UInt8] = [0xFD, 0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0, 0, 0, 0, 0, 0, 0, 1]
        let dst6: [UInt8] = [0xFD, 0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x50, 0x54, 0, 0xFF, 0xFE, 0x12, 0x34, 0x56]
        var pseudo: [UInt8] = []
        if ipv6 {
            b += [0x60, 0x01, 0x23, 0x45]
            let payloadLength = ipHeaderLength - 40 + l4Length
            be16(zeroIPLength ? 0 : UInt16(payloadLength))
            b.append(extensions.first ?? proto)
            b.append(64)
            b += src6 + dst6
            for (i, kind) in extensions.enumerated() {
                let next = i + 1 < extensions.count ? extensions[i + 1] : proto
                if kind == 43 {
                    b += [next, 0, 0, segmentsLeft, 0, 0, 0, 0]
                } else {
                    b += [next, 0, 1, 4, 0, 0, 0, 0]   // PadN of 4 bytes
                }
            }
            pseudo = src6 + dst6 + [UInt8(l4Length >> 24 & 0xFF), UInt8(l4Length >> 16 & 0xFF),
                                    UInt8(l4Length >> 8 & 0xFF), UInt8(l4Length & 0xFF), 0, 0, 0, proto]
        } else {
            let ipStart = b.count
            b += [0x45, 0x00]
            be16(zeroIPLength ? 0 : UInt16(20 + l4Length))
            be16(identification)
            be16(0x4000)   // DF
            b += [64, proto, 0, 0]
            b += src4 + dst4
            var sum: UInt32 = 0
            for i in stride(from: ipStart, to: ipStart + 20, by: 2) { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            b[ipStart + 10] = UInt8(~sum >> 8 & 0xFF); b[ipStart + 11] = UInt8(~sum & 0xFF)
            pseudo = src4 + dst4 + [0, proto, UInt8(l4Length >> 8 & 0xFF), UInt8(l4Length & 0xFF)]
        }
        var sum: UInt32 = 0
        for i in stride(from: 0, to: pseudo.count, by: 2) { sum += UInt32(pseudo[i]) << 8 | UInt32(pseudo[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksumField = partialChecksum ? UInt16(sum) : 0xDEAD
        if udp {
            be16(33333); be16(44444)
            be16(UInt16(truncatingIfNeeded: l4Length)); be16(checksumField)
        } else {
            be16(40000); be16(22)
            be32(sequenceNumber)
            be32(0x0102_0304)
            b.append(UInt8(l4HeaderLength / 4) << 4)
            b.append(flags.rawValue)
            be16(0xFFFF)
            be16(checksumField)
            be16(0)
            b += tcpOptions
        }
        return b + payload
    }

    /// The virtio-net header a NEEDS_CSUM GSO sender would write.
    func header(gsoSize: Int, hdrLen: Int? = nil) -> VirtioNetHeader {
        var type = udp ? VirtioNetHeader.gsoUDPL4 : (ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4)
        if !udp && flags.contains(.cwr) { type |= VirtioNetHeader.gsoECN }
        return VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: type,
                               headerLength: UInt16(hdrLen ?? headerLength), gsoSize: UInt16(gsoSize),
                               checksumStart: UInt16(l4Offset), checksumOffset: udp ? 6 : 16)
    }
}

/// Plans and emits every segment of `frame`, each into a buffer of exactly
/// `plan.segmentLength` bytes prefilled with 0xa5.
func segmentAll(_ frame: [UInt8], header: VirtioNetHeader, mtu: Int,
                file: StaticString = #filePath, line: UInt = #line) -> (SegmentationPlan, [[UInt8]])? {
    let result = frame.withUnsafeBytes { Segmentation.plan(frame: $0, header: header, mtu: mtu) }
    guard case .success(let plan) = result else {
        XCTFail("plan failed: \(result)", file: file, line: line)
        return nil
    }
    var segments: [[UInt8]] = []
    for index in 0..<plan.count {
        let length = plan.segmentLength(index, frameLength: frame.count)
        var out = [UInt8](repeating: 0xA5, count: length)
        let written = frame.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { Segmentation.emitSegment(index, of: input, plan: plan, into: $0.baseAddress!) }
        }
        XCTAssertEqual(written, length, "segment \(index)", file: file, line: line)
        segments.append(out)
    }
    return (plan, segments)
}

/// Writes `frames` as a classic pcap file (little-endian, microsecond stamps, LINKTYPE_ETHERNET 1).
func pcapBytes(_ frames: [[UInt8]]) -> [UInt8] {
    var b: [UInt8] = []
    func le32(_ v: UInt32) { b += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    func le16(_ v: UInt16) { b += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(262_144); le32(1)
    for (i, frame) in frames.enumerated() {
        le32(1_700_000_000); le32(UInt32(i)); le32(UInt32(frame.count)); le32(UInt32(frame.count))
        b += frame
    }
    return b
}

/// The reference sum (TestSupport's byte-pair loop) of the pseudo-header and L4 bytes `l4..<end`
/// of `frame`: 0xffff when the TCP/UDP checksum is right.
func referenceL4Sum(_ frame: [UInt8], l3: Int, l4: Int, end: Int, ipv6: Bool, udp: Bool) -> UInt16 {
    let length = end - l4
    var pseudo: [UInt8]
    if ipv6 {
        pseudo = Array(frame[(l3 + 8)..<(l3 + 40)])
        pseudo += [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        pseudo += [0, 0, 0, udp ? 17 : 6]
    } else {
        pseudo = Array(frame[(l3 + 12)..<(l3 + 20)]) + [0, udp ? 17 : 6, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    }
    return (pseudo + frame[l4..<end]).withUnsafeBytes { referenceSum($0) }
}
