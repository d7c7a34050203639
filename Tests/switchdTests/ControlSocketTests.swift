// ControlSocketTests: the server and client over a real unix socket in a temporary directory, with a fake handler.
import Glibc
import Switch
import XCTest
@testable import switchd
import SwitchSys

final class ControlSocketTests: XCTestCase {
    private var dir = ""
    private var path: String { dir + "/control.sock" }

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "/switchd-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func startServer(_ handler: FakeHandler = FakeHandler()) throws -> ControlServer {
        let server = try ControlServer(path: path, group: nil)
        server.serve(ControlService(handler: handler, privilegedUIDs: [geteuid()]))
        return server
    }

    /// A server that takes this process's uid for an unprivileged one (no privileged uids at all).
    private func startUnprivilegedServer(_ limits: ConnectionLimits) throws -> ControlServer {
        let server = try ControlServer(path: path, group: nil, limits: limits)
        server.serve(ControlService(handler: FakeHandler(), privilegedUIDs: []))
        return server
    }

    /// Waits up to `seconds` for `condition`.
    private func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// Sends raw bytes on a fresh connection, half-closes, and returns every reply line.
    private func exchange(_ bytes: [UInt8]) throws -> [String] {
        let socket = try UnixSocket.connect(to: path)
        try socket.write(bytes)
        _ = Glibc.shutdown(socket.fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try socket.read(into: &buffer)
            if n == 0 { break }
            received += buffer[..<n]
        }
        return String(decoding: received, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func testClientAndServer() throws {
        let handler = FakeHandler()
        let server = try startServer(handler)
        defer { server.stop() }
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)

        let client = ControlClient(path: path)
        XCTAssertEqual(try client.send(.status).networks, handler.networks)
        XCTAssertEqual(try client.send(.portAdd(network: "lab", spec: .link(interface: "veth0"))).port, "p2")
        XCTAssertNoThrow(try client.send(.portDel(network: "lab", port: "p1")))
        XCTAssertThrowsError(try client.send(.portDel(network: "lab", port: "p7"))) { error in
            XCTAssertEqual("\(error)", "no port p7 in lab")
        }
    }

    func testSeveralRequestsOnOneConnectionAndBadRequests() throws {
        let server = try startServer()
        defer { server.stop() }
        let replies = try exchange(Array("{\"op\":\"portDel\",\"network\":\"lab\",\"port\":\"p1\"}\n\n{\"op\":\"nope\"}\n{\"op\":\"status\"}".utf8))
        XCTAssertEqual(replies.count, 3)
        XCTAssertEqual(replies[0], #"{"ok":true}"#)
        XCTAssertEqual(replies[1], #"{"error":"unknown op \"nope\" (expected status, portAdd, portDel, attach, fdb, capture, captureStats, forwardAdd, forwardDel, forwardList)","ok":false}"#)
        XCTAssertTrue(replies[2].hasPrefix(#"{"networks":[{"#), replies[2])
        // The daemon is unaffected.
        XCTAssertNoThrow(try ControlClient(path: path).send(.status))
    }

    func testGarbageGetsAnErrorAndTheConnectionCloses() throws {
        let server = try startServer()
        defer { server.stop() }
        for garbage in ["not json\n{\"op\":\"status\"}\n", "\u{0}\u{1}\u{ff}\n{\"op\":\"status\"}\n", "[1,2]\n{\"op\":\"status\"}\n"] {
            let replies = try exchange(Array(garbage.utf8))
            XCTAssertEqual(replies.count, 1, "\(replies)")
            XCTAssertTrue(replies.first?.hasPrefix(#"{"error":"malformed request: not"#) == true, "\(replies)")
        }
        // Truncated: no newline, then the client closes; the fragment is answered.
        XCTAssertEqual(try exchange(Array("{\"op\":\"stat".utf8)), [#"{"error":"malformed request: not valid JSON","ok":false}"#])
        XCTAssertNoThrow(try ControlClient(path: path).send(.status))
    }

    func testOversizedRequestGetsAnErrorAndTheConnectionCloses() throws {
        let server = try startServer()
        defer { server.stop() }
        let huge = Array(("{\"op\":\"status\",\"pad\":\"" + String(repeating: "x", count: 70_000) + "\"}\n{\"op\":\"status\"}\n").utf8)
        XCTAssertEqual(try exchange(huge), [#"{"error":"request longer than 65536 bytes","ok":false}"#])
        XCTAssertNoThrow(try ControlClient(path: path).send(.status))
    }

    func testAttachPassesASocketAndTheConnectionIsItsLease() throws {
        let handler = FakeHandler()
        let server = try startServer(handler)
        defer { server.stop() }
        var (connection, socket) = try ControlClient(path: path).attach(.attach(network: "lab", kind: .dgram, offload: false))
        defer { close(socket) }
        XCTAssertEqual(fcntl(socket, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "received close-on-exec; attach clears it on fd N only")
        XCTAssertEqual(handler.attached.map(\.id), ["dgram-1"])
        XCTAssertEqual(handler.attached.first?.peer, "attach:\(getpid())")
        // The passed end is connected to the port's end.
        let frame: [UInt8] = Array(repeating: 0xab, count: 60)
        XCTAssertEqual(send(socket, frame, frame.count, 0), 60)
        var received = [UInt8](repeating: 0, count: 100)
        XCTAssertEqual(recv(handler.attached[0].socket, &received, received.count, 0), 60)
        // The connection still answers requests; closing it ends the lease and removes the port.
        try connection.write(ControlRequest.status.line)
        XCTAssertTrue(handler.removed.isEmpty)
        connection = try UnixSocket.connect(to: path)  // drops the leased connection
        let deadline = Date().addingTimeInterval(5)
        while handler.removed.isEmpty && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(handler.removed.map(\.1), ["dgram-1"])
        // A refused attach sends no socket and throws its message.
        XCTAssertThrowsError(try ControlClient(path: path).attach(.attach(network: "dev", kind: .stream, offload: false))) { error in
            XCTAssertEqual("\(error)", "no network dev")
        }
    }

    func testRefusesWhenAnotherDaemonAnswers() throws {
        let server = try startServer()
        defer { server.stop() }
        XCTAssertThrowsError(try ControlServer(path: path, group: nil)) { error in
            XCTAssertEqual("\(error)", "another switchd is already running at \(path)")
        }
    }

    func testReplacesAStaleSocket() throws {
        // A socket file nobody listens on, as a killed daemon leaves it: the listener closes, the file stays.
        do { _ = try UnixSocket.listen(at: path) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let server = try startServer()
        defer { server.stop() }
        XCTAssertNoThrow(try ControlClient(path: path).send(.status))
    }

    func testNoDaemon() {
        XCTAssertThrowsError(try ControlClient(path: path).send(.status)) { error in
            XCTAssertEqual("\(error)", "no switchd running at \(path)")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertThrowsError(try ControlServer(path: path, group: nil)) { error in
            XCTAssertEqual("\(error)", "\(path) exists and is not a socket")
        }
    }

    func testStopRemovesTheSocket() throws {
        let server = try startServer()
        server.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertThrowsError(try ControlClient(path: path).send(.status))
    }

    func testAConnectionOverTheUIDCapGetsTheReasonAndTheSlotComesBack() throws {
        let server = try startUnprivilegedServer(ConnectionLimits(total: 8, reserved: 2, perUID: 2, idleTimeout: 30))
        defer { server.stop() }
        let uid = geteuid()
        var held = [try UnixSocket.connect(to: path), try UnixSocket.connect(to: path)]
        // The client prints the daemon's reason, not "write: Broken pipe", whichever of its write and the
        // daemon's close comes first.
        for _ in 0..<20 {
            XCTAssertThrowsError(try ControlClient(path: path).send(.status)) { error in
                XCTAssertEqual("\(error)", "too many control connections for uid \(uid) (limit 2)")
            }
        }
        held.removeLast()
        XCTAssertTrue(eventually { (try? ControlClient(path: path).send(.status)) != nil }, "the closed connection's slot was not given back")
        XCTAssertEqual(held.count, 1)
    }

    func testAnIdleConnectionIsClosedAfterTheIdleTimeout() throws {
        let server = try startUnprivilegedServer(ConnectionLimits(total: 8, reserved: 2, perUID: 1, idleTimeout: 1))
        defer { server.stop() }
        let idle = try UnixSocket.connect(to: path)
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 256)
        var received = 0
        while true {
            let n = try idle.read(into: &buffer)  // an idle close is an EOF here, nothing else
            if n == 0 { break }
            received += n
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(received, 0, "an idle connection is closed without a reply")
        XCTAssertGreaterThan(elapsed, 0.8)
        XCTAssertLessThan(elapsed, 4)
        // Its slot (the uid's only one) is free again.
        XCTAssertTrue(eventually { (try? ControlClient(path: path).send(.status)) != nil })
    }

    func testTheClientReadsTheRefusalWhenItsWriteFails() throws {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let client = UnixSocket(fd: fds[0])
        do {
            // The daemon's side: the refusal line, then gone before the request is written.
            let daemon = UnixSocket(fd: fds[1])
            try daemon.write(ControlReply.failure("too many control connections for uid 1000 (limit 8)").line)
        }
        XCTAssertThrowsError(try ControlClient.exchange(.status, on: client, path: path)) { error in
            XCTAssertEqual("\(error)", "too many control connections for uid 1000 (limit 8)")
        }
        // Closed without a word: the message says so, with the write's error.
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        close(fds[1])
        XCTAssertThrowsError(try ControlClient.exchange(.status, on: UnixSocket(fd: fds[0]), path: path)) { error in
            XCTAssertEqual("\(error)", "switchd at \(path) closed the connection before reading the request (write: Broken pipe) and sent no reason")
        }
    }
}
