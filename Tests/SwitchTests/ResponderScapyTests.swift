// The responders' replies checked by scapy (ProtoTests/Golden/responders.py check), an implementation independent of ours.
import Foundation
import Proto
import TestSupport
import XCTest
@testable import Switch

final class ResponderScapyTests: XCTestCase {
    struct Case: Encodable {
        var name: String
        var kind: String
        var request: String
        var reply: String
        var router_lifetime = 0
        var mtu = 1500
    }

    static let script = Scapy.script("ProtoTests/Golden/responders.py")

    /// Runs the checker over `cases`; returns its exit status and output.
    private func check(_ cases: [Case]) throws -> (status: Int32, output: String) {
        let manifest = FileManager.default.temporaryDirectory.appendingPathComponent("switchd-responders-\(UUID().uuidString).json")
        try JSONEncoder().encode(cases).write(to: manifest)
        defer { try? FileManager.default.removeItem(at: manifest) }
        return try Scapy.run([Scapy.python, Self.script, "check", manifest.path])
    }

    /// What our responders produce for every golden request, and two unsolicited advertisements.
    private func ourReplies() -> [Case] {
        var cases: [Case] = []
        for pair in ResponderGolden.pairs {
            var responders = ResponderSet()
            let request = hexBytes(pair.request)
            guard let result = responders.run(request).first(where: { $0.responder == pair.responder }),
                  case .reply = result.verdict else { XCTFail("\(pair.name) not answered"); continue }
            let kind = switch pair.responder {
            case "arp": "arp"
            case "ndp": "na"
            case "ra": "ra"
            default: request[12] == 0x08 ? "echo4" : "echo6"
            }
            cases.append(Case(name: pair.name, kind: kind, request: pair.request, reply: hexString(result.reply)))
        }
        for (name, gateway, lifetime, mtu) in [("unsolicited", ResponderAddr.gateway(), 0, 1500),
                                               ("unsolicitedShared", ResponderAddr.gateway(routesBeyondHost: true, mtu: 9000), 600, 9000)] {
            var advertiser = RouterAdvertiser(gateway: gateway)
            var buffer = [UInt8](repeating: 0, count: 1500)
            let length = buffer.withUnsafeMutableBytes { advertiser.unsolicited(into: $0) }
            cases.append(Case(name: name, kind: "ra", request: "", reply: hexString(Array(buffer[0..<length])),
                              router_lifetime: lifetime, mtu: mtu))
        }
        return cases
    }

    func testScapyAcceptsEveryReply() throws {
        try Scapy.require()
        let cases = ourReplies()
        XCTAssertEqual(cases.count, ResponderGolden.pairs.count + 2)
        let result = try check(cases)
        XCTAssertEqual(result.status, 0, "responders.py check reported problems:\n\(result.output)")
        XCTAssertTrue(result.output.contains("\(cases.count) cases, 0 problems"), result.output)
    }

    /// The checker is not vacuous: replies broken in ways the byte comparison would also catch are reported.
    func testScapyRejectsBrokenReplies() throws {
        try Scapy.require()
        var broken: [Case] = []
        for var c in ourReplies() {
            var reply = hexBytes(c.reply)
            switch c.kind {
            case "na", "ra": reply[21] = 64                  // hop limit
            case "arp": reply[21] = 1                        // operation
            case "echo4": reply[24] ^= 0x01                  // IPv4 header checksum
            default: reply[reply.count - 1] ^= 0xFF          // data and checksum
            }
            c.reply = hexString(reply)
            broken.append(c)
        }
        let result = try check(broken)
        XCTAssertEqual(result.status, 1, result.output)
        let failures = result.output.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        let named = Set(failures.map { $0.split(separator: " ")[1].dropLast() })
        XCTAssertEqual(named.count, broken.count, result.output)
    }
}
