// LeasesCommand: `switchd leases NETWORK`, the DHCP leases of one network.
import ArgumentParser
import Foundation
import Switch

struct LeasesCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases",
        abstract: "Show a network's DHCP leases (MAC, IP, host name, expiry).",
        discussion: "--json prints the `leases` array of `status --json` (docs/status-json.md) for that network."
    )

    @Argument(help: "The network.")
    var network: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var locate: LocateOptions

    func execute() throws {
        let networks = try locate.client().send(.status).networks ?? []
        guard let found = networks.first(where: { $0.name == network }) else {
            throw ValidationError("no network named \(network) (there are: \(networks.map(\.name).joined(separator: ", ")))")
        }
        if json {
            print(StatusReport.prettyJSON(found.leases))
        } else if found.leases.isEmpty {
            print("no leases")
        } else {
            print(StatusReport.leaseTable(found.leases), terminator: "")
        }
    }
}
