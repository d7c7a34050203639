// VXLAN (RFC 7348): header golden bytes, decapsulation checks on
// short, garbage and foreign-VNI payloads, and the flow hash behind the outer UDP source port.
import XCTest
@testable import Proto

final class VXLANTests: XCTestCase {
    /// RFC 7348 §5 header for VNI 42 as Linux's vxlan sends it (flags 0x08, reserved bits zero).
    let vni42: [UInt8] = [0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00]
    /// The VXLAN header for VNI 0xABCDEF.
    let vniABCDEF: [UInt8] = [0x08, 0x00, 0x00, 0x00, 0xAB, 0xCD, 0xEF, 0x00]

    func testDeconstruct() throws {
        try vni42.withUnsafeBytes { raw in
            let header = try XCTUnwrap(VXLANHeader(validating: raw))
            XCTAssertEqual(header.flags, 0x08)
            XCTAssertTrue(header.hasVNI)
            XCTAssertEqual(header.vni, 42)
        }
        // Reserved bits set are ignored on receipt (RFC 7348 §5); the VNI is the middle 24 bits.
        try ([0xFF, 0xFF, 0xFF, 0xFF, 0xAB, 0xCD, 0xEF, 0xFF] as [UInt8]).withUnsafeBytes { raw in
            let header = try XCTUnwrap(VXLANHeader(validating: raw))
            XCTAssertTrue(header.hasVNI)
            XCTAssertEqual(header.vni, 0xABCDEF)
        }
        ([0x08, 0, 0, 0, 0, 0, 0x2A] as [UInt8]).withUnsafeBytes { XCTAssertNil(VXLANHeader(validating: $0)) }
    }

    func testConstruct() {
        let encapsulation = VXLANEncapsulation(vni: 42)
        XCTAssertEqual(emitted(count: 8) { encapsulation.emitHeader(into: $0.baseAddress!) }, vni42)
        XCTAssertEqual(VXLANEncapsulation(vni: 0x1AB_CDEF).vni, 0xAB_CDEF, "the VNI is 24 bits")
    }

    func testEmit() {
        // Prefilled with 0xa5: every byte of the 8 must be written.
        XCTAssertEqual(emitted(count: 8) { VXLANEncapsulation(vni: 0xABCDEF).emitHeader(into: $0.baseAddress!) }, vniABCDEF)
        XCTAssertEqual(emitted(count: 8) { VXLANEncapsulation(vni: 1, port: 8472).emitHeader(into: $0.baseAddress!) },
                       [0x08, 0, 0, 0, 0, 0, 0x01, 0])
    }

    func testParse() {
        // A VXLAN payload: the header, then an inner frame.
        let frame = [UInt8](repeating: 0x11, count: 60)
        let payload = vniABCDEF + frame
        payload.withUnsafeBytes { raw in
            XCTAssertEqual(VXLANEncapsulation(vni: 0xABCDEF).innerFrameOffset(payload: raw), .success(8))
            XCTAssertEqual(VXLANEncapsulation(vni: 42).innerFrameOffset(payload: raw), .failure(.wrongVNI))
        }
    }

