// SwitchError: the text users see is the same whether an error is built from words or from a failed syscall, and it names its network once.
import Glibc
import Switch
import SwitchSys
import XCTest

final class SwitchErrorTests: XCTestCase {
    func testSysErrorKeepsItsText() {
        let sys = SysError("bind", "/run/switchd/lab/dgram.sock", errno: .EADDRINUSE)
        let error = SwitchError(sys)
        XCTAssertEqual(error.description, "bind /run/switchd/lab/dgram.sock: \(String(cString: strerror(EADDRINUSE)))")
        XCTAssertEqual(error.errno, .EADDRINUSE)
        XCTAssertNil(SwitchError("no network named x").errno)
    }

    func testNetworkPrefixOnce() {
        let error = SwitchError("too many ports").inNetwork("lab")
        XCTAssertEqual(error.network, "lab")
        XCTAssertEqual(error.description, "network lab: too many ports")
        XCTAssertEqual(error.inNetwork("lab").description, "network lab: too many ports")
        XCTAssertEqual(error.inNetwork("other").description, "network lab: too many ports")
    }
}
