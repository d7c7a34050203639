// PathsTests: the run directory's resolution order, default directories and the sun_path check.
import Proto
import Switch
import XCTest
@testable import switchd

final class PathsTests: XCTestCase {
    private let user = Environment(isRoot: false, variables: ["XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"],
                                   currentDirectory: "/work")
    private let root = Environment(isRoot: true, variables: ["XDG_RUNTIME_DIR": "/run/user/0"], currentDirectory: "/")

    func testRunDirResolutionOrder() throws {
        var env = user
        env.variables["SWITCHD_RUN_DIR"] = "/srv/env"
        XCTAssertEqual(try Paths.runDir(flag: "/srv/flag", config: "/srv/config", env: env), "/srv/flag")
        XCTAssertEqual(try Paths.runDir(flag: "rel", config: "/srv/config", env: env), "/work/rel")
        XCTAssertEqual(try Paths.runDir(flag: nil, config: "/srv/config", env: env), "/srv/config")
        XCTAssertEqual(try Paths.runDir(flag: nil, config: nil, env: env), "/srv/env")
        XCTAssertEqual(try Paths.runDir(flag: nil, config: nil, env: user), "/run/user/1000/switchd")
        XCTAssertEqual(try Paths.runDir(flag: nil, config: nil, env: root), "/run/switchd")
    }

    func testClientFindsTheSocketThroughTheConfigFile() throws {
        let file = NSTemporaryDirectory() + "/switchd-paths-\(getpid()).yaml"
        try "runDir: /srv/from-config\nnetworks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        var options = try LocateOptions.parse(["--config", file])
        XCTAssertEqual(try options.controlSocket(env: user), "/srv/from-config/control.sock")
        options = try LocateOptions.parse(["--config", file, "--run-dir", "/srv/flag"])
        XCTAssertEqual(try options.controlSocket(env: user), "/srv/flag/control.sock")
        options = try LocateOptions.parse([])
        XCTAssertEqual(try options.controlSocket(env: user), "/run/user/1000/switchd/control.sock")
    }

    func testDefaultDirectories() throws {
        XCTAssertThrowsError(try Paths.defaultRunDir(Environment(isRoot: false, variables: [:], currentDirectory: "/"))) { error in
            XCTAssertEqual("\(error)", "XDG_RUNTIME_DIR is not set; pass --run-dir DIR or set SWITCHD_RUN_DIR")
        }
        XCTAssertEqual(try Paths.defaultStateDir(root), "/var/lib/switchd")
        XCTAssertEqual(try Paths.defaultStateDir(user), "/home/u/.local/state/switchd")
        var env = user
        env.variables["XDG_STATE_HOME"] = "/home/u/state"
        XCTAssertEqual(try Paths.defaultStateDir(env), "/home/u/state/switchd")
        XCTAssertEqual(try Paths.stateDir(flag: nil, config: "/srv/state", env: env), "/srv/state")
        XCTAssertEqual(try Paths.stateDir(flag: "s", config: "/srv/state", env: env), "/work/s")
    }

    func testSocketPathsMustFitSunPath() throws {
        let network = NetworkSpec(name: "abcdefghijkl", subnet: IPv4Subnet("10.0.0.0/24")!)
        // "/" + run dir + "/abcdefghijkl/stream-offload.sock" (33 bytes) + NUL must fit 108 bytes.
        let fits = "/" + String(repeating: "r", count: 107 - 33 - 1)
        XCTAssertNoThrow(try Paths.checkSocketPaths(runDir: fits, networks: [network]))
        let tooLong = fits + "r"
        XCTAssertThrowsError(try Paths.checkSocketPaths(runDir: tooLong, networks: [network])) { error in
            XCTAssertEqual("\(error)", "socket path \(tooLong)/abcdefghijkl/stream-offload.sock is 108 bytes, "
                           + "more than the 107 that fit in sun_path; use a shorter run directory")
        }
    }
}
