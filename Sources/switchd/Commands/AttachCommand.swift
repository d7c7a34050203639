// AttachCommand: `switchd attach`, a new port handed to a command as an inherited socket (docs/DESIGN.md §6).
import ArgumentParser
import Glibc
import Switch
import SwitchSys

extension AttachKind: ExpressibleByArgument {}

struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Run COMMAND with a new port of NETWORK as an inherited socket at fd N.",
        usage: "switchd attach NETWORK [--kind dgram|stream] [--offload] [--fd N] -- COMMAND [ARGS...]",
        discussion: """
        switchd makes a socketpair, keeps one end as a port of NETWORK and passes the other over the control \
        socket; attach puts it at fd N (default 3) and execs COMMAND, which keeps the control connection open: \
        that connection is the port's lease, so the port goes when COMMAND (and whatever inherited the \
        connection) exits. dgram: one frame per datagram (QEMU -netdev dgram,id=n0,local.type=fd,local.str=3; \
        krunkit type=unixgram,fd=3). stream: 4-byte big-endian length, then the frame (QEMU -netdev \
        stream,id=n0,addr.type=fd,addr.str=3; krunkit type=unixstream,fd=3). --offload: COMMAND sends and takes \
        header-less offload super-frames (krunkit offloading=on). status shows the port with peer attach:PID. \
        Exit status: COMMAND's; 127 when COMMAND is missing or not found, 126 when it cannot be executed, \
        1 when switchd refuses.
        """
    )

    @Argument(help: "The network to join.")
    var network: String

    @Option(help: "The socket type: dgram or stream.")
    var kind: AttachKind = .dgram

    @Flag(help: "The command sends and takes header-less offload super-frames (krunkit offloading=on).")
    var offload = false

    @Option(name: .customLong("fd"), help: ArgumentHelp("The descriptor number the socket gets in COMMAND.", valueName: "N"))
    var fd: Int32 = 3

    @OptionGroup var locate: LocateOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after --.", valueName: "COMMAND"))
    var command: [String] = []

    func validate() throws {
        guard fd >= 3 && fd < 1024 else { throw ValidationError("--fd must be 3..1023 (0-2 are standard input, output and error)") }
    }

    func run() throws {
        guard let program = command.first else {
            printError("switchd attach: no COMMAND: give it after --, e.g. switchd attach \(network) -- qemu-system-x86_64 ...")
            throw ExitCode(127)
        }
        // Before asking for a port: a typo should not cost one.
        guard let path = Self.resolve(program, path: getenv("PATH").map { String(cString: $0) }) else {
            printError("switchd attach: \(program): command not found")
            throw ExitCode(127)
        }
        let connection: UnixSocket
        let passed: Int32
        do {
            (connection, passed) = try locate.client().attach(.attach(network: network, kind: kind, offload: offload))
        } catch {
            printError("switchd: \(error)")
            throw ExitCode.failure
        }
        withExtendedLifetime(connection) {
            // The lease: a copy of the control connection above N that COMMAND inherits (F_DUPFD clears
            // close-on-exec); N then gets the port's socket (dup2 clears it there too).
            let lease = Result { () throws(SysError) in try Descriptor.duplicate(connection.fd, atLeast: fd + 1) }
            if passed == fd {
                Descriptor.setCloseOnExec(fd, false)
            } else {
                try? Descriptor.duplicate(passed, onto: fd)
                Descriptor.close(passed)
            }
            if case .failure(let error) = lease {
                printError("switchd attach: cannot keep the control connection: \(error.errno)")
                Glibc.exit(1)
            }
            let code = Program.replaceProcess(path: path, arguments: command)
            printError("switchd attach: \(program): \(code)")
            Glibc.exit(code == .ENOENT ? 127 : 126)
        }
    }

    /// The file `execvp` would run for `program`: itself when it holds a `/`, else the first executable
    /// regular file of that name on `path` (`/usr/local/bin:/usr/bin:/bin` when unset).
    static func resolve(_ program: String, path: String?) -> String? {
        func runnable(_ file: String) -> Bool { File.isExecutableFile(file) }
        if program.contains("/") { return program.isEmpty ? nil : (runnable(program) ? program : nil) }
        guard !program.isEmpty else { return nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let file = (dir.isEmpty ? "." : String(dir)) + "/" + program
            if runnable(file) { return file }
        }
        return nil
    }
}
