// FDPassing, SharedMemory and Fence: descriptors over a unix socketpair (limits, partial reads, end of
// input), shared mappings of one file seen from two mappings, and the ring-index accessors.
import Glibc
import XCTest
@testable import SwitchSys

final class FDPassingTests: XCTestCase {
    private var a: Int32 = -1
    private var b: Int32 = -1

    override func setUpWithError() throws {
        (a, b) = try Socket.connectedPair(Int32(SOCK_STREAM.rawValue))
    }

    override func tearDown() {
        close(a)
        close(b)
    }

    private func openDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var n = 0
        while readdir(dir) != nil { n += 1 }
        return n
    }

    private func receive(capacity: Int = 64, fds: inout [Int32]) throws -> FDPassing.Received? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var slots = [Int32](repeating: -1, count: FDPassing.maxDescriptors)
        let r = try buffer.withUnsafeMutableBytes { raw in
            try slots.withUnsafeMutableBufferPointer { try FDPassing.receive(socket: b, into: raw, descriptors: $0.baseAddress!, capacity: $0.count) }
        }
        fds = Array(slots.prefix(r?.descriptorCount ?? 0))
        return r
    }

    func testBytesAndDescriptorsArriveTogetherCloseOnExec() throws {
        let e1 = try EventFD.open(), e2 = try EventFD.open()
        defer { close(e1); close(e2) }
        try Array("hello".utf8).withUnsafeBytes { try FDPassing.send(socket: a, $0, descriptors: [e1, e2]) }
        var fds: [Int32] = []
        let r = try XCTUnwrap(try receive(fds: &fds))
        XCTAssertEqual(r, FDPassing.Received(byteCount: 5, descriptorCount: 2))
        XCTAssertEqual(fds.count, 2)
        for fd in fds {
            XCTAssertNotEqual(fd, e1)
            XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
            close(fd)
        }
    }

    func testDescriptorsBeyondEightAreClosed() throws {
        let before = openDescriptors()
        var mine: [Int32] = []
        for _ in 0 ..< 11 { mine.append(try EventFD.open()) }
        let n = [UInt8](repeating: 7, count: 3).withUnsafeBytes { FDPassing.sendWithDescriptors(a, $0.baseAddress!, 3, mine) }
        XCTAssertEqual(n, 3)
        for fd in mine { close(fd) }
        var fds: [Int32] = []
        let r = try XCTUnwrap(try receive(fds: &fds))
        XCTAssertEqual(r.descriptorCount, 8)
        XCTAssertTrue(r.descriptorsDropped)
        for fd in fds { close(fd) }
        XCTAssertEqual(openDescriptors(), before, "the three past the limit were closed, not leaked")
    }

    func testShortBufferLeavesTheRestForTheNextRead() throws {
        let e = try EventFD.open()
        defer { close(e) }
        try [UInt8](0 ..< 20).withUnsafeBytes { try FDPassing.send(socket: a, $0, descriptors: [e]) }
        var fds: [Int32] = []
        XCTAssertEqual(try receive(capacity: 12, fds: &fds), FDPassing.Received(byteCount: 12, descriptorCount: 1))
        fds.forEach { close($0) }
        XCTAssertEqual(try receive(capacity: 12, fds: &fds), FDPassing.Received(byteCount: 8, descriptorCount: 0))
    }

    func testNothingWaitingIsNilAndEndOfInputIsZero() throws {
        var fds: [Int32] = []
        XCTAssertNil(try receive(fds: &fds))
        shutdown(a, Int32(SHUT_WR))
        XCTAssertEqual(try receive(fds: &fds)?.byteCount, 0)
    }

    func testSendRefusesMoreThanEightDescriptors() {
        XCTAssertThrowsError(try [UInt8(1)].withUnsafeBytes { try FDPassing.send(socket: a, $0, descriptors: Array(repeating: 0, count: 9)) })
    }

    func testSharedMappingsOfOneFileSeeEachOther() throws {
        let fd = try SharedMemory.makeAnonymousFile(size: 3 * 4096)
        defer { close(fd) }
        let one = try SharedMemory.map(fd: fd, size: 4096, offset: 8192)
        let two = try SharedMemory.map(fd: fd, size: 8192, offset: 4096)
        defer { SharedMemory.unmap(one); SharedMemory.unmap(two) }
        XCTAssertEqual(one.length, 3 * 4096)
        (one.base + 8192).storeBytes(of: 0xfeed_beef, as: UInt32.self)
        XCTAssertEqual((two.base + 8192).load(as: UInt32.self), 0xfeed_beef)
    }

    func testMappingPastTheFileOrEmptyIsRefused() throws {
        let fd = try SharedMemory.makeAnonymousFile(size: 4096)
        defer { close(fd) }
        XCTAssertThrowsError(try SharedMemory.map(fd: fd, size: 4096, offset: 4096)) { error in
            XCTAssertEqual((error as? SysError)?.errno, .EINVAL)
        }
        XCTAssertThrowsError(try SharedMemory.map(fd: fd, size: 0, offset: 0))
        XCTAssertThrowsError(try SharedMemory.map(fd: fd, size: UInt64.max, offset: 2))
    }

    func testFenceAccessorsReadAndWriteTheValue() {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            let p = raw.baseAddress!
            Fence.storeRelease(0xabcd, to: p + 2)
            Fence.fullFence()
            XCTAssertEqual(Fence.loadAcquire(p + 2), 0xabcd)
            XCTAssertEqual(Fence.loadOnce(p + 2, as: UInt16.self), 0xabcd)
            p.storeBytes(of: 0x1122_3344_5566_7788, toByteOffset: 8, as: UInt64.self)
            XCTAssertEqual(Fence.loadOnce(p + 8, as: UInt64.self), 0x1122_3344_5566_7788)
            XCTAssertEqual(Fence.loadOnce(p + 8, as: UInt32.self), 0x5566_7788)
        }
    }
}
