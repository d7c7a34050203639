// SocketActivation: the listening control socket systemd passes (sd_listen_fds(3) protocol, no libsystemd).
import Glibc
import SwitchSys

/// systemd socket activation: when `LISTEN_PID` is this process and `LISTEN_FDS` is at least 1, fd 3
/// is the listening control socket (`ListenStream=` of switchd.socket, or `systemd-socket-activate -l`).
enum SocketActivation {
    /// The first passed descriptor (`SD_LISTEN_FDS_START`).
    static let firstFD: Int32 = 3
    static let variables = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]

    /// The passed descriptor for process `pid` with environment `variables`, if any, and how many were passed.
    static func passed(_ environment: [String: String], pid: Int32) -> (fd: Int32, count: Int)? {
        guard let listenPID = environment["LISTEN_PID"].flatMap({ Int32($0) }), listenPID == pid,
              let count = environment["LISTEN_FDS"].flatMap({ Int($0) }), count >= 1 else { return nil }
        return (firstFD, count)
    }

    /// This process's passed descriptor, if it was socket-activated. The variables are unset either way
    /// (as `sd_listen_fds(1)` does), so that no child takes them for its own.
    static func take() -> (fd: Int32, count: Int)? {
        var environment: [String: String] = [:]
        for name in variables {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        let found = passed(environment, pid: Program.currentProcessID)
        if found != nil || environment["LISTEN_PID"] != nil {
            for name in variables { unsetenv(name) }
        }
        return found
    }
}
