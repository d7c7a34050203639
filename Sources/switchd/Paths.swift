// Paths: where the run and state directories are, and whether the socket paths under them fit sun_path.
import Foundation
import Switch
import SwitchSys

/// The process facts that decide default directories; a value so that tests can supply their own.
struct Environment: Sendable {
    var isRoot: Bool
    var variables: [String: String]
    var currentDirectory: String

    static var current: Environment {
        Environment(isRoot: Program.effectiveUserID == 0, variables: ProcessInfo.processInfo.environment,
                    currentDirectory: FileManager.default.currentDirectoryPath)
    }

    /// Makes a path given on the command line absolute (sockets are found by other processes).
    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : (currentDirectory as NSString).appendingPathComponent(path)
    }
}

/// Default directories (docs/DESIGN.md §5) and the order in which commands pick the run directory (docs/DESIGN.md §6).
enum Paths {
    /// Environment variable naming the run directory for client commands (and `run`).
    static let runDirVariable = "SWITCHD_RUN_DIR"
    /// `sun_path` holds 108 bytes including the terminating NUL.
    static let sunPathCapacity = 108
    /// The per-network socket names; `stream-offload.sock` is the longest.
    static let networkSocketNames = ["dgram.sock", "stream.sock", "dgram-offload.sock", "stream-offload.sock", "vhost-user.sock"]

    /// `/run/switchd` for root, else `$XDG_RUNTIME_DIR/switchd`.
    static func defaultRunDir(_ env: Environment) throws(PathError) -> String {
        if env.isRoot { return "/run/switchd" }
        guard let runtime = env.variables["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") else {
            throw PathError("XDG_RUNTIME_DIR is not set; pass --run-dir DIR or set \(runDirVariable)")
        }
        return runtime + "/switchd"
    }

    /// `/var/lib/switchd` for root, else `$XDG_STATE_HOME/switchd`, else `~/.local/state/switchd`.
    static func defaultStateDir(_ env: Environment) throws(PathError) -> String {
        if env.isRoot { return "/var/lib/switchd" }
        if let state = env.variables["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/switchd" }
        guard let home = env.variables["HOME"], home.hasPrefix("/") else {
            throw PathError("neither XDG_STATE_HOME nor HOME is set; pass --state-dir DIR")
        }
        return home + "/.local/state/switchd"
    }

    /// The run directory: `--run-dir`, else the config file's `runDir`, else `$SWITCHD_RUN_DIR`, else the default.
    static func runDir(flag: String?, config: String?, env: Environment) throws(PathError) -> String {
        if let flag { return env.absolute(flag) }
        if let config { return config }
        if let variable = env.variables[runDirVariable], !variable.isEmpty { return env.absolute(variable) }
        return try defaultRunDir(env)
    }

    /// The state directory: `--state-dir`, else the config file's `stateDir`, else the default.
    static func stateDir(flag: String?, config: String?, env: Environment) throws(PathError) -> String {
        if let flag { return env.absolute(flag) }
        if let config { return config }
        return try defaultStateDir(env)
    }

    static func controlSocket(runDir: String) -> String { runDir + "/control.sock" }

    /// Checks that the control socket and every network's sockets fit `sun_path`; names the longest that does not.
    static func checkSocketPaths(runDir: String, networks: [NetworkSpec]) throws(PathError) {
        var paths = [controlSocket(runDir: runDir)]
        for network in networks {
            paths += networkSocketNames.map { "\(runDir)/\(network.name)/\($0)" }
        }
        // Name the longest, so that one fix (a shorter run directory) is enough.
        if let path = paths.max(by: { $0.utf8.count < $1.utf8.count }), path.utf8.count >= sunPathCapacity {
            throw PathError("socket path \(path) is \(path.utf8.count) bytes, more than the \(sunPathCapacity - 1) "
                            + "that fit in sun_path; use a shorter run directory")
        }
    }
}

/// A run or state directory that cannot be determined or used.
struct PathError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}
