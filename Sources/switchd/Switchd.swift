// Switchd: the command-line entry point and the error convention shared by every subcommand.
import ArgumentParser
import Foundation
import Switch

@main
struct Switchd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchd",
        abstract: "A userspace virtual Ethernet switch with built-in gateway services.",
        subcommands: [RunCommand.self, StatusCommand.self, PortCommand.self, LeasesCommand.self,
                      AttachCommand.self, QEMUArgsCommand.self, KrunkitArgsCommand.self, FdbCommand.self,
                      CaptureCommand.self, ForwardCommand.self]
    )
}

/// A subcommand whose errors print as `switchd: MESSAGE` on stderr and exit with status 1.
protocol SwitchdCommand: ParsableCommand {
    func execute() throws
}

extension SwitchdCommand {
    func run() throws {
        do {
            try execute()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("switchd: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension LogLevel: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map { "\($0)" } }
    public var defaultValueDescription: String { "\(self)" }
}
