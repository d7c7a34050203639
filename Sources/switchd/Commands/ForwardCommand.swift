// ForwardCommand: `switchd forward add|del|list`, port forwards of a running switch (README "Port forwarding").
import ArgumentParser
import Proto
import Switch

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Add, remove or list port forwards from the host into guests.",
        discussion: "Forwards added here last until switchd restarts or reloads its configuration.",
        subcommands: [Add.self, Del.self, List.self]
    )

    struct Add: SwitchdCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Forward host ports to a guest and print the new forwards' ids.",
            usage: "switchd forward add NETWORK --proto tcp|udp [--host-address A] --host-port N[-M] --guest G [--guest-port N[-M]]",
            discussion: "Without --host-address the forward listens on 127.0.0.1 and ::1 (two forwards). --guest is an "
                + "IP address or the host name a guest gave DHCP (followed as its lease changes). --guest-port defaults "
                + "to --host-port; a range maps the n-th host port to the n-th guest port."
        )

        @Argument(help: "The network of the guest.")
        var network: String

        @Option(help: ArgumentHelp("tcp or udp.", valueName: "PROTO"))
        var proto: String

        @Option(help: ArgumentHelp("The host address to listen on (default 127.0.0.1 and ::1).", valueName: "A"))
        var hostAddress: String?

        @Option(help: ArgumentHelp("The host port or range.", valueName: "N[-M]"))
        var hostPort: String

        @Option(help: ArgumentHelp("The guest: an IP address or a DHCP host name.", valueName: "G"))
        var guest: String

        @Option(help: ArgumentHelp("The guest port or range (default: the host's).", valueName: "N[-M]"))
        var guestPort: String?

        @OptionGroup var locate: LocateOptions

        func execute() throws {
            guard let proto = ForwardProtocol(rawValue: proto) else { throw ValidationError("--proto must be tcp or udp") }
            let address = try hostAddress.map { text in
                guard let a = IPAddress(text) else { throw ValidationError("--host-address \"\(text)\" is not an IP address") }
                return a
            }
            let hostPorts = try ForwardCommand.range(hostPort, option: "--host-port")
            let guestPorts = try guestPort.map { try ForwardCommand.range($0, option: "--guest-port") } ?? hostPorts
            guard let target = ForwardTarget(guest) else {
                throw ValidationError("--guest \"\(guest)\" is neither an IP address nor a DHCP host name")
            }
            let request = ForwardRequest(proto: proto, hostAddress: address, hostPorts: hostPorts, guest: target, guestPorts: guestPorts)
            let reply = try locate.client().send(.forwardAdd(network: network, forward: request))
            for forward in reply.forwards ?? [] { print(forward.id) }
        }
    }

    struct Del: SwitchdCommand {
        static let configuration = CommandConfiguration(
            commandName: "del",
            abstract: "Remove port forwards by id, or by protocol and host port (on one address or all).",
            usage: "switchd forward del NETWORK (ID | --proto tcp|udp [--host-address A] --host-port N[-M])"
        )

        @Argument(help: "The forwards' network.")
        var network: String

        @Argument(help: "The forward's id, as `forward add` printed it or `forward list` shows it.")
        var id: String?

        @Option(help: ArgumentHelp("tcp or udp.", valueName: "PROTO"))
        var proto: String?

        @Option(help: ArgumentHelp("Only the forward on this host address (default: every address).", valueName: "A"))
        var hostAddress: String?

        @Option(help: ArgumentHelp("The host port or range, exactly as added.", valueName: "N[-M]"))
        var hostPort: String?

        @OptionGroup var locate: LocateOptions

        func execute() throws {
            let selector: ForwardSelector
            if let id {
                guard proto == nil, hostAddress == nil, hostPort == nil else {
                    throw ValidationError("give an id, or --proto and --host-port, not both")
                }
                selector = .id(id)
            } else {
                guard let protoText = proto, let proto = ForwardProtocol(rawValue: protoText), let hostPort else {
                    throw ValidationError("give an id, or --proto tcp|udp and --host-port")
                }
                let address = try hostAddress.map { text in
                    guard let a = IPAddress(text) else { throw ValidationError("--host-address \"\(text)\" is not an IP address") }
                    return a
                }
                selector = .ports(proto: proto, hostAddress: address, hostPorts: try ForwardCommand.range(hostPort, option: "--host-port"))
            }
            let reply = try locate.client().send(.forwardDel(network: network, selector: selector))
            for id in reply.removed ?? [] { print(id) }
        }
    }

    struct List: SwitchdCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Show a network's port forwards and their state.",
            discussion: "--json prints an array of {id, proto, hostAddress, hostPort, guest, guestPort, resolved, state, "
                + "engine, origin} (docs/status-json.md)."
        )

        @OptionGroup var options: NetworkTableOptions

        func execute() throws {
            let forwards = try options.locate.client().send(.forwardList(network: options.network)).forwards ?? []
            options.show(forwards, empty: "no port forwards", table: StatusReport.forwardTable)
        }
    }

    static func range(_ text: String, option: String) throws -> PortRange {
        switch PortRange.parse(text) {
        case .success(let range): return range
        case .failure(let problem): throw ValidationError("\(option): \(problem.message)")
        }
    }
}
