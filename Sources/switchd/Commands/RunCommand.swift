// RunCommand: `switchd run`, the daemon in the foreground.
import ArgumentParser
import Foundation
import Switch
import SwitchSys

struct RunCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the switch in the foreground.",
        discussion: """
        Without --config, runs Lima's default networks: shared (mode shared) on 192.168.107.0/24 \
        and host (mode host) on 192.168.108.0/24. \
        SIGTERM or SIGINT shut down cleanly (uplinks, nftables tables and sysctls undone); SIGHUP rereads \
        the file: added networks start, removed ones stop, changed ones restart, untouched ones keep their ports. \
        Started by systemd socket activation (LISTEN_FDS, LISTEN_PID), it serves the listening socket it was \
        given (fd 3) instead of creating RUNDIR/control.sock; see contrib/systemd.
        """
    )

    @Option(name: .long, help: ArgumentHelp("Configuration file (YAML; our format or Lima's networks.yaml).", valueName: "FILE"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Directory for the sockets (default: /run/switchd, or $XDG_RUNTIME_DIR/switchd).", valueName: "DIR"))
    var runDir: String?

    @Option(name: .long, help: ArgumentHelp("Directory for persistent state (default: /var/lib/switchd, or $XDG_STATE_HOME/switchd).", valueName: "DIR"))
    var stateDir: String?

    @Option(name: .long, help: "Lowest severity to log.")
    var logLevel: LogLevel = .info

    @Option(name: .long, help: ArgumentHelp(
        "Exit cleanly after this many seconds without ports (uplinks do not count; with socket activation the next client starts it again).",
        valueName: "SECONDS"))
    var exitWhenIdle: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Forwarding threads per network (default 1): TAP, link and attached dgram ports are spread over them; the services, the uplink and the socket ports stay on the first.",
        valueName: "N"))
    var threads: Int = 1

    func validate() throws {
        if threads < 1 || threads > Dataplane.maxThreads {
            throw ValidationError("--threads takes 1 to \(Dataplane.maxThreads) forwarding threads per network, not \(threads)")
        }
        if let exitWhenIdle, exitWhenIdle < 1 { throw ValidationError("--exit-when-idle takes a number of seconds, 1 or more") }
    }

    func execute() throws {
        // Before any thread exists, so that all of them inherit the mask.
        Signals.block()
        Log.level = logLevel

        let env = Environment.current
        let config = try config.map { try Config.load(file: $0) } ?? .builtIn
        let runDir = try Paths.runDir(flag: runDir, config: config.runDir, env: env)
        let stateDir = try Paths.stateDir(flag: stateDir, config: config.stateDir, env: env)
        try Paths.checkSocketPaths(runDir: runDir, networks: config.networks)
        try makeDirectory(runDir, purpose: "run")
        try makeDirectory(stateDir, purpose: "state")

        // Claim the control socket first: if another daemon owns this run directory, touch nothing of it.
        let server = try controlServer(runDir: runDir, group: config.controlGroup)
        let controlGroup = try config.controlGroup.map(resolveGroup)
        let switchboard = Switchboard(runDir: runDir, stateDir: stateDir, threads: threads)
        for line in switchboard.recover() { Log.notice("cleaned up after an unclean exit: \(line)") }
        let failures = switchboard.apply(config.networks)
        if let failure = failures.first {
            switchboard.shutdown()
            server.stop()
            throw failure.error
        }
        server.serve(ControlService(handler: switchboard, controlGroup: controlGroup))
        Log.notice("running \(config.networks.map(\.name).joined(separator: ", ")); control socket \(server.path)"
                   + (server.ownsSocket ? "" : " (socket activation)"))

        var current = config
        var idle = IdleWatch(limit: exitWhenIdle)
        while true {
            let event: Signals.Event
            if idle.limit == nil {
                event = Signals.next()
            } else if let received = Signals.next(timeout: IdleWatch.pollInterval) {
                event = received
            } else if idle.update(ports: switchboard.clientPortCount(), now: IdleWatch.monotonicSeconds()) {
                Log.notice("no ports for \(idle.limit ?? 0) s: exiting (--exit-when-idle)")
                event = .terminate
            } else {
                continue
            }
            switch event {
            case .reload:
                current = reload(current, switchboard: switchboard, runDir: runDir)
            case .terminate:
                Log.notice("shutting down")
                server.stop()
                switchboard.shutdown()
                throw ExitCode.success
            }
        }
    }

    /// SIGHUP: rereads the file and applies its networks; a file with errors changes nothing.
    private func reload(_ current: Config, switchboard: Switchboard, runDir: String) -> Config {
        guard let file = config else {
            Log.notice("SIGHUP: no --config file to reload; the built-in networks stay")
            return current
        }
        let ours = switchboard.uplinks
        let next: Config
        do {
            next = try Config.load(file: file, interfaceInUse: { !ours.contains($0) && Config.interfaceExists($0) })
            try Paths.checkSocketPaths(runDir: runDir, networks: next.networks)
        } catch {
            Log.error("SIGHUP: not reloaded, the running networks stay: \(error)")
            return current
        }
        for (key, old, new) in [("runDir", current.runDir, next.runDir), ("stateDir", current.stateDir, next.stateDir),
                                ("controlGroup", current.controlGroup, next.controlGroup)] where old != new {
            Log.warning("SIGHUP: \(key) changed in \(file); that takes a restart")
        }
        Log.notice("SIGHUP: reloading \(file)")
        for failure in switchboard.apply(next.networks) {
            Log.error("SIGHUP: did not start: \(failure.error.description)")
        }
        return next
    }

    /// The control socket: the one systemd passed (socket activation), else RUNDIR/control.sock, created.
    private func controlServer(runDir: String, group: String?) throws -> ControlServer {
        let expected = Paths.controlSocket(runDir: runDir)
        guard let passed = SocketActivation.take() else { return try ControlServer(path: expected, group: group) }
        if passed.count > 1 { Log.warning("socket activation: \(passed.count) sockets passed; serving the first (fd 3)") }
        let server = try ControlServer(adopting: passed.fd)
        if server.path != expected {
            Log.warning("socket activation: the control socket is \(server.path), but clients look for \(expected)")
        }
        return server
    }

    /// The gid of `controlGroup`, whose members may change the switch.
    private func resolveGroup(_ name: String) throws -> ControlGroup {
        guard let entry = getgrnam(name) else { throw ControlError("controlGroup \(name) does not exist") }
        return ControlGroup(name: name, gid: entry.pointee.gr_gid)
    }

    /// `mkdir -p` with mode 0755.
    private func makeDirectory(_ path: String, purpose: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        } catch {
            throw PathError("cannot create \(purpose) directory \(path): \((error as NSError).localizedDescription)")
        }
    }
}

/// `--exit-when-idle`: how long the switch has had no ports, polled between signals.
struct IdleWatch {
    /// Seconds without ports after which the daemon exits; nil: never.
    let limit: Int?
    /// When the port count was last seen at 0 after being above it (or at start-up).
    private var idleSince: Double?
    static let pollInterval = 0.5

    init(limit: Int?) { self.limit = limit }

    /// Records the port count at `now` (seconds); true when the limit has passed without ports.
    mutating func update(ports: Int, now: Double) -> Bool {
        guard let limit, ports == 0 else { idleSince = nil; return false }
        let since = idleSince ?? now
        idleSince = since
        return now - since >= Double(limit)
    }

    static func monotonicSeconds() -> Double { Double(Clock.monotonicNanoseconds()) / 1e9 }
}
