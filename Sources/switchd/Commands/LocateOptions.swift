// LocateOptions: how client commands find the daemon's control socket.
import ArgumentParser

/// `--run-dir DIR`, else `--config FILE`'s `runDir`, else `$SWITCHD_RUN_DIR`, else the default (docs/DESIGN.md §6).
struct LocateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The daemon's run directory (holds control.sock).", valueName: "DIR"))
    var runDir: String?

    @Option(name: .long, help: ArgumentHelp("Find the run directory through this configuration file.", valueName: "FILE"))
    var config: String?

    /// The control socket's path.
    func controlSocket(env: Environment = .current) throws -> String {
        var configRunDir: String?
        if runDir == nil, let config {
            // Only runDir is wanted: the running daemon's own uplinks exist, which is no mistake here.
            configRunDir = try Config.load(file: config, interfaceInUse: { _ in false }).runDir
        }
        return Paths.controlSocket(runDir: try Paths.runDir(flag: runDir, config: configRunDir, env: env))
    }

    /// A client for the control socket.
    func client() throws -> ControlClient { ControlClient(path: try controlSocket()) }
}
