// Config: the daemon's configuration file (docs/DESIGN.md §5) read into Switch's typed specs.
import Foundation
import Proto
import Switch
import SwitchSys
import Yams

/// The configuration, fully checked: networks as the dataplane takes them plus the top-level settings.
struct Config: Equatable {
    var networks: [NetworkSpec]
    /// Absolute; nil when the file does not set it.
    var runDir: String?
    var stateDir: String?
    /// Group allowed to use the control socket (docs/DESIGN.md §6).
    var controlGroup: String?

    /// Used when no file is given: Lima's vmnet defaults (docs/DESIGN.md §5), every other setting at its default.
    static let builtIn = Config(networks: [
        NetworkSpec(name: "shared", mode: .shared, subnet: IPv4Subnet("192.168.107.0/24")!),
        NetworkSpec(name: "host", mode: .host, subnet: IPv4Subnet("192.168.108.0/24")!),
    ])

    /// Whether an interface of that name exists on the machine, the default check of `interfaceInUse`.
    /// A daemon that reloads passes a check that leaves out the uplinks it created itself.
    static func interfaceExists(_ name: String) -> Bool { NetworkInterface.index(name) != nil }

    /// Reads and checks `file`; `interfaceInUse` as in `parse`.
    static func load(file: String, interfaceInUse: (String) -> Bool = interfaceExists) throws(ConfigError) -> Config {
        do { try File.checkReadable(file) } catch {
            throw ConfigError(file: file, line: nil, key: "", reason: "cannot read: \(error.errno)")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, line: nil, key: "", reason: "cannot read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: file, line: nil, key: "", reason: "is not UTF-8 text")
        }
        return try parse(yaml: text, file: file, interfaceInUse: interfaceInUse)
    }

