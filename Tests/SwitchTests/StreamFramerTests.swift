// StreamFramer: 4-byte big-endian framing with frames split at every byte boundary and several per read.
import XCTest
@testable import Switch

final class StreamFramerTests: XCTestCase {
    private func frame(_ length: Int, fill: UInt8) -> [UInt8] {
        let l = UInt32(length)
        return [UInt8(l >> 24), UInt8(l >> 16 & 0xff), UInt8(l >> 8 & 0xff), UInt8(l & 0xff)]
            + [UInt8](repeating: fill, count: length)
    }

    /// Feeds `stream` in chunks whose boundaries are given, as a port's reads would deliver it.
    private func feed(_ stream: [UInt8], cuts: [Int], maxFrame: Int = 1518) -> (frames: [[UInt8]], bad: UInt32?) {
        let capacity = 2 * (maxFrame + 4)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var fill = 0
        var frames: [[UInt8]] = []
        var position = 0
        for cut in cuts + [stream.count] where cut > position {
            let chunk = stream[position..<cut]
            precondition(fill + chunk.count <= capacity)
            chunk.withUnsafeBytes { (buffer + fill).copyMemory(from: $0.baseAddress!, byteCount: chunk.count) }
            position = cut
            switch StreamFramer.drain(buffer, end: fill + chunk.count, maxFrame: maxFrame, { p, n in
                frames.append(Array(UnsafeRawBufferPointer(start: p, count: n)))
            }) {
            case .success(let kept): fill = kept
            case .failure(let bad): return (frames, bad.length)
            }
        }
        XCTAssertEqual(fill, 0, "nothing left over once the whole stream is in")
        return (frames, nil)
    }

    func testEverySplitPointOfTwoFrames() {
        let a = frame(60, fill: 0xaa), b = frame(1514, fill: 0xbb)
        let stream = a + b
        for cut in 0...stream.count {
            let (frames, bad) = feed(stream, cuts: [cut])
            XCTAssertNil(bad)
            XCTAssertEqual(frames, [Array(a.dropFirst(4)), Array(b.dropFirst(4))], "split at \(cut)")
        }
    }

    func testByteAtATime() {
        let frames = [frame(14, fill: 1), frame(100, fill: 2), frame(1518, fill: 3)]
        let stream = frames.flatMap { $0 }
        let (got, bad) = feed(stream, cuts: Array(1..<stream.count))
        XCTAssertNil(bad)
        XCTAssertEqual(got, frames.map { Array($0.dropFirst(4)) })
    }

    func testManyFramesInOneRead() {
        let frames = (0..<20).map { frame(60 + $0, fill: UInt8($0)) }
        let (got, bad) = feed(frames.flatMap { $0 }, cuts: [])
        XCTAssertNil(bad)
        XCTAssertEqual(got.count, 20)
        XCTAssertEqual(got.last, Array(frames.last!.dropFirst(4)))
    }

    func testBadLengthsReset() {
        XCTAssertEqual(feed(frame(13, fill: 0), cuts: []).bad, 13)
        XCTAssertEqual(feed([0, 0, 0, 0], cuts: []).bad, 0)
        XCTAssertEqual(feed([0, 0, 5, 0xef] + [UInt8](repeating: 0, count: 20), cuts: []).bad, 1519)
        // Frames before the bad one are still delivered.
        let (frames, bad) = feed(frame(60, fill: 1) + [0xff, 0xff, 0xff, 0xff], cuts: [])
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(bad, 0xffff_ffff)
    }

    func testLargestFrameAtMTU65520() {
        let big = frame(65_538, fill: 7)
        let (frames, bad) = feed(big, cuts: [3, 40_000], maxFrame: 65_538)
        XCTAssertNil(bad)
        XCTAssertEqual(frames.first?.count, 65_538)
    }
}
