// InternetChecksum: the fast sum against a byte-pair reference, pseudo-headers, RFC 1624 updates.
import XCTest
@testable import Proto

final class ChecksumTests: XCTestCase {
    /// Every length 0...1600 and 65535 at every start offset 0...7, random data (seeded).
    func testFastSumMatchesReference() {
        var generator = SplitMix64(seed: 0x5eed_c0de)
        let maximum = 65535
        var storage = [UInt8](repeating: 0, count: maximum + 8)
        for index in storage.indices { storage[index] = UInt8.random(in: 0...255, using: &generator) }
        storage.withUnsafeBytes { all in
            for length in Array(0...1600) + [maximum] {
                for offset in 0...7 {
                    let bytes = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let initial = UInt16.random(in: 0...0xFFFF, using: &generator)
                    let fast = InternetChecksum.sum(bytes, initial: initial)
                    let slow = referenceSum(bytes, initial: initial)
                    // 0x0000 and 0xffff are both ones'-complement zero; the reference never folds to
                    // 0xffff from a zero input, so compare as ones'-complement values.
                    if fast != slow && !(fast == 0xFFFF && slow == 0) && !(fast == 0 && slow == 0xFFFF) {
                        XCTFail("length \(length) offset \(offset): fast \(fast) reference \(slow)")
                        return
                    }
                }
            }
        }
    }

    /// All-ones data exercises every carry; all-zero data the empty sum.
    func testExtremeData() {
        for fill in [UInt8(0xFF), 0x00, 0x80, 0x01] {
            for length in [0, 1, 2, 3, 15, 16, 17, 63, 64, 65, 1500, 65535] {
                let data = [UInt8](repeating: fill, count: length + 7)
                data.withUnsafeBytes { all in
                    for offset in 0...7 {
                        let bytes = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                        XCTAssertEqual(InternetChecksum.sum(bytes), referenceSum(bytes), "fill \(fill) length \(length) offset \(offset)")
                    }
                }
            }
        }
    }

    /// RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    func testRFC1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        XCTAssertEqual(bytes.withUnsafeBytes { InternetChecksum.sum($0) }, 0xDDF2)
        XCTAssertEqual(bytes.withUnsafeBytes { InternetChecksum.checksum($0) }, ~0xDDF2)
    }

    func testChainingEvenPieces() {
        var generator = SplitMix64(seed: 7)
        let data = (0..<999).map { _ in UInt8.random(in: 0...255, using: &generator) }
        data.withUnsafeBytes { all in
            let whole = InternetChecksum.sum(all)
            for cut in stride(from: 0, through: 998, by: 2) {
                let first = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                XCTAssertEqual(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: all[cut...]), initial: first), whole)
            }
        }
    }

    /// The pseudo-header helpers against the pseudo-header written out as bytes.
    func testPseudoHeaders() {
        var v4: [UInt8] = []
        v4 += Addr.v4a.octets
        v4 += Addr.v4b.octets
        v4 += [0, 17, 0x01, 0x23]
        XCTAssertEqual(InternetChecksum.pseudoHeaderSum(source: Addr.v4a, destination: Addr.v4b, protocol: .udp, length: 0x123),
                       v4.withUnsafeBytes { referenceSum($0) })
        var v6: [UInt8] = []
        v6 += Addr.v6a.octets
        v6 += Addr.v6b.octets
        v6 += [0, 1, 0x02, 0x03, 0, 0, 0, 58]
        XCTAssertEqual(InternetChecksum.pseudoHeaderSum(source: Addr.v6a, destination: Addr.v6b, protocol: .icmpv6, length: 0x10203),
                       v6.withUnsafeBytes { referenceSum($0) })
    }

    /// RFC 1624 updates agree with recomputation for random headers and random field changes.
    func testIncrementalUpdateMatchesRecompute() {
        var generator = SplitMix64(seed: 1624)
        for _ in 0..<2000 {
            var words = (0..<10).map { _ in UInt16.random(in: 0...0xFFFF, using: &generator) }
            words[5] = 0
            func checksum() -> UInt16 {
                let bytes = words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
                return bytes.withUnsafeBytes { InternetChecksum.checksum($0) }
            }
            words[5] = checksum()
            let index = [0, 1, 2, 3, 4, 6, 7, 8, 9].randomElement(using: &generator)!
            let old = words[index]
            words[index] = UInt16.random(in: 0...0xFFFF, using: &generator)
            let updated = InternetChecksum.update(words[5], replacing: old, with: words[index])
            let stored = words[5]
            words[5] = 0
            let fresh = checksum()
            words[5] = stored
            // RFC 1624 §5: the two may differ only between the two representations of zero.
            XCTAssertTrue(updated == fresh || (updated == 0xFFFF && fresh == 0) || (updated == 0 && fresh == 0xFFFF),
                          "updated \(updated) fresh \(fresh)")
        }
    }

    func testFold() {
        XCTAssertEqual(InternetChecksum.fold(0), 0)
        XCTAssertEqual(InternetChecksum.fold(0xFFFF), 0xFFFF)
        XCTAssertEqual(InternetChecksum.fold(0x1_0000), 1)
        XCTAssertEqual(InternetChecksum.fold(UInt64.max), 0xFFFF)
        XCTAssertEqual(InternetChecksum.add(0xFFFF, 1), 1)
    }
}

extension IPv4Address {
    /// The four octets, first on the wire first (test helper).
    fileprivate var octets: [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (24 - 8 * UInt32($0))) } }
}

extension IPv6Address {
    /// The sixteen octets, first on the wire first (test helper).
    fileprivate var octets: [UInt8] { groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } }
}
