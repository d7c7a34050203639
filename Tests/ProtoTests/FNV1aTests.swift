// FNV1aTests: the published 64-bit FNV-1a vectors, and that feeding bytes one by one gives the same hash.
import Proto
import XCTest

final class FNV1aTests: XCTestCase {
    /// Vectors from the FNV reference test suite (http://www.isthe.com/chongo/src/fnv/test_fnv.c, FNV-1a 64).
    func testKnownVectors() {
        XCTAssertEqual(FNV1a.hash([UInt8]()), 0xcbf2_9ce4_8422_2325, "empty input is the offset basis")
        XCTAssertEqual(FNV1a.hash("a".utf8), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(FNV1a.hash("foobar".utf8), 0x8594_4171_f739_67e8)
    }

    func testIncrementalEqualsOneShot() {
        var hash = FNV1a()
        for byte in "foo".utf8 { hash.combine(byte) }
        hash.combine(contentsOf: "bar".utf8)
        XCTAssertEqual(hash.value, FNV1a.hash("foobar".utf8))
    }
}
