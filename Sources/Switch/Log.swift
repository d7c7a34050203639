// Log: leveled lines on stderr, shared by the daemon and the dataplane (never called per packet).
import SwitchSys

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

    public static func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }
    public static func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    public static func notice(_ message: @autoclosure () -> String) { emit(.notice, message) }
    public static func warning(_ message: @autoclosure () -> String) { emit(.warning, message) }
    public static func error(_ message: @autoclosure () -> String) { emit(.error, message) }

    private static func emit(_ l: LogLevel, _ message: () -> String) {
        guard l >= level else { return }
        File.writeStandardError("switchd \(l): \(message())\n")
    }
}
