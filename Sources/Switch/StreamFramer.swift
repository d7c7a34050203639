// StreamFramer: the 4-byte big-endian length framing of QEMU `stream`, libkrun `unixstream` and passt.
//
// A stream port reads whatever the socket holds into its reassembly buffer; this walks the
// complete frames in it, reports a partial frame as "need more" so the caller carries it over to
// the next read, and flags a length outside 14...maxFrame so the caller resets that connection
// (passt tap.c `tap_passt_input` does the same).

enum StreamFramer {
    /// Bytes of the length prefix.
    static let prefixLength = 4
    /// The shortest frame accepted: an Ethernet header.
    static let minFrame = 14

    enum Next: Equatable {
        /// A whole frame at `offset` (after its prefix) of `length` bytes; the next one starts at offset + length.
        case frame(offset: Int, length: Int)
        /// The buffer ends inside a prefix or a frame.
        case needMore
        /// A prefix announced an impossible length.
        case bad(length: UInt32)
    }

    /// The next frame in `bytes[start..<end]`.
    @inline(__always)
    static func next(in base: UnsafeRawPointer, from start: Int, to end: Int, maxFrame: Int) -> Next {
        guard end - start >= prefixLength else { return .needMore }
        let length = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: start, as: UInt32.self))
        guard length >= minFrame, length <= maxFrame else { return .bad(length: length) }
        let frameEnd = start + prefixLength + Int(length)
        guard frameEnd <= end else { return .needMore }
        return .frame(offset: start + prefixLength, length: Int(length))
    }

    /// Hands every complete frame in `base[0..<end]` to `body` (pointer, length), then moves a
    /// trailing partial frame to the front of the buffer. Returns the bytes kept (the new fill),
    /// or the bad length that must reset the connection.
    @inline(__always)
    static func drain(_ base: UnsafeMutableRawPointer, end: Int, maxFrame: Int,
                      _ body: (UnsafeRawPointer, Int) -> Void) -> Result<Int, BadLength> {
        var start = 0
        while true {
            switch next(in: base, from: start, to: end, maxFrame: maxFrame) {
            case .frame(let offset, let length):
                body(base + offset, length)
                start = offset + length
            case .needMore:
                if start > 0 && start < end { base.copyMemory(from: base + start, byteCount: end - start) }
                return .success(end - start)
            case .bad(let length):
                return .failure(BadLength(length: length))
            }
        }
    }

    /// A length prefix outside 14...maxFrame.
    struct BadLength: Error, Equatable { var length: UInt32 }

    /// Writes the prefix for a frame of `length` bytes at `p`.
    @inline(__always)
    static func storePrefix(_ length: Int, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt32(length).bigEndian, as: UInt32.self)
    }
}
