// StreamFramerTarget: the 4-byte length framing of stream ports, drained over arbitrary chunk splits.
@testable import Switch

/// A byte stream read in chunks into a reassembly buffer of 2 × (maxFrame + 4) bytes, as the
/// forwarding loop does. Input: maxFrame − 14 (one byte), a chunk count k (one byte), k chunk sizes
/// (one byte each), then the stream. The frames the framer hands out, and where it finds a bad
/// length, must be exactly those of a plain front-to-back reading of the whole stream.
func fuzzStreamFramer(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let maxFrame = 14 + Int(reader.byte())
    let chunkCount = Int(reader.byte() & 31)
    var chunks = (0..<chunkCount).map { _ in Int(reader.byte()) + 1 }
    let stream = reader.rest()

    // The reference: walk the stream front to back.
    var expected: [ArraySlice<UInt8>] = []
    var badAt: Int? = nil
    var offset = 0
    while stream.count - offset >= 4 {
        let length = Int(stream[offset]) << 24 | Int(stream[offset + 1]) << 16 | Int(stream[offset + 2]) << 8 | Int(stream[offset + 3])
        if length < 14 || length > maxFrame { badAt = offset; break }
        guard offset + 4 + length <= stream.count else { break }
        expected.append(ArraySlice(stream[(offset + 4)..<(offset + 4 + length)]))
        offset += 4 + length
    }

    // The framer over the same bytes in chunks; the last chunk takes whatever is left.
    let capacity = 2 * (maxFrame + 4)
    var got: [ArraySlice<UInt8>] = []
    var bad: UInt32? = nil
    withBuffer(capacity) { buffer in
        let base = buffer.baseAddress!
        var fill = 0, read = 0, chunk = 0
        while read < stream.count && bad == nil {
            let want = chunk < chunks.count ? chunks[chunk] : stream.count - read
            chunk += 1
            let count = min(want, capacity - fill, stream.count - read)
            require(count > 0, "reassembly buffer full: \(fill) of \(capacity) bytes kept")
            (base + fill).copyMemory(from: stream.baseAddress! + read, byteCount: count)
            read += count
            let result = StreamFramer.drain(base, end: fill + count, maxFrame: maxFrame) { frame, length in
                require(length >= 14 && length <= maxFrame, "frame of \(length) bytes, limit \(maxFrame)")
                got.append(ArraySlice(UnsafeRawBufferPointer(start: frame, count: length)))
            }
            switch result {
            case .success(let kept):
                require(kept >= 0 && kept < maxFrame + 4, "kept \(kept) bytes, more than one partial frame")
                fill = kept
            case .failure(let error):
                bad = error.length
            }
        }
        if bad == nil { require(fill == stream.count - offset || badAt != nil, "kept \(fill), expected \(stream.count - offset)") }
    }
    chunks.removeAll()
    require(got == expected, "frames: got \(got.count), expected \(expected.count)")
    require((bad != nil) == (badAt != nil), "bad length found: \(bad as Any), expected at \(badAt as Any)")
}
