// SwitchSys File, Clock and Datagram: the one small-file rule, atomic replacement, and UDP between two loopback sockets.
import Glibc
import Proto
import XCTest
@testable import SwitchSys

final class FileTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/switchsys-file-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        dir = String(cString: try XCTUnwrap(made))
    }

    override func tearDown() { _ = Program.run(["rm", "-rf", dir]) }

    func testReadSmallReadsToTheEndAndKeepsItsLimit() throws {
        let path = dir + "/small"
        try File.replaceAtomically(path, with: Array(repeating: 0x61, count: 100), temporary: path + ".tmp")
        XCTAssertEqual(try File.readSmall(path).count, 100)
        XCTAssertEqual(try File.readSmall(path, limit: 10, truncating: true), Array(repeating: 0x61, count: 10))
        XCTAssertThrowsError(try File.readSmall(path, limit: 10)) { error in
            XCTAssertEqual((error as? SysError)?.errno, .EFBIG)
        }
        XCTAssertEqual(File.readSmallText(path)?.count, 100)
    }

    func testMissingFileIsAnOpenError() {
        XCTAssertThrowsError(try File.readSmall(dir + "/missing")) { error in
            XCTAssertEqual((error as? SysError)?.call, "open")
            XCTAssertEqual((error as? SysError)?.errno, .ENOENT)
        }
        XCTAssertNil(File.readSmallText(dir + "/missing"))
    }

    func testReplaceAtomicallyReplacesAndLeavesNoTemporary() throws {
        let path = dir + "/state"
        try File.replaceAtomically(path, with: Array("one\n".utf8), temporary: path + ".tmp", syncDirectory: true)
        try File.replaceAtomically(path, with: Array("two\n".utf8), temporary: path + ".tmp", syncDirectory: true)
        XCTAssertEqual(File.readSmallText(path), "two\n")
        XCTAssertNil(File.kind(at: path + ".tmp"))
        XCTAssertEqual(File.kind(at: path), .regular)
        XCTAssertEqual(File.kind(at: dir), .directory)
    }

    func testReplaceIntoAMissingDirectoryNamesTheTemporary() {
        let path = dir + "/missing/state"
        XCTAssertThrowsError(try File.replaceAtomically(path, with: [1], temporary: path + ".tmp")) { error in
            XCTAssertEqual("\(error)", "create \(path).tmp: \(String(cString: strerror(ENOENT)))")
        }
    }
}

final class ClockTests: XCTestCase {
    func testClocksAgreeWithClockGettime() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let before = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        let now = Clock.monotonicNanoseconds()
        XCTAssertGreaterThanOrEqual(now, before)
        XCTAssertLessThan(now - before, 1_000_000_000)
        XCTAssertGreaterThan(Clock.realtimeNanoseconds(), 1_600_000_000 * 1_000_000_000)
    }
}

final class DatagramTests: XCTestCase {
    func testSendAndReceiveOnLoopback() throws {
        let a = Socket.udp(AF_INET), b = Socket.udp(AF_INET)
        XCTAssertGreaterThanOrEqual(a, 0)
        defer { close(a); close(b) }
        let any = InetSocketAddress(.v4(IPv4Address(127, 0, 0, 1)), port: 0)
        XCTAssertEqual(any.withSockaddr { bind(b, $0, $1) }, 0)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(b, $0, &length) } }
        let target = try XCTUnwrap(InetSocketAddress(storage))
        XCTAssertEqual(target.description, "127.0.0.1:\(target.port)")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        guard case .wouldBlock = Datagram.receive(b, into: buffer) else { return XCTFail("nothing was sent yet") }
        XCTAssertNil([UInt8]([1, 2, 3]).withUnsafeBytes { Datagram.send(a, $0, to: target) })
        var received: Datagram.Received = .wouldBlock
        for _ in 0..<100 {
            received = Datagram.receive(b, into: buffer)
            if case .wouldBlock = received { usleep(1000) } else { break }
        }
        guard case .datagram(let count, let sender) = received else { return XCTFail("\(received)") }
        XCTAssertEqual(count, 3)
        XCTAssertEqual(Array(buffer[..<3]), [1, 2, 3])
        XCTAssertEqual(sender?.address, .v4(IPv4Address(127, 0, 0, 1)))
    }
}
