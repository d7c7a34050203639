// Runs check_segments.py (scapy, an implementation independent of Proto) over pcaps the tests write.
import Foundation
import TestSupport
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
    static let script = Scapy.script("ProtoTests/Segmentation/check_segments.py")

    /// Writes the pcaps, payloads and manifest to a temporary directory and runs the script once.
    static func check(_ cases: [ScapyCase], file: StaticString = #filePath, line: UInt = #line) throws {
        try Scapy.require()
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
        try Scapy.check(script: script, manifest: try JSONEncoder().encode(written), cases: cases.count, file: file, line: line)
    }
}
