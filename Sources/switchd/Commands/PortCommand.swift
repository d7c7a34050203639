// PortCommand: `switchd port add` and `switchd port del`.
import ArgumentParser
import Proto
import Switch

struct PortCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port",
        abstract: "Add or remove ports of a running switch.",
        subcommands: [Add.self, Del.self]
    )

    struct Add: SwitchdCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a tap or link port to a network and print its id.",
            usage: "switchd port add NETWORK (--tap NAME [--netns NS] [--mac MAC] | --link IFACE)"
        )

        @Argument(help: "The network to join.")
        var network: String

        @Option(help: ArgumentHelp("Create a TAP device with this name.", valueName: "NAME"))
        var tap: String?

        @Option(help: ArgumentHelp("Move the TAP's kernel side into this network namespace.", valueName: "NS"))
        var netns: String?

        @Option(help: ArgumentHelp("The TAP's kernel-side MAC (default: derived from its name).", valueName: "MAC"))
        var mac: String?

        @Option(help: ArgumentHelp("Join an existing interface with AF_PACKET.", valueName: "IFACE"))
        var link: String?

        @OptionGroup var locate: LocateOptions

        func validate() throws {
            switch (tap, link) {
            case (nil, nil): throw ValidationError("give --tap NAME or --link IFACE")
            case (_?, _?): throw ValidationError("give --tap or --link, not both")
            case (nil, _?) where netns != nil || mac != nil: throw ValidationError("--netns and --mac go with --tap only")
            default: break
            }
            if let mac, MACAddress(mac) == nil { throw ValidationError("\"\(mac)\" is not a MAC address like 02:00:00:00:00:01") }
        }

        func execute() throws {
            let spec: PortSpec = if let tap { .tap(name: tap, netns: netns, mac: mac.flatMap { MACAddress($0) }) }
                                 else { .link(interface: link ?? "") }
            let reply = try locate.client().send(.portAdd(network: network, spec: spec))
            print(reply.port ?? "")
        }
    }

    struct Del: SwitchdCommand {
        static let configuration = CommandConfiguration(
            commandName: "del",
            abstract: "Remove a port from a network."
        )

        @Argument(help: "The port's network.")
        var network: String

        @Argument(help: "The port id, as `port add` printed it or `status` shows it.")
        var port: String

        @OptionGroup var locate: LocateOptions

        func execute() throws {
            _ = try locate.client().send(.portDel(network: network, port: port))
        }
    }
}
