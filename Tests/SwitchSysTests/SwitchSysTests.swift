// SwitchSys: token packing, errno and error texts, and that each typed io_uring prepare fills its entry as the liburing call it names.
import Glibc
import XCTest
@testable import SwitchSys

final class TokenTests: XCTestCase {
    func testPackedRoundTrip() {
        let token = Token(.send, slot: 0xBEEF, generation: 0x1234, aux: 0xAB_CDEF)
        XCTAssertEqual(Token(packed: token.packed), token)
        XCTAssertEqual(token.packed, 5 << 56 | 0xBEEF << 40 | 0x1234 << 24 | 0xAB_CDEF)
    }

    func testAuxKeepsItsLow24Bits() {
        XCTAssertEqual(Token(.cancel, aux: 0x1FF_FFFF).aux, 0xFF_FFFF)
    }

    func testUnknownOperationIsNoToken() {
        XCTAssertNil(Token(packed: 0))
        XCTAssertNil(Token(packed: 0xFF << 56))
    }
}

final class ErrnoTests: XCTestCase {
    func testFromIOUringResult() {
        XCTAssertEqual(Errno(result: -EAGAIN), .EAGAIN)
        XCTAssertEqual(Errno(result: -ENOBUFS).rawValue, ENOBUFS)
        XCTAssertTrue(Errno(result: -EWOULDBLOCK).wouldBlock)
    }

    func testProgrammingErrors() {
        XCTAssertTrue(Errno.EBADF.isProgrammingError)
        XCTAssertTrue(Errno.EFAULT.isProgrammingError)
        XCTAssertFalse(Errno.ECONNRESET.isProgrammingError)
    }

    func testSysErrorText() {
        XCTAssertEqual(SysError("bind", "/run/x.sock", errno: .EADDRINUSE).description,
                       "bind /run/x.sock: \(String(cString: strerror(EADDRINUSE)))")
        XCTAssertEqual(SysError("socketpair", errno: .EMSGSIZE).description, "socketpair: \(String(cString: strerror(EMSGSIZE)))")
        XCTAssertEqual(SysError("bind", "p", errno: .ENAMETOOLONG, message: "too long").description, "too long")
    }

    func testLongUnixPathIsRefusedWithTheOldText() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        XCTAssertThrowsError(try Socket.bound(Int32(SOCK_DGRAM.rawValue), unixPath: path)) { error in
            XCTAssertEqual((error as? SysError)?.description,
                           "socket path \(path) is longer than \(UnixAddress.maxPathLength) bytes")
        }
    }
}

final class PrepareTests: XCTestCase {
    private var uring: IOUring!
    override func setUpWithError() throws { uring = try IOUring(queueDepth: 8) }
    override func tearDown() { uring = nil }