    func testShortAndGarbage() {
        let encapsulation = VXLANEncapsulation(vni: 42)
        // Anything shorter than VXLAN + an Ethernet header (22 bytes) is short, whatever it holds.
        for count in 0..<22 {
            let payload = Array((vni42 + [UInt8](repeating: 0, count: 14)).prefix(count))
            payload.withUnsafeBytes { XCTAssertEqual(encapsulation.innerFrameOffset(payload: $0), .failure(.short), "\(count) bytes") }
        }
        // The I flag clear: no VNI, whatever the VNI bytes say.
        var noFlag = vni42 + [UInt8](repeating: 0, count: 14)
        noFlag[0] = 0x00
        noFlag.withUnsafeBytes { XCTAssertEqual(encapsulation.innerFrameOffset(payload: $0), .failure(.noVNIFlag)) }
        // Random datagrams of every length up to 100: a verdict for each, and only VNI 42 with the
        // I flag passes.
        var rng = SplitMix64(seed: 7348)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...100, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if count >= 8 && Bool.random(using: &rng) { bytes.replaceSubrange(0..<8, with: vni42) }
            bytes.withUnsafeBytes { raw in
                switch encapsulation.innerFrameOffset(payload: raw) {
                case .success(let offset):
                    XCTAssertEqual(offset, 8)
                    XCTAssertTrue(count >= 22 && bytes[0] & 0x08 != 0 && bytes[4] == 0 && bytes[5] == 0 && bytes[6] == 42)
                case .failure: break
                }
                _ = VXLANFlow.hash(frame: raw)  // never reads past the frame, whatever it holds
            }
        }
    }

    // MARK: - Flow hash

    /// An Ethernet/IPv4/UDP or TCP frame (checksums not filled: the hash does not read them).
    private func ipv4Frame(proto: UInt8 = 17, sourcePort: UInt16, destinationPort: UInt16, payload: UInt8 = 0,
                           fragmentOffset: UInt16 = 0, vlan: UInt16? = nil) -> [UInt8] {
        var frame: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 0x01]
        if let vlan { frame += [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF)] }
        frame += [0x08, 0x00]
        frame += [0x45, 0, 0, 48, 0, 1, UInt8(fragmentOffset >> 8), UInt8(fragmentOffset & 0xFF), 64, proto, 0, 0,
                  192, 168, 107, 1, 192, 168, 107, 23]
        frame += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
        frame += [UInt8](repeating: payload, count: 24)
        return frame
    }

    private func hash(_ frame: [UInt8]) -> UInt64 { frame.withUnsafeBytes { VXLANFlow.hash(frame: $0) } }
    /// Which of 32 send sockets (outer source ports) the frame's flow takes, as the loop picks it.
    private func port(_ frame: [UInt8]) -> UInt64 { hash(frame) % 32 }

    func testFlowHashCoversTheFieldsAnIndependentFNVSees() {
        // The reference: FNV-1a over MACs, EtherType, IPv4 addresses, protocol, ports, in that order.
        let frame = ipv4Frame(sourcePort: 4000, destinationPort: 5000)
        let fields = Array(frame[0..<12]) + [0x08, 0x00] + Array(frame[26..<34]) + [17] + Array(frame[34..<38])
        XCTAssertEqual(hash(frame), FNV1a.hash(fields))
        // A later fragment has no ports: only up to the protocol.
        let fragment = ipv4Frame(sourcePort: 4000, destinationPort: 5000, fragmentOffset: 0x00B9)
        XCTAssertEqual(hash(fragment), FNV1a.hash(Array(fields.prefix(23))))
        // Behind an 802.1Q tag: the TCI, then the inner EtherType.
        let tagged = ipv4Frame(sourcePort: 4000, destinationPort: 5000, vlan: 100)
        XCTAssertEqual(hash(tagged), FNV1a.hash(Array(frame[0..<12]) + [0x00, 0x64, 0x08, 0x00] + Array(fields[14...])))
        // A pinned value: the hash (and so every outer source port) is the same in every run and release.
        XCTAssertEqual(hash(frame), 0xF7CF_523F_B200_7C33)
        XCTAssertEqual(port(frame), 0xF7CF_523F_B200_7C33 % 32)
    }

    func testSourcePortIsStablePerFlowAndSpreadsFlows() {
        // The same flow with other payload bytes: the same port.
        XCTAssertEqual(port(ipv4Frame(sourcePort: 4000, destinationPort: 5000, payload: 1)),
                       port(ipv4Frame(sourcePort: 4000, destinationPort: 5000, payload: 2)))
        // 256 flows (source ports) spread over the hash's range and over all 32 sockets.
        var hashes = Set<UInt64>(), sockets = Set<UInt64>()
        for p in 0..<256 {
            let frame = ipv4Frame(proto: p % 2 == 0 ? 6 : 17, sourcePort: UInt16(30000 + p), destinationPort: 443)
            hashes.insert(hash(frame) % 16384)
            sockets.insert(port(frame))
        }
        XCTAssertGreaterThan(hashes.count, 240, "flows share few hash values")
        XCTAssertEqual(sockets.count, 32, "some send socket gets no flow")
        // IPv6/TCP: the addresses and ports decide.
        func ipv6(_ sourcePort: UInt16) -> [UInt8] {
            var f: [UInt8] = [0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xDD]
            f += [0x60, 0, 0, 0, 0, 20, 6, 64] + [UInt8](repeating: 0xFD, count: 16) + [UInt8](repeating: 0xFE, count: 16)
            f += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0x01, 0xBB] + [UInt8](repeating: 0, count: 16)
            return f
        }
        XCTAssertNotEqual(port(ipv6(1000)), port(ipv6(1001)))
        XCTAssertEqual(port(ipv6(1000)), port(ipv6(1000)))
        // Every truncation of a frame hashes without reading past it.
        let full = ipv6(1000)
        for count in 0...full.count { _ = hash(Array(full.prefix(count))) }
    }
}
