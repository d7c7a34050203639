// LineReader: splits a byte stream into newline-terminated lines, refusing lines over a limit.

/// Accumulates bytes read from a connection and hands out complete lines (without `\n`).
struct LineReader {
    /// Requests may be up to 64 KiB, not counting the newline (docs/DESIGN.md §6).
    static let defaultLimit = 64 * 1024

    let limit: Int
    private var pending: [UInt8] = []

    init(limit: Int = LineReader.defaultLimit) { self.limit = limit }

    /// What the connection should do next.
    enum Event: Equatable {
        case line([UInt8])
        /// A line longer than `limit`: answer with an error and close.
        case tooLong
    }

    /// Adds `bytes` and returns the lines they complete, in order; `.tooLong` is always last.
    mutating func append(_ bytes: some Collection<UInt8>) -> [Event] {
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            if newline - start > limit { return events + [.tooLong] }
            events.append(.line(Array(pending[start..<newline])))
            start = newline + 1
        }
        pending.removeFirst(start)
        if pending.count > limit { return events + [.tooLong] }
        return events
    }

    /// At end of input: the unterminated last line, if any (so `printf '{"op":"status"}' | nc -U` works).
    mutating func finish() -> [UInt8]? {
        defer { pending = [] }
        return pending.isEmpty ? nil : pending
    }
}
