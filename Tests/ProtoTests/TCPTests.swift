// TCP segments with and without options, over IPv4 and IPv6, against scapy's golden frames.
import XCTest
@testable import Proto

final class TCPTests: XCTestCase {
    let synRepr = TCPRepr(sourcePort: 43210, destinationPort: 80, sequenceNumber: 0x0102_0304, flags: .syn, window: 64240,
                          maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                          timestamp: TCPTimestamp(value: 0x1122_3344, echoReply: 0))
    let dataRepr = TCPRepr(sourcePort: 80, destinationPort: 43210, sequenceNumber: 0xFFFF_FFF0, acknowledgmentNumber: 0x0102_0305,
                           flags: [.psh, .ack], window: 502)
    var synPseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v4b, destination: Addr.v4a, protocol: .tcp, length: 40) }
    var dataPseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v4a, destination: Addr.v4b, protocol: .tcp, length: 42) }

    func testDeconstruct() throws {
        try withSlice(Golden.tcpSYN, 34...) { bytes in
            let header = try XCTUnwrap(TCPHeader(validating: bytes))
            XCTAssertEqual(header.sourcePort, 43210)
            XCTAssertEqual(header.destinationPort, 80)
            XCTAssertEqual(header.sequenceNumber, 0x0102_0304)
            XCTAssertEqual(header.acknowledgmentNumber, 0)
            XCTAssertEqual(header.dataOffset, 10)
            XCTAssertEqual(header.headerLength, 40)
            XCTAssertEqual(header.flags, .syn)
            XCTAssertEqual(header.window, 64240)
            XCTAssertEqual(header.urgentPointer, 0)
            XCTAssertEqual(header.options.count, 20)
            XCTAssertEqual(header.payload.count, 0)
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: synPseudoHeader))
        }
        try withSlice(Golden.tcpData, 14...) { bytes in
            let ip = try XCTUnwrap(IPv4Header(validating: bytes))
            let header = try XCTUnwrap(TCPHeader(validating: ip.payload))
            XCTAssertEqual(header.flags, [.psh, .ack])
            XCTAssertEqual(header.acknowledgmentNumber, 0x0102_0305)
            XCTAssertEqual(Array(header.payload), Array("HTTP/1.1 200 OK\r\n\r\nhi!".utf8))
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: ip.payloadPseudoHeaderSum))
        }
        try withSlice(Golden.ipv6DestOptTCP, 14...) { bytes in
            let ip = try XCTUnwrap(IPv6Header(validating: bytes))
            let upper = try XCTUnwrap(ip.upperLayer())
            let header = try XCTUnwrap(TCPHeader(validating: ip.bytes.suffix(from: upper.offset)))
            XCTAssertEqual(header.destinationPort, 22)
            XCTAssertEqual(header.flags, .ack)
            let sum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: .tcp,
                                                       length: header.bytes.count)
            XCTAssertTrue(header.isChecksumValid(pseudoHeaderSum: sum))
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 42, copying: Array(Golden.tcpData[54...]), at: 20) { buffer in
            let header = MutableTCPHeader(emptySegment: buffer)
            header.sourcePort = 80
            header.destinationPort = 43210
            header.sequenceNumber = 0xFFFF_FFF0
            header.acknowledgmentNumber = 0x0102_0305
            header.headerLength = 20
            header.flags = [.psh, .ack]
            header.window = 502
            header.urgentPointer = 0
            header.fillChecksum(pseudoHeaderSum: dataPseudoHeader)
        }
        XCTAssertEqual(bytes, Array(Golden.tcpData[34...]))
    }

    func testParse() throws {
        try withSlice(Golden.tcpSYN, 34...) { XCTAssertEqual(TCPRepr.parse(try XCTUnwrap(TCPHeader(validating: $0))), synRepr) }
        try withSlice(Golden.tcpData, 34...) { XCTAssertEqual(TCPRepr.parse(try XCTUnwrap(TCPHeader(validating: $0))), dataRepr) }
    }

    func testEmit() {
        XCTAssertEqual(synRepr.headerLength, 40)
        XCTAssertEqual(emitted(count: 40) { synRepr.emit(into: $0, pseudoHeaderSum: synPseudoHeader) }, Array(Golden.tcpSYN[34...]))
        XCTAssertEqual(emitted(count: 42, copying: Array(Golden.tcpData[54...]), at: 20) { dataRepr.emit(into: $0, pseudoHeaderSum: dataPseudoHeader) },
                       Array(Golden.tcpData[34...]))
    }

    func testOptionSubsetsRoundTrip() throws {
        let variants: [TCPRepr] = [
            TCPRepr(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: .syn, window: 4, sackPermitted: true),
            TCPRepr(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: .syn, window: 4, windowScale: 14),
            TCPRepr(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: .ack, window: 4,
                    timestamp: TCPTimestamp(value: 5, echoReply: 6)),
            TCPRepr(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: .syn, window: 4, maximumSegmentSize: 8960),
        ]
        for repr in variants {
            XCTAssertEqual(repr.headerLength % 4, 0)
            let bytes = emitted(count: repr.headerLength) { repr.emit(into: $0, pseudoHeaderSum: 0) }
            try withSlice(bytes, 0...) { XCTAssertEqual(TCPRepr.parse(try XCTUnwrap(TCPHeader(validating: $0))), repr) }
        }
    }

    func testInvalid() {
        let segment = Array(Golden.tcpSYN[34...])
        for length in 0..<segment.count { withSlice(segment, 0..<length) { XCTAssertNil(TCPHeader(validating: $0)) } }
        var small = segment; small[12] = 0x40
        withSlice(small, 0...) { XCTAssertNil(TCPHeader(validating: $0), "data offset 4") }
        var large = segment; large[12] = 0xF0
        withSlice(large, 0...) { XCTAssertNil(TCPHeader(validating: $0), "data offset past end") }
        // Malformed options: zero length, length past the end, wrong MSS length.
        for (offset, value) in [(21, UInt8(0)), (21, 30), (21, 3), (25, 3)] {
            var bad = segment; bad[offset] = value
            withSlice(bad, 0...) { XCTAssertNil(TCPRepr.parse(TCPHeader(validating: $0)!), "option byte \(offset) = \(value)") }
        }
        // End of option list stops the walk.
        var ended = segment; ended[20] = 0
        withSlice(ended, 0...) { XCTAssertNil(TCPRepr.parse(TCPHeader(validating: $0)!)?.maximumSegmentSize) }
    }
}
