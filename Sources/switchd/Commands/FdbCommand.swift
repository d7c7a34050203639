// FdbCommand: `switchd fdb NETWORK`, the learned MACs of a network's forwarding table.
import ArgumentParser
import Foundation
import Switch

struct FdbCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdb",
        abstract: "Show a network's forwarding table: learned MACs, their port and age.",
        discussion: "--json prints an array of {mac, port, age} (age in seconds since the MAC was last seen as a source)."
    )

    @Argument(help: "The network.")
    var network: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var locate: LocateOptions

    func execute() throws {
        let entries = (try locate.client().send(.fdb(network: network)).fdb ?? [])
            .sorted { ($0.port, $0.mac) < ($1.port, $1.mac) }
        if json {
            print(StatusReport.prettyJSON(entries))
        } else if entries.isEmpty {
            print("no learned MACs")
        } else {
            print(StatusReport.table([["MAC", "PORT", "AGE"]] + entries.map { [$0.mac, $0.port, "\($0.age)s"] }), terminator: "")
        }
    }
}
