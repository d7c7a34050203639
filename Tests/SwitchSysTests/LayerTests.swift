// SwitchSys calls that Switch and switchd used to make themselves: file and directory calls, fd
// flags, poll, TCP accept/send/receive, the lock and its condition, anonymous memory, signal sets.
import Glibc
import Proto
import XCTest
@testable import SwitchSys

final class FileCallTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/switchsys-layer-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        dir = String(cString: try XCTUnwrap(made))
    }

    override func tearDown() { _ = Program.run(["rm", "-rf", dir]) }

    func testWriteNeedsAnExistingFileUnlessCreating() throws {
        let path = dir + "/knob"
        XCTAssertThrowsError(try File.write(path, Array("1\n".utf8))) { error in
            XCTAssertEqual((error as? SysError)?.call, "open")
            XCTAssertEqual((error as? SysError)?.errno, .ENOENT)
        }
        try File.write(path, Array("0\n".utf8), creating: true, sync: true)
        XCTAssertEqual(File.readSmallText(path), "0\n")
        try File.write(path, Array("1\n".utf8))
        XCTAssertEqual(File.readSmallText(path), "1\n")
        try File.write(path, Array("22\n".utf8), creating: true)
        XCTAssertEqual(File.readSmallText(path), "22\n", "creating truncates")
    }

    func testDirectoriesAndTheirEntries() throws {
        let sub = dir + "/net"
        try File.makeDirectory(sub)
        try File.makeDirectory(sub)  // existing: fine
        XCTAssertThrowsError(try File.makeDirectory(sub, existingOK: false)) { error in
            XCTAssertEqual((error as? SysError)?.errno, .EEXIST)
        }
        try File.write(sub + "/a.sock", [], creating: true)
        XCTAssertEqual(File.entries(of: sub), ["a.sock"])
        XCTAssertNil(File.entries(of: sub + "/a.sock"), "not a directory")
        XCTAssertFalse(File.removeDirectory(sub), "not empty")
        XCTAssertTrue(File.remove(sub + "/a.sock"))
        XCTAssertTrue(File.removeDirectory(sub))
        XCTAssertFalse(File.exists(sub))
        XCTAssertTrue(File.exists(dir))
    }

    func testExecutableReadableAndStatus() throws {
        let path = dir + "/tool"
        try File.write(path, Array("#!/bin/sh\n".utf8), creating: true)
        XCTAssertFalse(File.isExecutableFile(path))
        try File.setMode(path, 0o755)
        XCTAssertTrue(File.isExecutableFile(path))
        XCTAssertFalse(File.isExecutableFile(dir), "a directory is not a program")
        XCTAssertNoThrow(try File.checkReadable(path))
        XCTAssertThrowsError(try File.checkReadable(dir + "/missing")) { error in
            XCTAssertEqual((error as? SysError)?.errno, .ENOENT)
        }
        let before = try XCTUnwrap(path.withCString { File.status(cString: $0) })
        XCTAssertEqual(before.size, 10)
        try File.write(path, Array("#!/bin/sh\nexit 0\n".utf8))
        let after = try XCTUnwrap(path.withCString { File.status(cString: $0) })
        XCTAssertEqual(after.inode, before.inode)
        XCTAssertEqual(after.size, 17)
        XCTAssertNil((dir + "/missing").withCString { File.status(cString: $0) })
    }
}

final class DescriptorTests: XCTestCase {
    func testFlagsAndDuplicates() throws {
        let fd = try EventFD.open()
        defer { Descriptor.close(fd) }
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        Descriptor.setCloseOnExec(fd, false)
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0)
        Descriptor.setCloseOnExec(fd)
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0)
        try Descriptor.setNonBlocking(fd)
        XCTAssertEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK)
        let copy = try Descriptor.duplicate(fd, atLeast: 100)
        XCTAssertGreaterThanOrEqual(copy, 100)
        XCTAssertEqual(fcntl(copy, F_GETFD) & FD_CLOEXEC, 0, "F_DUPFD clears close-on-exec")
        try Descriptor.duplicate(fd, onto: copy + 1)
        XCTAssertGreaterThanOrEqual(fcntl(copy + 1, F_GETFD), 0)
        Descriptor.close(copy)
        Descriptor.close(copy + 1)
        XCTAssertEqual(fcntl(copy, F_GETFD), -1)
        XCTAssertThrowsError(try Descriptor.setNonBlocking(copy)) { error in
            XCTAssertEqual((error as? SysError)?.errno, .EBADF)
        }
    }

    func testPollSeesAnEventFDSignal() throws {
        let fd = try EventFD.open()
        defer { Descriptor.close(fd) }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        XCTAssertEqual(try Poll.wait(&fds, milliseconds: 0), 0)
        EventFD.signal(fd)
        XCTAssertEqual(try Poll.wait(&fds, milliseconds: 0), 1)
        XCTAssertEqual(Int32(fds[0].revents) & POLLIN, POLLIN)
    }
}

