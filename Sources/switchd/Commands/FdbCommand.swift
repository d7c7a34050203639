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

    @OptionGroup var options: NetworkTableOptions

    func execute() throws {
        let entries = (try options.locate.client().send(.fdb(network: options.network)).fdb ?? [])
            .sorted { ($0.port, $0.mac) < ($1.port, $1.mac) }
        options.show(entries, empty: "no learned MACs") { entries in
            StatusReport.table([["MAC", "PORT", "AGE"]] + entries.map { [$0.mac, $0.port, "\($0.age)s"] })
        }
    }
}