    private func check(_ s: Submission, opcode: Int, fd: Int32, token: Token, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Int(s.sqe.pointee.opcode), opcode, "opcode", file: file, line: line)
        XCTAssertEqual(s.sqe.pointee.fd, fd, "fd", file: file, line: line)
        XCTAssertEqual(s.sqe.pointee.user_data, token.packed, "user_data", file: file, line: line)
    }

    func testPrepares() {
        // Opcodes from linux/io_uring.h.
        let token = Token(.send, slot: 3, generation: 4, aux: 5)
        var bytes = [UInt8](repeating: 0, count: 16)
        var message = msghdr()
        var iov = iovec()
        bytes.withUnsafeMutableBytes { raw in
            check(uring.prepareRead(fd: 7, into: raw.baseAddress!, length: 8, token: token), opcode: 22, fd: 7, token: token)
            check(uring.prepareRecv(fd: 7, into: raw.baseAddress!, length: 16, token: token), opcode: 27, fd: 7, token: token)
            let send = uring.prepareSend(fd: 7, bytes: raw.baseAddress!, length: 16, flags: Socket.noSignal | Socket.dontWait,
                                         token: token)
            check(send, opcode: 26, fd: 7, token: token)
            XCTAssertEqual(send.sqe.pointee.msg_flags, UInt32(Socket.noSignal | Socket.dontWait))
            send.link()
            XCTAssertEqual(send.sqe.pointee.flags & (1 << 2), 1 << 2)
        }
        check(uring.prepareSendMsg(fd: 7, message: &message, flags: Socket.noSignal, token: token), opcode: 9, fd: 7, token: token)
        check(uring.prepareWritev(fd: 7, iovecs: &iov, count: 1, token: token), opcode: 2, fd: 7, token: token)
        check(uring.prepareAccept(fd: 7, flags: Int32(SOCK_CLOEXEC.rawValue), token: token), opcode: 13, fd: 7, token: token)
        let poll = uring.preparePoll(fd: 7, events: Int32(POLLOUT), token: token)
        check(poll, opcode: 6, fd: 7, token: token)
        XCTAssertEqual(poll.sqe.pointee.poll32_events & UInt32(POLLOUT), UInt32(POLLOUT))
        let multishot = uring.preparePollMultishot(fd: 7, events: Int32(POLLIN), token: token)
        check(multishot, opcode: 6, fd: 7, token: token)
        XCTAssertEqual(multishot.sqe.pointee.len, 1)  // IORING_POLL_ADD_MULTI
        let remove = uring.preparePollRemove(token, token: Token(.cancel))
        check(remove, opcode: 7, fd: -1, token: Token(.cancel))
        XCTAssertEqual(remove.sqe.pointee.addr, token.packed)
        check(uring.prepareCancel(fd: 7, token: Token(.cancel)), opcode: 14, fd: 7, token: Token(.cancel))
        let read = uring.prepareReadMultishot(fd: 7, group: 9, token: token)
        check(read, opcode: 49, fd: 7, token: token)
        XCTAssertEqual(read.sqe.pointee.buf_group, 9)
        XCTAssertEqual(read.sqe.pointee.flags & (1 << 5), 1 << 5)
        let recvmsg = uring.prepareRecvMsgMultishot(fd: 7, message: &message, group: 0, token: token)
        check(recvmsg, opcode: 10, fd: 7, token: token)
        XCTAssertEqual(recvmsg.sqe.pointee.flags & (1 << 5), 1 << 5)
    }
}

final class ProvidedBufferRingTests: XCTestCase {
    func testTakenOutOfOrderKeepsTheRestInTheRing() throws {
        let uring = try IOUring(queueDepth: 8)
        var ring = try ProvidedBufferRing(uring: uring, group: 7, entries: 4)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 4 * 64, alignment: 64)
        defer { memory.deallocate() }
        for id in UInt32(0)..<4 { ring.add(id, address: memory + Int(id) * 64, length: 64, added: Int32(id)) }
        ring.advance(4)
        XCTAssertFalse(ring.hasRoom)
        XCTAssertEqual(ring.next, 0)
        ring.taken(2)
        XCTAssertEqual(ring.count, 3)
        var returned: [UInt32] = []
        ring.unregister(uring: uring) { returned.append($0) }
        XCTAssertEqual(returned.sorted(), [0, 1, 3])
    }
}

/// A `deferTaskRun` ring as the forwarding loop uses it: created on one thread, enabled and
/// driven by another, its completions seen after `submitAndWait` (DEFER_TASKRUN runs the kernel's
/// completion work only there).
final class DeferTaskRunTests: XCTestCase {
    func testAnotherThreadEnablesAndDrivesTheRing() throws {
        let uring = try IOUring(queueDepth: 8, deferTaskRun: true)  // created here, as Dataplane.init does
        let event = try EventFD.open()
        defer { close(event) }
        final class Outcome: @unchecked Sendable { var enabled = false, completions: [Completion] = [] }
        let outcome = Outcome()
        let value = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { value.deallocate() }
        // Prepared before enabling, as the loop's first reads are: submitted once enabled.
        uring.prepareRead(fd: event, into: value, length: 8, token: Token(.eventRead))
        let thread = try PosixThread.start("test ring") {
            do { try uring.enable(); outcome.enabled = true } catch { return }
            var waited = 0
            while outcome.completions.isEmpty && waited < 50 {
                uring.submitAndWait(timeoutNanos: 100_000_000)
                _ = uring.drain { outcome.completions.append($0) }
                waited += 1
            }
        }
        PosixThread.sleep(milliseconds: 50)
        EventFD.signal(event)
        PosixThread.join(thread)
        XCTAssertTrue(outcome.enabled, "the driving thread enabled the ring")
        XCTAssertEqual(outcome.completions.count, 1)
        XCTAssertEqual(outcome.completions.first?.token.operation, .eventRead)
        XCTAssertEqual(outcome.completions.first?.result, 8)
    }
}