    /// Parses our format (top-level `networks:`) or Lima's `networks.yaml` (top-level `vmnet:`).
    /// `file` is only used in error messages. `interfaceInUse` says whether an interface exists on the machine
    /// and is not one of ours: the uplink of a host or shared network (given or the default `sw-NAME`) must not be.
    static func parse(yaml: String, file: String, interfaceInUse: (String) -> Bool = interfaceExists)
        throws(ConfigError) -> Config {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw locate(error, file: file)
        }
        guard let root else { throw ConfigError(file: file, line: nil, key: "", reason: "the file is empty") }
        let top = ConfigValue(node: root, path: "", file: file)
        let entries = try top.mapping()
        // Lima's networks.yaml: only `vmnet:` is ours; `paths`, `group` and socket_vmnet's `networks` are Lima's.
        let isLima = entries.contains { $0.name == "vmnet" }
        var config = Config(networks: [])
        var networks: ConfigValue?
        for (name, key, value) in entries {
            switch name {
            case "vmnet": networks = value
            case "networks" where !isLima: networks = value
            case "networks", "paths", "group":
                guard isLima else { throw unknownKey(key, isLima: isLima) }
            case "runDir": config.runDir = try absolutePath(value)
            case "stateDir": config.stateDir = try absolutePath(value)
            case "controlGroup":
                let group = try value.string()
                guard !group.isEmpty else { throw value.error("is empty") }
                config.controlGroup = group
            default:
                throw unknownKey(key, isLima: isLima)
            }
        }
        guard let networks else {
            throw ConfigError(file: file, line: root.mark?.line, key: "networks", reason: "is required (or vmnet: in Lima's networks.yaml)")
        }
        var parsed: [ParsedNetwork] = []
        for (name, key, value) in try networks.mapping() {
            if let problem = Names.networkProblem(name) { throw key.error(problem) }
            parsed.append(ParsedNetwork(spec: try NetworkParser.parse(name: name, key: key, value: value), key: key, value: value))
        }
        guard !parsed.isEmpty else { throw networks.error("defines no networks") }
        try checkAcrossNetworks(parsed)
        try checkForwardsAcrossNetworks(parsed)
        // Last, so that a file's own mistakes are reported the same way on every machine.
        for network in parsed {
            guard let uplink = network.spec.uplink, interfaceInUse(uplink) else { continue }
            throw network.uplinkPlace.error("interface \(uplink) already exists (not created by this switchd); "
                                             + "choose another with interface:")
        }
        config.networks = parsed.map(\.spec)
        return config
    }

    /// Subnets must not overlap, and each interface name (uplinks, `tap` and `link` ports) may be used once.
    private static func checkAcrossNetworks(_ networks: [ParsedNetwork]) throws(ConfigError) {
        var subnets: [(subnet: IPv4Subnet, path: String, line: Int?)] = []
        // Every use of an interface name, to be checked in file order: `place` locates the error, `owner` names it.
        var claims: [(interface: String, place: ConfigValue, owner: String, isDefaultUplink: Bool)] = []
        for network in networks {
            if let uplink = network.spec.uplink {
                let place = network.uplinkPlace
                let isDefault = network.spec.interface == nil
                claims.append((uplink, place, isDefault ? "the uplink of \(network.key.path) (default sw-NAME)" : place.path,
                               isDefault))
            }
            for (key, _, item) in try network.value.mapping() {
                if key == "subnet", let subnet = IPv4Subnet(try item.string()) {
                    if let other = subnets.first(where: { $0.subnet.overlaps(subnet) }) {
                        throw item.error("\(subnet) overlaps \(other.path) \(other.subnet)" + (other.line.map { " (line \($0))" } ?? ""))
                    }
                    subnets.append((subnet, item.path, item.line))
                }
                if key == "ports" {
                    for port in try item.sequence() {
                        for (portKey, _, name) in try port.mapping() where portKey == "tap" || portKey == "link" {
                            claims.append((try name.string(), name, name.path, false))
                        }
                    }
                }
            }
        }
        var owners: [String: String] = [:]
        for claim in claims.enumerated().sorted(by: { ($0.element.place.line ?? 0, $0.offset) < ($1.element.place.line ?? 0, $1.offset) })
            .map(\.element) {
            if let other = owners[claim.interface] {
                throw claim.place.error(claim.isDefaultUplink
                    ? "the default uplink \(claim.interface) is already used by \(other); choose another with interface:"
                    : "interface \(claim.interface) is already used by \(other)")
            }
            owners[claim.interface] = claim.owner
        }
    }

    /// Host ports of one protocol and address belong to one forward of one network.
    private static func checkForwardsAcrossNetworks(_ networks: [ParsedNetwork]) throws(ConfigError) {
        var seen: [(spec: PortForwardSpec, item: ConfigValue)] = []
        for network in networks {
            guard let value = (try network.value.mapping()).first(where: { $0.name == "portForwards" })?.value else { continue }
            let forwards = try NetworkParser.portForwards(value, network: network.spec)
            for (spec, item) in forwards {
                if let other = seen.first(where: { $0.spec.conflicts(with: spec) }) {
                    let place = (try item.mapping()).first { $0.name == "hostPort" }?.value ?? item
                    throw place.error("\(spec.id) overlaps \(other.item.path) (\(other.spec.id))"
                                      + (other.item.line.map { " at line \($0)" } ?? ""))
                }
            }
            seen += forwards
        }
    }

    /// A network's spec with the YAML it came from, for the checks across networks.
    private struct ParsedNetwork {
        let spec: NetworkSpec
        /// The network's name.
        let key: ConfigValue
        /// Its settings, a map.
        let value: ConfigValue

        /// Where the uplink's name comes from: the `interface` value if given, else the network's name
        /// (key `NAME.interface` all the same).
        var uplinkPlace: ConfigValue {
            // The settings were read as a map already, so `mapping()` cannot fail here.
            let given = (try? value.mapping())?.first { $0.name == "interface" }?.value
            return ConfigValue(node: given?.node ?? key.node, path: key.path + ".interface", file: key.file)
        }
    }

    private static func unknownKey(_ key: ConfigValue, isLima: Bool) -> ConfigError {
        key.error("unknown key (expected " + (isLima ? "vmnet, " : "networks, ") + "runDir, stateDir, controlGroup)")
    }

    private static func absolutePath(_ value: ConfigValue) throws(ConfigError) -> String {
        let path = try value.string()
        guard path.hasPrefix("/") else { throw value.error("\"\(path)\" must be an absolute path") }
        return path
    }

    /// A YAML syntax error with its place in the file.
    private static func locate(_ error: any Error, file: String) -> ConfigError {
        guard let error = error as? YamlError else {
            return ConfigError(file: file, line: nil, key: "", reason: "\(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let reason = context.map { "\(problem) (\($0.text) at line \($0.mark.line))" } ?? problem
            return ConfigError(file: file, line: mark.line, key: "", reason: "YAML: " + reason)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(file: file, line: context.mark.line, key: duplicates.joined(separator: ", "),
                               reason: "duplicate key")
        case .reader(let problem, _, _, _):
            return ConfigError(file: file, line: nil, key: "", reason: "YAML: " + problem)
        default:
            return ConfigError(file: file, line: nil, key: "", reason: "YAML: \(error)")
        }
    }
}
