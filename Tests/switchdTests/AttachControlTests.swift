// AttachControlTests: the attach and fdb requests, and who may change the switch (controlGroup).
import Glibc
import Switch
import XCTest
@testable import switchd

final class AttachControlTests: XCTestCase {
    private func decode(_ text: String) throws -> ControlRequest { try ControlRequest(line: Array(text.utf8)) }

    private func assertRejected(_ text: String, _ message: String, closes: Bool = false,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
            XCTAssertEqual((error as? ControlError)?.closesConnection, closes, file: file, line: line)
        }
    }

    func testDecodesAttachAndFdb() throws {
        XCTAssertEqual(try decode(#"{"op":"attach","network":"lab"}"#), .attach(network: "lab", kind: .dgram, offload: false))
        XCTAssertEqual(try decode(#"{"op":"attach","network":"lab","kind":"stream","offload":true}"#),
                       .attach(network: "lab", kind: .stream, offload: true))
        XCTAssertEqual(try decode(#"{"op":"attach","network":"lab","kind":"dgram","offload":false}"#),
                       .attach(network: "lab", kind: .dgram, offload: false))
        XCTAssertEqual(try decode(#"{"op":"fdb","network":"lab"}"#), .fdb(network: "lab"))
        for request in [ControlRequest.attach(network: "a", kind: .stream, offload: true), .attach(network: "b", kind: .dgram, offload: false),
                        .fdb(network: "c")] {
            XCTAssertEqual(try ControlRequest(line: Array(request.line.dropLast())), request)
        }
        XCTAssertEqual(String(decoding: ControlRequest.attach(network: "lab", kind: .stream, offload: true).line, as: UTF8.self),
                       "{\"kind\":\"stream\",\"network\":\"lab\",\"offload\":true,\"op\":\"attach\"}\n")
        XCTAssertFalse(ControlRequest.fdb(network: "lab").changesSwitch)
        XCTAssertTrue(ControlRequest.attach(network: "lab", kind: .dgram, offload: false).changesSwitch)
    }

    func testMalformedAttachAndFdb() {
        assertRejected(#"{"op":"attach"}"#, "malformed request: network is missing")
        assertRejected(#"{"op":"attach","network":"lab","kind":"seqpacket"}"#, "attach kind must be dgram or stream, not \"seqpacket\"")
        assertRejected(#"{"op":"attach","network":"lab","kind":1}"#, "malformed request: kind must be a string")
        assertRejected(#"{"op":"attach","network":"lab","offload":1}"#, "malformed request: offload must be true or false")
        assertRejected(#"{"op":"attach","network":"lab","offload":"yes"}"#, "malformed request: offload must be true or false")
        assertRejected(#"{"op":"attach","network":"lab","fd":3}"#, "malformed request: unknown key \"fd\"")
        assertRejected(#"{"op":"fdb"}"#, "malformed request: network is missing")
        assertRejected(#"{"op":"fdb","network":"lab","json":true}"#, "malformed request: unknown key \"json\"")
        // Input that is no request at all closes the connection; a request with a bad field does not.
        assertRejected("garbage", "malformed request: not valid JSON", closes: true)
        assertRejected("[1]", "malformed request: not a JSON object", closes: true)
        assertRejected("{\"op\":\"status\"", "malformed request: not valid JSON", closes: true)
    }

    /// Who may change the switch: table-driven over peers and configurations (docs/DESIGN.md §6).
    func testAccessDecisions() {
        let daemon: UInt32 = 990
        let group = ControlGroup(name: "switchd", gid: 5000)
        struct Case { var name: String; var peer: PeerCredentials; var group: ControlGroup?; var allowed: Bool }
        let cases = [
            Case(name: "root", peer: PeerCredentials(pid: 1, uid: 0, gid: 0), group: nil, allowed: true),
            Case(name: "root, group configured", peer: PeerCredentials(pid: 1, uid: 0, gid: 0), group: group, allowed: true),
            Case(name: "the daemon's own user", peer: PeerCredentials(pid: 2, uid: daemon, gid: 100), group: nil, allowed: true),
            Case(name: "member by primary gid", peer: PeerCredentials(pid: 3, uid: 1000, gid: 5000), group: group, allowed: true),
            Case(name: "member by supplementary gid",
                 peer: PeerCredentials(pid: 4, uid: 1001, gid: 1001, groups: [27, 5000, 100]), group: group, allowed: true),
            Case(name: "non-member", peer: PeerCredentials(pid: 5, uid: 1002, gid: 1002, groups: [27, 100]), group: group, allowed: false),
            Case(name: "no group configured", peer: PeerCredentials(pid: 6, uid: 1000, gid: 5000, groups: [5000]), group: nil, allowed: false),
        ]
        for c in cases {
            let policy = AccessPolicy(privilegedUIDs: [0, daemon], group: c.group)
            XCTAssertEqual(policy.mayChange(c.peer), c.allowed, c.name)
            // And through the service: a refusal names the op and the group, reading always works.
            let service = ControlService(handler: FakeHandler(), privilegedUIDs: [0, daemon], controlGroup: c.group)
            let reply = service.reply(to: Array(#"{"op":"portDel","network":"lab","port":"p1"}"#.utf8), from: c.peer)
            XCTAssertEqual(reply.ok, c.allowed, c.name)
            XCTAssertTrue(service.reply(to: Array(#"{"op":"status"}"#.utf8), from: c.peer).ok, c.name)
        }
        let member = AccessPolicy(privilegedUIDs: [0], group: group)
        XCTAssertEqual(member.refusal(op: "attach", peer: PeerCredentials(pid: 7, uid: 1002, gid: 1002)),
                       "permission denied: attach needs root or membership of group switchd (uid 1002 may only read status, leases, fdb and forward list)")
    }

    func testAttachThroughTheServiceWithoutAServerIsUndone() throws {
        let handler = FakeHandler()
        let service = ControlService(handler: handler, privilegedUIDs: [0])
        let root = PeerCredentials(pid: 4321, uid: 0, gid: 0)
        let reply = service.reply(to: Array(#"{"op":"attach","network":"lab","kind":"stream","offload":true}"#.utf8), from: root)
        XCTAssertEqual(reply, .success(port: "stream-1"))
        XCTAssertEqual(handler.attached.map(\.peer), ["attach:4321"])
        XCTAssertEqual(handler.attached.map(\.offload), [true])
        // reply() cannot pass the socket on, so it removes the port again at once.
        XCTAssertEqual(handler.removed.map(\.1), ["stream-1"])
        let failed = service.respond(to: Array(#"{"op":"attach","network":"dev"}"#.utf8), from: root)
        XCTAssertEqual(failed.reply, .failure("no network dev"))
        XCTAssertNil(failed.attached)
    }
}
