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

    @OptionGroup var options: NetworkTableOptions

    func execute() throws {
        let networks = try options.locate.client().send(.status).networks ?? []
        guard let found = networks.first(where: { $0.name == options.network }) else {
            throw ValidationError("no network named \(options.network) (there are: \(networks.map(\.name).joined(separator: ", ")))")
        }
        options.show(found.leases, empty: "no leases", table: StatusReport.leaseTable)
    }
}
