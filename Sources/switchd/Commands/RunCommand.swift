// RunCommand: `switchd run`, the daemon in the foreground.
import ArgumentParser
import Foundation
import Switch

struct RunCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the switch in the foreground.",
        discussion: """
        Without --config, runs Lima's default networks: shared (mode shared) on 192.168.107.0/24 \
        and host (mode host) on 192.168.108.0/24. \
        SIGTERM or SIGINT shut down cleanly (uplinks, nftables tables and sysctls undone); SIGHUP rereads \
        the file: added networks start, removed ones stop, changed ones restart, untouched ones keep their ports.
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
        let server = try ControlServer(path: Paths.controlSocket(runDir: runDir), group: config.controlGroup)
        let switchboard = Switchboard(runDir: runDir, stateDir: stateDir)
        for line in switchboard.recover() { Log.notice("cleaned up after an unclean exit: \(line)") }
        let failures = switchboard.apply(config.networks)
        if let failure = failures.first {
            switchboard.shutdown()
            server.stop()
            throw failure.error
        }
        server.serve(ControlService(handler: switchboard))
        Log.notice("running \(config.networks.map(\.name).joined(separator: ", ")); control socket \(server.path)")

        var current = config
        while true {
            switch Signals.next() {
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
            next = try Config.load(file: file, interfaceInUse: { name in !ours.contains(name) && if_nametoindex(name) != 0 })
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
