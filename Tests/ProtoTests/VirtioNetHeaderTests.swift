// The 12-byte virtio_net_hdr_v1 against bytes packed by Python's struct module ('<BBHHHHH').
import XCTest
@testable import Proto

final class VirtioNetHeaderTests: XCTestCase {
    let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv6, headerLength: 74,
                                 gsoSize: 1428, checksumStart: 54, checksumOffset: 16, numBuffers: 1)

    func testDeconstruct() throws {
        let parsed = try XCTUnwrap(Golden.virtioNet.withUnsafeBytes { VirtioNetHeader(validating: $0) })
        XCTAssertEqual(parsed.flags, 1)
        XCTAssertEqual(parsed.gsoType, 4)
        XCTAssertEqual(parsed.headerLength, 74)
        XCTAssertEqual(parsed.gsoSize, 1428)
        XCTAssertEqual(parsed.checksumStart, 54)
        XCTAssertEqual(parsed.checksumOffset, 16)
        XCTAssertEqual(parsed.numBuffers, 1)
        XCTAssertTrue(parsed.isGSO)
    }

    func testConstruct() {
        XCTAssertEqual(emitted(count: 12) { header.store(to: $0.baseAddress!) }, Golden.virtioNet)
    }

    func testParse() {
        XCTAssertEqual(Golden.virtioNet.withUnsafeBytes { VirtioNetHeader(validating: $0) }, header)
    }

    func testEmit() {
        XCTAssertEqual(emitted(count: 12) { header.emit(into: $0) }, Golden.virtioNet)
    }

    func testInvalid() {
        for length in 0..<12 { withSlice(Golden.virtioNet, 0..<length) { XCTAssertNil(VirtioNetHeader(validating: $0)) } }
    }
}
