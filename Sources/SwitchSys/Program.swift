// Program: running a helper program (posix_spawn) with its output captured, for the uplink's ip and nft calls.
internal import CSwitchShims
internal import Glibc

/// Child processes: `ip`, `nft` and the like, run to completion.
///
/// Not named `Process`: the switchd files that import Foundation would then see two `Process` types.
public enum Program {
    /// Runs a program (absolute path or found on PATH) and waits; returns its exit status and its
    /// standard output and error together (trailing newlines removed). A program that cannot be started
    /// gives status -1 and the reason as output.
    public static func run(_ argv: [String], input: String? = nil) -> (status: Int32, output: String) {
        var pipeFDs: [Int32] = [0, 0]
        let p = sw_pipe_cloexec(&pipeFDs)
        guard p == 0 else { return (-1, "pipe: \(errnoText(-p))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Standard input: `input` written into a pipe up front (small texts only: at most a pipe's
        // 64 KiB buffer, which rulesets stay far below), else /dev/null.
        var inputFDs: [Int32] = [-1, -1]
        if let input {
            let q = sw_pipe_cloexec(&inputFDs)
            guard q == 0 else { close(pipeFDs[0]); close(pipeFDs[1]); return (-1, "pipe: \(errnoText(-q))") }
            let bytes = Array(input.utf8)
            guard bytes.count <= 60_000, bytes.withUnsafeBytes({ write(inputFDs[1], $0.baseAddress, $0.count) }) == bytes.count else {
                for fd in pipeFDs + inputFDs { close(fd) }
                return (-1, "\(argv[0]): cannot write its input")
            }
            close(inputFDs[1])
            posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        defer { if inputFDs[0] >= 0 { close(inputFDs[0]) } }
        var cargs = argv.map { strdup($0) }
        cargs.append(nil)
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let r = posix_spawnp(&pid, argv[0], &actions, nil, cargs, environ)
        close(pipeFDs[1])
        guard r == 0 else {
            close(pipeFDs[0])
            return (-1, "\(argv[0]): \(errnoText(r))")
        }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n > 0 { output += chunk[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(pipeFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, String(decoding: output, as: UTF8.self).trimmingTrailingNewlines())
    }

    /// Replaces the process with the program at `path` (execv; the environment is kept). Returns
    /// only when that failed, with the errno.
    public static func replaceProcess(path: String, arguments: [String]) -> Errno {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv(path, &argv)
        let e = Errno.current
        argv.forEach { free($0) }
        return e
    }

    /// This process's id.
    public static var currentProcessID: Int32 { getpid() }

    /// This process's effective user id (0: root).
    public static var effectiveUserID: UInt32 { geteuid() }
}

extension String {
    public func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return String(s)
    }
}
