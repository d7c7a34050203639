// Round trips of MACAddress and VirtioNetHeader.
import XCTest
@testable import Proto

final class MACAddressTests: XCTestCase {
    func testParseAndPrint() {
        let mac = MACAddress("02:00:5e:10:00:01")
        XCTAssertEqual(mac?.rawValue, 0x0200_5e10_0001)
        XCTAssertEqual(mac?.description, "02:00:5e:10:00:01")
        XCTAssertNil(MACAddress("02:00:5e:10:00"))
        XCTAssertTrue(MACAddress.broadcast.isMulticast)
    }

    func testVirtioNetHeaderIsLittleEndian() {
        let header = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 0x0102, gsoSize: 0x0304,
                                     checksumStart: 0x0506, checksumOffset: 0x0708, numBuffers: 0x090a)
        var bytes = [UInt8](repeating: 0xa5, count: 12)
        bytes.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        XCTAssertEqual(bytes, [1, 1, 2, 1, 4, 3, 6, 5, 8, 7, 0x0a, 9])
        XCTAssertEqual(bytes.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }, header)
    }
}
