// Sysctl: host-wide kernel settings switchd changes (IPv4 and IPv6 forwarding for `shared`
// networks), recorded with their previous values so they are restored on exit, or at the next
// start after a crash (docs/DESIGN.md §1).
//
// Design note. The record is a small text file, `STATEDIR/sysctls`, one `PATH VALUE` line per
// setting with the value it had before switchd first changed it; it is rewritten atomically
// (temporary file and rename) before each change, so a SIGKILL at any point leaves either no
// record (nothing changed yet) or one that restores everything changed so far.
import SwitchSys

/// The forwarding sysctls and their record.
final class Sysctl {
    static let ipv4Forwarding = "/proc/sys/net/ipv4/ip_forward"
    static let ipv6Forwarding = "/proc/sys/net/ipv6/conf/all/forwarding"

    let recordPath: String
    /// Paths changed by this process (or a crashed one), with their values before switchd.
    private(set) var previous: [(path: String, value: String)] = []

    /// Only paths under this directory are restored from a record (a damaged or planted record
    /// must not make switchd write elsewhere); tests use a temporary directory.
    let root: String

    init(stateDir: String, root: String = "/proc/sys/") {
        recordPath = "\(stateDir)/sysctls"
        self.root = root
    }

    /// Restores what a previous run recorded and did not restore (it crashed); returns the
    /// settings restored, for the log.
    func recover() -> [String] {
        guard let text = Self.readFile(recordPath) else { return [] }
        var restored: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2, fields[0].hasPrefix(root), !fields[0].contains("..") else { continue }
            let path = String(fields[0]), value = String(fields[1])
            if Self.read(path) != value {
                do throws(SysError) {
                    try Self.write(path, value)
                    restored.append("\(Self.name(path)) = \(value)")
                } catch {
                    Log.warning("cannot restore \(Self.name(path)) to \(value): \(error.errno)")
                }
            }
        }
        File.remove(recordPath)
        return restored
    }

    /// Sets `path` to `value`, first recording the value it had (once per path).
    func set(_ path: String, to value: String) throws(SwitchError) {
        let current: String
        do { current = try Self.firstLine(File.readSmall(path, truncating: true)) } catch { throw SwitchError("cannot read \(path): \(error.errno)") }
        if current == value && !previous.contains(where: { $0.path == path }) { return }
        if !previous.contains(where: { $0.path == path }) {
            previous.append((path, current))
            try save()
        }
        do { try Self.write(path, value) } catch { throw SwitchError("cannot set \(Self.name(path)) to \(value): \(error.errno)") }
        Log.info("\(Self.name(path)) = \(value) (was \(previous.first { $0.path == path }!.value))")
    }

    /// Puts `path` back to its recorded value, if switchd changed it.
    func restore(_ path: String) {
        guard let i = previous.firstIndex(where: { $0.path == path }) else { return }
        let value = previous[i].value
        do throws(SysError) {
            try Self.write(path, value)
            Log.info("\(Self.name(path)) = \(value) (restored)")
        } catch {
            Log.warning("cannot restore \(Self.name(path)) to \(value): \(error.errno)")
        }
        previous.remove(at: i)
        if previous.isEmpty { File.remove(recordPath) } else { try? save() }
    }

    /// Restores everything switchd changed.
    func restoreAll() {
        for path in previous.map(\.path).reversed() { restore(path) }
    }

    private func save() throws(SwitchError) {
        let text = previous.map { "\($0.path) \($0.value)\n" }.joined()
        do {
            try File.replaceAtomically(recordPath, with: Array(text.utf8), temporary: recordPath + ".new")
        } catch {
            throw SwitchError("cannot record sysctls in \(recordPath): \(error.errno)")
        }
    }

    /// `net.ipv4.ip_forward` for `/proc/sys/net/ipv4/ip_forward`.
    static func name(_ path: String) -> String {
        path.hasPrefix("/proc/sys/") ? path.dropFirst("/proc/sys/".count).replacingSlashes() : path
    }

    /// The first line of a small file, or nil when it cannot be read.
    static func read(_ path: String) -> String? {
        readFile(path).map(firstLine)
    }

    private static func firstLine(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    /// `firstLine` of a file's bytes, read as `readFile` reads them.
    private static func firstLine(_ bytes: [UInt8]) -> String { firstLine(String(decoding: bytes, as: UTF8.self)) }

    /// A small file's text (at most its first 64 KiB), or nil when it cannot be read.
    static func readFile(_ path: String) -> String? { File.readSmallText(path) }

    /// Writes `value` and a newline to an existing file (a sysctl).
    static func write(_ path: String, _ value: String) throws(SysError) {
        try File.write(path, Array((value + "\n").utf8))
    }

    /// Creates or truncates `path` with `text`, flushed to disk.
    static func writeFile(_ path: String, _ text: String) throws(SysError) {
        try File.write(path, Array(text.utf8), creating: true, sync: true)
    }

    /// Interfaces whose IPv6 router advertisements turning on IPv6 forwarding would silence: those
    /// with `accept_ra = 1` that have routes learned from RAs now (as libvirt checks). Fix: accept_ra=2.
    static func interfacesDependingOnRA() -> [String] {
        let routes = Program.run(["ip", "-6", "route", "show", "proto", "ra"])
        guard routes.status == 0 else { return [] }
        var names: [String] = []
        for line in routes.output.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let i = words.firstIndex(of: "dev"), i + 1 < words.count else { continue }
            let name = String(words[i + 1])
            if !names.contains(name), Self.read("/proc/sys/net/ipv6/conf/\(name)/accept_ra") == "1" { names.append(name) }
        }
        return names
    }
}

private extension Substring {
    func replacingSlashes() -> String { String(map { $0 == "/" ? "." : $0 }) }
}
