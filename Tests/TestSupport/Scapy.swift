// Scapy: runs the committed scapy scripts that check our bytes with an implementation independent of ours.
import Foundation
import XCTest

/// Debian's Python with scapy (`python3-scapy`), and the checker scripts under `Tests/`.
public enum Scapy {
    /// Debian's interpreter: its packages (scapy) are not those of the `python3` first on PATH.
    public static let python = "/usr/bin/python3"

    public static let available = FileManager.default.isExecutableFile(atPath: python)
        && (try? run([python, "-c", "import scapy.all"]).status) == 0

    /// Throws XCTSkip when python3 or scapy is missing; under CI=true that is a recorded failure.
    public static func require() throws {
        guard !available else { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("\(python) with scapy is required when CI=true")
        }
        throw XCTSkip("\(python) with scapy not available")
    }

    /// The absolute path of `relative` under the repository's `Tests/` folder.
    public static func script(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).path
    }

    /// Runs a program; returns its exit status and its output (stdout and stderr together).
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Writes `manifest` to a temporary file and runs `python SCRIPT [ARGUMENTS...] MANIFEST`; fails
    /// the test unless the checker exits 0 and reports "CASES cases, 0 problems".
    public static func check(script: String, arguments: [String] = [], manifest: Data, cases: Int,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        try require()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchd-scapy-\(UUID().uuidString).json")
        try manifest.write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let result = try run([python, script] + arguments + [path.path])
        let name = URL(fileURLWithPath: script).lastPathComponent
        XCTAssertEqual(result.status, 0, "\(name) reported problems:\n\(result.output)", file: file, line: line)
        XCTAssertTrue(result.output.contains("\(cases) cases, 0 problems"), result.output, file: file, line: line)
    }
}
