// Runs check_segments.py (scapy, an implementation independent of Proto) over pcaps the tests write.
import Foundation
import XCTest

/// One case for check_segments.py; see the script's docstring for what each kind checks.
struct ScapyCase: Encodable {
    var name: String
    var kind = "segments"
    var pcap = ""
    var payload = ""
    var mtu = 0
    var segment_payload = 0
    var segments = 0
    var seq0: UInt32 = 0
    var flags: UInt8 = 0
    var ip_id0: UInt16 = 0
    /// The frames, written to `pcap` by `ScapyChecker.check`.
    var frames: [[UInt8]] = []
    /// The expected reassembled payload, written to `payload`.
    var expectedPayload: [UInt8] = []

    enum CodingKeys: String, CodingKey {
        case name, kind, pcap, payload, mtu, segment_payload, segments, seq0, flags, ip_id0
    }
}

enum ScapyChecker {
    static let python = "/usr/bin/python3"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("check_segments.py").path

    /// Throws XCTSkip when python3 or scapy is missing, unless CI=true (then the test fails).
    static func requireScapy() throws {
        let available = FileManager.default.isExecutableFile(atPath: python)
            && (try? run([python, "-c", "import scapy.all"]).status) == 0
        guard !available else { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("\(python) with scapy is required when CI=true")
            throw XCTSkip("scapy missing")
        }
        throw XCTSkip("\(python) with scapy not available")
    }

    /// Writes the pcaps, payloads and manifest to a temporary directory and runs the script once.
    static func check(_ cases: [ScapyCase], file: StaticString = #filePath, line: UInt = #line) throws {
        try requireScapy()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchd-segmentation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var written = cases
        for index in written.indices {
            let pcap = directory.appendingPathComponent("case\(index).pcap")
            try Data(pcapBytes(written[index].frames)).write(to: pcap)
            written[index].pcap = pcap.path
            let payload = directory.appendingPathComponent("case\(index).payload")
            try Data(written[index].expectedPayload).write(to: payload)
            written[index].payload = payload.path
        }
        let manifest = directory.appendingPathComponent("manifest.json")
        try JSONEncoder().encode(written).write(to: manifest)
        let result = try run([python, script, manifest.path])
        XCTAssertEqual(result.status, 0, "check_segments.py reported problems:\n\(result.output)", file: file, line: line)
        XCTAssertTrue(result.output.contains("\(cases.count) cases, 0 problems"), result.output, file: file, line: line)
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
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
}
