// Log: leveled lines on stderr, shared by the daemon and the dataplane (never called per packet).
import Glibc

/// Severity of a log line; lines below the configured level are not written.
public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case debug, info, notice, warning, error
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public init?(name: String) {
        guard let level = Self.allCases.first(where: { "\($0)" == name.lowercased() }) else { return nil }
        self = level
    }
}

/// Process-wide logger writing `LEVEL message` lines to stderr.
public enum Log {
    nonisolated(unsafe) public static var level: LogLevel = .info

    public static func debug(_ message: @autoclosure () -> String) { write(.debug, message) }
    public static func info(_ message: @autoclosure () -> String) { write(.info, message) }
    public static func notice(_ message: @autoclosure () -> String) { write(.notice, message) }
    public static func warning(_ message: @autoclosure () -> String) { write(.warning, message) }
    public static func error(_ message: @autoclosure () -> String) { write(.error, message) }

    private static func write(_ l: LogLevel, _ message: () -> String) {
        guard l >= level else { return }
        let line = "switchd \(l): \(message())\n"
        _ = line.withCString { fputs($0, stderr) }
    }
}
