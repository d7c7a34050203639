// LifecycleTests: socket activation (the passed socket and its variables) and --exit-when-idle bookkeeping.
import Glibc
import XCTest
@testable import switchd
import SwitchSys

final class LifecycleTests: XCTestCase {
    func testSocketActivationVariables() {
        XCTAssertNil(SocketActivation.passed([:], pid: 42))
        XCTAssertNil(SocketActivation.passed(["LISTEN_PID": "41", "LISTEN_FDS": "1"], pid: 42), "another process's sockets")
        XCTAssertNil(SocketActivation.passed(["LISTEN_PID": "42", "LISTEN_FDS": "0"], pid: 42))
        XCTAssertNil(SocketActivation.passed(["LISTEN_PID": "42"], pid: 42))
        XCTAssertNil(SocketActivation.passed(["LISTEN_PID": "x", "LISTEN_FDS": "1"], pid: 42))
        XCTAssertEqual(SocketActivation.passed(["LISTEN_PID": "42", "LISTEN_FDS": "1"], pid: 42)?.fd, 3)
        XCTAssertEqual(SocketActivation.passed(["LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"], pid: 42)?.count, 2)
    }

    func testAdoptingChecksTheSocket() throws {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        XCTAssertThrowsError(try UnixSocket.adoptListening(fd: pair[0])) { error in
            XCTAssertEqual("\(error)", "socket activation: fd \(pair[0]) is not listening")
        }
        let dgram = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(dgram) }
        XCTAssertThrowsError(try UnixSocket.adoptListening(fd: dgram)) { error in
            XCTAssertTrue("\(error)".contains("is not an AF_UNIX SOCK_STREAM socket"), "\(error)")
        }
        let file = open("/dev/null", O_RDONLY)
        defer { close(file) }
        XCTAssertThrowsError(try UnixSocket.adoptListening(fd: file)) { error in
            XCTAssertTrue("\(error)".contains("is not a socket"), "\(error)")
        }
    }

    func testIdleWatch() {
        var never = IdleWatch(limit: nil)
        XCTAssertFalse(never.update(ports: 0, now: 1000))
        var idle = IdleWatch(limit: 2)
        XCTAssertFalse(idle.update(ports: 0, now: 10))    // idle from here
        XCTAssertFalse(idle.update(ports: 0, now: 11.5))
        XCTAssertTrue(idle.update(ports: 0, now: 12))
        XCTAssertFalse(idle.update(ports: 1, now: 12.5))  // a port came: the clock restarts when it goes
        XCTAssertFalse(idle.update(ports: 0, now: 20))
        XCTAssertFalse(idle.update(ports: 0, now: 21.9))
        XCTAssertTrue(idle.update(ports: 0, now: 22))
    }
}
