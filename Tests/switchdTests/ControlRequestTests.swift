// ControlRequestTests: request decoding, replies and permissions against a fake handler; line framing.
import Proto
import Switch
import XCTest
@testable import switchd

final class ControlRequestTests: XCTestCase {
    private let root = PeerCredentials(pid: 1, uid: 0, gid: 0)
    private let user = PeerCredentials(pid: 2, uid: 4242, gid: 4242)

    private func decode(_ text: String) throws -> ControlRequest { try ControlRequest(line: Array(text.utf8)) }

    private func assertRejected(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    /// The reply line a service with `handler` gives `peer` for `text`, as text without the newline.
    private func replyLine(_ text: String, handler: FakeHandler = FakeHandler(), peer: PeerCredentials? = nil) -> String {
        let service = ControlService(handler: handler, privilegedUIDs: [0])
        let line = service.reply(to: Array(text.utf8), from: peer ?? root).line
        XCTAssertEqual(line.last, 0x0A)
        XCTAssertEqual(line.filter { $0 == 0x0A }.count, 1, "a reply is exactly one line")
        return String(decoding: line.dropLast(), as: UTF8.self)
    }

    func testDecodesEveryOp() throws {
        XCTAssertEqual(try decode(#"{"op":"status"}"#), .status)
        XCTAssertEqual(try decode(#"{"op":"portAdd","network":"lab","tap":"lab0"}"#),
                       .portAdd(network: "lab", spec: .tap(name: "lab0", netns: nil, mac: nil)))
        XCTAssertEqual(try decode(#"{"op":"portAdd","network":"lab","tap":"lab0","netns":"ns1","mac":"02:00:00:00:00:07"}"#),
                       .portAdd(network: "lab", spec: .tap(name: "lab0", netns: "ns1", mac: MACAddress(2, 0, 0, 0, 0, 7))))
        XCTAssertEqual(try decode(#"{"op":"portAdd","network":"lab","link":"veth0"}"#),
                       .portAdd(network: "lab", spec: .link(interface: "veth0")))
        XCTAssertEqual(try decode(#"{"network":"lab","port":"p3","op":"portDel"}"#), .portDel(network: "lab", port: "p3"))
    }

    func testRequestsRoundTripThroughTheirLine() throws {
        for request in [ControlRequest.status, .portDel(network: "a", port: "p1"), .portAdd(network: "a", spec: .link(interface: "eth0")),
                        .portAdd(network: "a", spec: .tap(name: "t", netns: "n", mac: MACAddress(2, 1, 2, 3, 4, 5)))] {
            let line = request.line
            XCTAssertEqual(line.last, 0x0A)
            XCTAssertEqual(try ControlRequest(line: Array(line.dropLast())), request)
        }
        XCTAssertEqual(String(decoding: ControlRequest.status.line, as: UTF8.self), "{\"op\":\"status\"}\n")
    }

    func testMalformedRequests() {
        assertRejected("", "malformed request: not valid JSON")
        assertRejected("{\"op\":", "malformed request: not valid JSON")
        assertRejected("[1,2]", "malformed request: not a JSON object")
        assertRejected("\"status\"", "malformed request: not a JSON object")
        assertRejected("{}", "malformed request: op is missing")
        assertRejected(#"{"op":7}"#, "malformed request: op must be a string")
        assertRejected(#"{"op":"reboot"}"#, "unknown op \"reboot\" (expected status, portAdd, portDel, attach, fdb, capture, captureStats, forwardAdd, forwardDel, forwardList)")
        assertRejected(#"{"op":"status","verbose":true}"#, "malformed request: unknown key \"verbose\"")
        assertRejected(#"{"op":"portAdd","tap":"t0"}"#, "malformed request: network is missing")
        assertRejected(#"{"op":"portAdd","network":"lab"}"#, "portAdd needs tap or link")
        assertRejected(#"{"op":"portAdd","network":"lab","tap":5}"#, "malformed request: tap must be a string")
        assertRejected(#"{"op":"portAdd","network":"lab","link":"eth0","mac":"02:00:00:00:00:01"}"#,
                       "a link port takes only network and link")
        assertRejected(#"{"op":"portAdd","network":"lab","tap":"t0","mac":"ff:ff:ff:ff:ff:ff"}"#,
                       "\"ff:ff:ff:ff:ff:ff\" is not a unicast MAC address like 02:00:00:00:00:01")
        assertRejected(#"{"op":"portAdd","network":"lab","tap":"a/b"}"#, "\"a/b\" is not a valid interface name")
        assertRejected(#"{"op":"portAdd","network":"lab","tap":"t0","netns":"../x"}"#, "\"../x\" is not a valid network namespace name")
        assertRejected(#"{"op":"portDel","network":"lab"}"#, "malformed request: port is missing")
    }

    func testServiceReplies() throws {
        let handler = FakeHandler()
        XCTAssertEqual(replyLine(#"{"op":"portAdd","network":"lab","tap":"lab0"}"#, handler: handler), #"{"ok":true,"port":"p2"}"#)
        XCTAssertEqual(handler.added.map(\.1), [.tap(name: "lab0", netns: nil, mac: nil)])
        XCTAssertEqual(replyLine(#"{"op":"portDel","network":"lab","port":"p1"}"#, handler: handler), #"{"ok":true}"#)
        XCTAssertEqual(handler.removed.map(\.1), ["p1"])
        // Dataplane errors come back as messages.
        XCTAssertEqual(replyLine(#"{"op":"portDel","network":"lab","port":"p9"}"#), #"{"error":"no port p9 in lab","ok":false}"#)
        XCTAssertEqual(replyLine(#"{"op":"portAdd","network":"dev","link":"eth0"}"#), #"{"error":"no network dev","ok":false}"#)
        // Malformed input is a reply too, never a crash.
        XCTAssertEqual(replyLine("\u{0}\u{1}garbage"), #"{"error":"malformed request: not valid JSON","ok":false}"#)

        let status = try ControlReply(line: Array(replyLine(#"{"op":"status"}"#).utf8))
        XCTAssertEqual(status, .success(networks: handler.networks))
    }

    func testOnlyPrivilegedPeersChangeTheSwitch() {
        let handler = FakeHandler()
        XCTAssertTrue(replyLine(#"{"op":"status"}"#, handler: handler, peer: user).hasPrefix(#"{"networks":"#))
        func denied(_ op: String) -> String {
            #"{"error":"permission denied: \#(op) needs root (uid 4242 may only read status, leases, fdb and forward list; controlGroup in the configuration names a group that may)","ok":false}"#
        }
        XCTAssertEqual(replyLine(#"{"op":"portAdd","network":"lab","link":"eth0"}"#, handler: handler, peer: user), denied("portAdd"))
        XCTAssertEqual(replyLine(#"{"op":"portDel","network":"lab","port":"p1"}"#, handler: handler, peer: user), denied("portDel"))
        XCTAssertEqual(replyLine(#"{"op":"attach","network":"lab"}"#, handler: handler, peer: user), denied("attach"))
        XCTAssertTrue(handler.attached.isEmpty)
        // Reading the forwarding table is open to all.
        XCTAssertEqual(replyLine(#"{"op":"fdb","network":"lab"}"#, handler: handler, peer: user),
                       #"{"fdb":[{"age":3,"mac":"02:00:00:00:00:01","port":"p1"}],"ok":true}"#)
        XCTAssertTrue(handler.added.isEmpty)
        XCTAssertTrue(handler.removed.isEmpty)
        // A malformed request is reported as such whoever sends it.
        XCTAssertEqual(replyLine("{", handler: handler, peer: user), #"{"error":"malformed request: not valid JSON","ok":false}"#)
    }

    func testLineReader() {
        var reader = LineReader(limit: 8)
        XCTAssertEqual(reader.append(Array("ab".utf8)), [])
        XCTAssertEqual(reader.append(Array("c\nde\n\nf".utf8)), [.line(Array("abc".utf8)), .line(Array("de".utf8)), .line([])])
        XCTAssertEqual(reader.finish(), Array("f".utf8))
        XCTAssertNil(reader.finish())
        // Exactly the limit is fine, one more byte is not, with or without its newline yet.
        XCTAssertEqual(reader.append(Array("12345678\n".utf8)), [.line(Array("12345678".utf8))])
        XCTAssertEqual(reader.append(Array("123456789\n".utf8)), [.tooLong])
        var streaming = LineReader(limit: 8)
        XCTAssertEqual(streaming.append(Array("ok\n12345".utf8)), [.line(Array("ok".utf8))])
        XCTAssertEqual(streaming.append(Array("6789".utf8)), [.tooLong])
        XCTAssertEqual(LineReader().limit, 65536)
    }
}