final class TCPSocketTests: XCTestCase {
    func testBindListenAcceptSendReceive() throws {
        let listener = try Socket.open(Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), domain: AF_INET)
        defer { Descriptor.close(listener) }
        try Socket.bind(listener, to: InetSocketAddress(.v4(IPv4Address(127, 0, 0, 1)), port: 0))
        try Socket.listen(listener, backlog: 4)
        XCTAssertThrowsError(try Socket.accept(listener)) { error in
            XCTAssertTrue((error as? SysError)?.errno.wouldBlock == true, "\(error)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let address = try XCTUnwrap(InetSocketAddress(storage))
        let client = try Socket.open(Int32(SOCK_STREAM.rawValue), domain: AF_INET)
        defer { Descriptor.close(client) }
        XCTAssertEqual(address.withSockaddr { connect(client, $0, $1) }, 0)
        var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        XCTAssertEqual(try Poll.wait(&fds, milliseconds: -1), 1)
        let server = try Socket.accept(listener)
        defer { Descriptor.close(server) }
        XCTAssertEqual(try [UInt8]([1, 2, 3]).withUnsafeBytes { try Socket.send(client, $0) }, 3)
        var buffer = [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try Socket.receive(server, into: $0) }, 3)
        XCTAssertEqual(Array(buffer[..<3]), [1, 2, 3])
        Socket.shutdown(client)
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try Socket.receive(server, into: $0) }, 0, "end of input")
        XCTAssertThrowsError(try [UInt8]([1]).withUnsafeBytes { try Socket.send(-1, $0) }) { error in
            XCTAssertEqual((error as? SysError)?.errno, .EBADF)
        }
    }
}

final class LockTests: XCTestCase {
    func testTryingAHeldLockGivesNil() {
        let lock = Lock()
        XCTAssertEqual(lock.withLockIfAvailable { 1 }, 1)
        lock.lock()
        XCTAssertNil(lock.withLockIfAvailable { 1 }, "held (by this thread: the mutex is not recursive)")
        lock.unlock()
        XCTAssertEqual(lock.withLock { 2 }, 2)
    }

    func testConditionWakesAWaiterAndAPastDeadlineReturns() throws {
        let lock = Lock()
        let condition = Condition(lock)
        final class Flag: @unchecked Sendable { var set = false }
        let flag = Flag()
        lock.withLock { condition.wait(untilMonotonicNanoseconds: Clock.monotonicNanoseconds() - 1) }  // returns at once
        let thread = try PosixThread.start("a test thread") {
            lock.withLock {
                flag.set = true
                condition.broadcast()
            }
        }
        lock.withLock { while !flag.set { condition.wait() } }
        PosixThread.join(thread)
        XCTAssertTrue(flag.set)
    }
}

final class MemoryAndSignalTests: XCTestCase {
    func testAnonymousMemoryIsZeroedAndWritable() throws {
        let bytes = 1 << 20
        let base = try AnonymousMemory.map(bytes: bytes)
        XCTAssertEqual(base.load(fromByteOffset: bytes - 8, as: UInt64.self), 0)
        base.storeBytes(of: 0xABCD, toByteOffset: bytes - 8, as: UInt64.self)
        XCTAssertEqual(base.load(fromByteOffset: bytes - 8, as: UInt64.self), 0xABCD)
        AnonymousMemory.unmap(base, bytes: bytes)
    }

    func testABlockedSignalIsTakenByWait() throws {
        final class Box: @unchecked Sendable { var timedOut: Int32? = -1; var received: Int32? }
        let box = Box()
        // On a thread of its own: the mask stays there.
        let thread = try PosixThread.start("a signal test thread") {
            let set = SignalSet([SIGUSR2])
            set.block()
            box.timedOut = set.wait(seconds: 0, nanoseconds: 1000)
            pthread_kill(pthread_self(), SIGUSR2)
            box.received = set.wait()
        }
        PosixThread.join(thread)
        XCTAssertNil(box.timedOut, "nothing pending: the timed wait times out")
        XCTAssertEqual(box.received, SIGUSR2)
        XCTAssertEqual(Program.currentProcessID, getpid())
        XCTAssertEqual(Program.effectiveUserID, geteuid())
    }
}
