// ICMPv4 and ICMPv6 echo messages against scapy's golden frames.
import XCTest
@testable import Proto

final class ICMPv4Tests: XCTestCase {
    let request = ICMPv4Repr(echo: .echoRequest, identifier: 0x1C2D, sequenceNumber: 3)
    let reply = ICMPv4Repr(echo: .echoReply, identifier: 0x1C2D, sequenceNumber: 3)

    func testDeconstruct() throws {
        try withSlice(Golden.icmpEchoRequest, 34...) { bytes in
            let message = try XCTUnwrap(ICMPv4Message(validating: bytes))
            XCTAssertEqual(message.type, .echoRequest)
            XCTAssertEqual(message.code, 0)
            XCTAssertEqual(message.identifier, 0x1C2D)
            XCTAssertEqual(message.sequenceNumber, 3)
            XCTAssertEqual(message.restOfHeader, 0x1C2D_0003)
            XCTAssertEqual(Array(message.payload), Array(0..<32))
            XCTAssertTrue(message.isChecksumValid)
        }
        try withSlice(Golden.qinqICMP, 42...) { bytes in
            let message = try XCTUnwrap(ICMPv4Message(validating: bytes))
            XCTAssertEqual(message.identifier, 0x77)
            XCTAssertEqual(message.checksum, 0x18B7)
            XCTAssertTrue(message.isChecksumValid)
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 40, copying: Array(0..<32), at: 8) { buffer in
            let message = MutableICMPv4Message(validating: buffer)!
            message.type = .echoReply
            message.code = 0
            message.identifier = 0x1C2D
            message.sequenceNumber = 3
            message.fillChecksum()
        }
        XCTAssertEqual(bytes, Array(Golden.icmpEchoReply[34...]))
    }

    func testParse() throws {
        try withSlice(Golden.icmpEchoRequest, 34...) { XCTAssertEqual(ICMPv4Repr.parse(try XCTUnwrap(ICMPv4Message(validating: $0))), request) }
        try withSlice(Golden.icmpEchoReply, 34...) { XCTAssertEqual(ICMPv4Repr.parse(try XCTUnwrap(ICMPv4Message(validating: $0))), reply) }
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 40, copying: Array(0..<32), at: 8) { request.emit(into: $0) }, Array(Golden.icmpEchoRequest[34...]))
        XCTAssertEqual(emitted(count: 40, copying: Array(0..<32), at: 8) { reply.emit(into: $0) }, Array(Golden.icmpEchoReply[34...]))
    }

    /// An echo reply built by rewriting the request in place, with RFC 1624 updates only.
    func testReplyByIncrementalUpdate() {
        var message = Array(Golden.icmpEchoRequest[34...])
        message.withUnsafeMutableBytes { buffer in
            let view = MutableICMPv4Message(validating: buffer)!
            let old = UInt16(view.type.rawValue) << 8 | UInt16(view.code)
            view.type = .echoReply
            view.checksum = InternetChecksum.update(view.checksum, replacing: old, with: UInt16(view.type.rawValue) << 8)
        }
        XCTAssertEqual(message, Array(Golden.icmpEchoReply[34...]))
    }

    func testInvalid() {
        for length in 0..<8 { withSlice(Golden.icmpEchoRequest, 34..<(34 + length)) { XCTAssertNil(ICMPv4Message(validating: $0)) } }
        var corrupt = Array(Golden.icmpEchoRequest[34...]); corrupt[20] ^= 1
        withSlice(corrupt, 0...) { XCTAssertEqual(ICMPv4Message(validating: $0)?.isChecksumValid, false) }
    }
}

final class ICMPv6Tests: XCTestCase {
    let echo = ICMPv6Repr(echo: .echoRequest, identifier: 0x1234, sequenceNumber: 9)
    var pseudoHeader: UInt16 { InternetChecksum.pseudoHeaderSum(source: Addr.v6a, destination: Addr.v6b, protocol: .icmpv6, length: 13) }

    func testDeconstruct() throws {
        try withSlice(Golden.ipv6ChainEcho, 14...) { bytes in
            let ip = try XCTUnwrap(IPv6Header(validating: bytes))
            let upper = try XCTUnwrap(ip.upperLayer())
            let message = try XCTUnwrap(ICMPv6Message(validating: ip.bytes.suffix(from: upper.offset)))
            XCTAssertEqual(message.type, .echoRequest)
            XCTAssertEqual(message.code, 0)
            XCTAssertEqual(message.checksum, 0xFA16)
            XCTAssertEqual(message.identifier, 0x1234)
            XCTAssertEqual(message.sequenceNumber, 9)
            XCTAssertEqual(Array(message.payload), Array("echo!".utf8))
            XCTAssertTrue(message.isChecksumValid(pseudoHeaderSum: pseudoHeader))
            XCTAssertFalse(message.isChecksumValid(pseudoHeaderSum: 0))
        }
    }

    func testConstruct() {
        let bytes = emitted(count: 13, copying: Array("echo!".utf8), at: 8) { buffer in
            let message = MutableICMPv6Message(validating: buffer)!
            message.type = .echoRequest
            message.code = 0
            message.identifier = 0x1234
            message.sequenceNumber = 9
            message.fillChecksum(pseudoHeaderSum: pseudoHeader)
        }
        XCTAssertEqual(bytes, Array(Golden.ipv6ChainEcho[78...]))
    }

    func testParse() throws {
        try withSlice(Golden.ipv6ChainEcho, 78...) { XCTAssertEqual(ICMPv6Repr.parse(try XCTUnwrap(ICMPv6Message(validating: $0))), echo) }
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 13, copying: Array("echo!".utf8), at: 8) { echo.emit(into: $0, pseudoHeaderSum: pseudoHeader) },
                       Array(Golden.ipv6ChainEcho[78...]))
    }

    func testInvalid() {
        for length in 0..<8 { withSlice(Golden.ipv6ChainEcho, 78..<(78 + length)) { XCTAssertNil(ICMPv6Message(validating: $0)) } }
    }
}
