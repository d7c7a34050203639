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
        SIGTERM or SIGINT shut down cleanly; SIGHUP will reload the configuration (not implemented yet).
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
        let dataplane: Dataplane
        do {
            dataplane = try Dataplane(runDir: runDir, stateDir: stateDir, networks: config.networks)
            do {
                try dataplane.start()
            } catch {
                dataplane.shutdown()
                throw error
            }
        } catch {
            server.stop()
            throw error
        }
        server.serve(ControlService(handler: dataplane))
        Log.notice("running \(config.networks.map(\.name).joined(separator: ", ")); control socket \(server.path)")

        while true {
            switch Signals.next() {
            case .reload:
                Log.notice("SIGHUP: reload not implemented yet")
            case .terminate:
                Log.notice("shutting down")
                server.stop()
                dataplane.shutdown()
                throw ExitCode.success
            }
        }
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
