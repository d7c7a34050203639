// UDP over IPv4, over VLAN, and over IPv6 behind extension headers, against scapy's golden frames.
import XCTest
@testable import Proto

final class UDPTests: XCTestCase {
    let dhcpRepr = UDPRepr(sourcePort: 67, destinationPort: 68)
    var dhcpPseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v4a, destination: Addr.v4b, protocol: .udp, length: 26) }
    var v6PseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v6a, destination: Addr.v6b, protocol: .udp, length: 11) }

    func testDeconstruct() throws {
        try withSlice(Golden.udp, 34...) { bytes in
            let header = try XCTUnwrap(UDPHeader(validating: bytes))
            XCTAssertEqual(header.sourcePort, 67)
            XCTAssertEqual(header.destinationPort, 68)
            XCTAssertEqual(header.length, 26)
            XCTAssertEqual(Array(header.payload), Array("odd-length payload".utf8))
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: dhcpPseudoHeader))
            XCTAssertFalse(header.isChecksumValid(pseudoHeaderSum: dhcpPseudoHeader &+ 1))
        }
        try withSlice(Golden.vlanUDP, 18...) { bytes in
            let ip = try XCTUnwrap(IPv4Header(validating: bytes))
            let header = try XCTUnwrap(UDPHeader(validating: ip.payload))
            XCTAssertEqual(header.sourcePort, 5353)
            XCTAssertEqual(header.destinationPort, 53)
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: ip.payloadPseudoHeaderSum))
        }
        try withSlice(Golden.ipv6HopFragUDP, 14...) { bytes in
            let ip = try XCTUnwrap(IPv6Header(validating: bytes))
            let upper = try XCTUnwrap(ip.upperLayer())
            let header = try XCTUnwrap(UDPHeader(validating: ip.bytes.suffix(from: upper.offset)))
            XCTAssertEqual(header.sourcePort, 4000)
            XCTAssertEqual(header.destinationPort, 5000)
            XCTAssertEqual(header.length, 11)
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: v6PseudoHeader))
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 26, copying: Array(Golden.udp[42...]), at: 8) { buffer in
            let header = MutableUDPHeader(emptyDatagram: buffer)
            header.sourcePort = 67
            header.destinationPort = 68
            header.length = 26
            header.fillChecksum(pseudoHeaderSum: dhcpPseudoHeader)
        }
        XCTAssertEqual(bytes, Array(Golden.udp[34...]))
    }

    func testParse() throws {
        try withSlice(Golden.udp, 34...) { XCTAssertEqual(UDPRepr.parse(try XCTUnwrap(UDPHeader(validating: $0))), dhcpRepr) }
        try withSlice(Golden.ipv6HopFragUDP, 70...) {
            XCTAssertEqual(UDPRepr.parse(try XCTUnwrap(UDPHeader(validating: $0))), UDPRepr(sourcePort: 4000, destinationPort: 5000))
        }
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 26, copying: Array(Golden.udp[42...]), at: 8) { dhcpRepr.emit(into: $0, pseudoHeaderSum: dhcpPseudoHeader) },
                       Array(Golden.udp[34...]))
        XCTAssertEqual(emitted(count: 11, copying: Array(Golden.ipv6HopFragUDP[78...]), at: 8) {
            UDPRepr(sourcePort: 4000, destinationPort: 5000).emit(into: $0, pseudoHeaderSum: v6PseudoHeader)
        }, Array(Golden.ipv6HopFragUDP[70...]))
    }

    func testZeroChecksumIsSentAsAllOnes() {
        // Find a payload whose checksum computes to 0 and check it goes out as 0xffff (RFC 768).
        var datagram: [UInt8] = [0, 1, 0, 2, 0, 10, 0, 0, 0, 0]
        let sum = datagram.withUnsafeBytes { InternetChecksum.sum($0) }
        // Choose the last word so the total sum is 0xffff: the checksum then computes to 0.
        let fill = ~InternetChecksum.add(sum, 0)
        datagram[8] = UInt8(fill >> 8); datagram[9] = UInt8(fill & 0xFF)
        datagram.withUnsafeMutableBytes { buffer in
            let header = MutableUDPHeader(validating: buffer)!
            header.fillChecksum(pseudoHeaderSum: 0)
            XCTAssertEqual(header.checksum, 0xFFFF)
            XCTAssertTrue(header.header.isChecksumValid(pseudoHeaderSum: 0))
        }
    }

    func testInvalid() {
        let datagram = Array(Golden.udp[34...])
        for length in 0..<datagram.count { withSlice(datagram, 0..<length) { XCTAssertNil(UDPHeader(validating: $0)) } }
        var short = datagram; short[5] = 7
        withSlice(short, 0...) { XCTAssertNil(UDPHeader(validating: $0), "length below 8") }
        var trimmed = datagram; trimmed[5] = 9
        withSlice(trimmed, 0...) { XCTAssertEqual(UDPHeader(validating: $0)?.payload.count, 1) }
    }
}
