// StatusCommand: `switchd status`, the networks and ports of a running switch.
import ArgumentParser
import Foundation
import Switch

struct StatusCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show networks and ports.",
        discussion: "--json prints the format documented in docs/status-json.md."
    )

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var locate: LocateOptions

    func execute() throws {
        let networks = try locate.client().send(.status).networks ?? []
        if json {
            print(StatusReport.json(networks))
        } else {
            print(StatusReport.text(networks), terminator: "")
        }
    }
}

/// The two renderings of a status snapshot.
enum StatusReport {
    /// `{"networks":[...]}`, pretty-printed with sorted keys (docs/status-json.md).
    static func json(_ networks: [NetworkStatus]) -> String {
        struct Document: Encodable { var networks: [NetworkStatus] }
        return prettyJSON(Document(networks: networks))
    }

    /// Any reply document as the client commands print it: pretty, keys sorted, slashes plain.
    static func prettyJSON(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// One block per network: a summary line, its sockets, then a table of ports.
    static func text(_ networks: [NetworkStatus]) -> String {
        if networks.isEmpty { return "no networks\n" }
        var out = ""
        for network in networks {
            if !out.isEmpty { out += "\n" }
            out += "\(network.name): \(network.mode) \(network.subnet) gateway \(network.gateway) mtu \(network.mtu)"
            if let prefix = network.ipv6Prefix { out += " ipv6 \(prefix)" }
            if let uplink = network.uplink { out += " uplink \(uplink)" }
            out += "\n"
            let sockets = [("dgram", network.sockets.dgram), ("stream", network.sockets.stream),
                           ("dgram-offload", network.sockets.dgramOffload), ("stream-offload", network.sockets.streamOffload),
                           ("vhost-user", network.sockets.vhostUser)]
                .compactMap { name, path in path.map { [name, $0] } }
            if !sockets.isEmpty { out += indent(table(sockets), "  ") }
            for warning in network.warnings ?? [] { out += "  warning: \(warning)\n" }
            if let captures = network.captures { out += "  captures running: \(captures)\n" }
            if !network.drops.isEmpty {
                out += "  dropped before a port: "
                    + network.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "\n"
            }
            if network.ports.isEmpty {
                out += "  no ports\n"
            } else {
                var rows = [["PORT", "KIND", "PEER", "MACS", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "SUPER", "SEGMENTED",
                             "DROPS"]]
                for port in network.ports {
                    let drops = port.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    rows.append([port.id, port.kind, port.peer, port.macs.isEmpty ? "-" : port.macs.joined(separator: ","),
                                 "\(port.rx.packets)", "\(port.rx.bytes)", "\(port.tx.packets)", "\(port.tx.bytes)",
                                 "\(port.superFrames)", "\(port.segmented)",
                                 drops.isEmpty ? "-" : drops.joined(separator: " ")])
                }
                out += indent(table(rows), "  ")
            }
            if !network.leases.isEmpty { out += indent(leaseTable(network.leases), "  ") }
            if let forwards = network.forwards, !forwards.isEmpty { out += indent(forwardTable(forwards), "  ") }
        }
        return out
    }

    /// DHCP leases: MAC, IP, host name, expiry (UTC, ISO 8601).
    static func leaseTable(_ leases: [LeaseStatus]) -> String {
        var rows = [["MAC", "IP", "HOSTNAME", "EXPIRES"]]
        let format = ISO8601DateFormatter()
        for lease in leases {
            rows.append([lease.mac, lease.ip, lease.hostname ?? "-",
                         format.string(from: Date(timeIntervalSince1970: TimeInterval(lease.expires)))])
        }
        return table(rows)
    }

    /// Port forwards: host side, guest side (as configured), the address in use, state, engine, origin.
    static func forwardTable(_ forwards: [ForwardStatus]) -> String {
        table([["FORWARD", "GUEST", "RESOLVED", "STATE", "ENGINE", "ORIGIN"]] + forwards.map {
            [$0.id, "\($0.guest):\($0.guestPort)", $0.resolved ?? "-", $0.state, $0.engine, $0.origin]
        })
    }

    /// Left-aligned columns separated by two spaces, one line per row.
    static func table(_ rows: [[String]]) -> String {
        let widths = rows.reduce(into: [Int]()) { widths, row in
            for (i, cell) in row.enumerated() {
                if i == widths.count { widths.append(0) }
                widths[i] = max(widths[i], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }

    private static func indent(_ text: String, _ prefix: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { prefix + $0 + "\n" }.joined()
    }
}
