// Config: the daemon's configuration file (DESIGN §5) read into Switch's typed specs.
import Foundation
import Proto
import Switch
import Yams

/// The configuration, fully checked: networks as the dataplane takes them plus the top-level settings.
struct Config: Equatable {
    var networks: [NetworkSpec]
    /// Absolute; nil when the file does not set it.
    var runDir: String?
    var stateDir: String?
    /// Group allowed to use the control socket (DESIGN §6).
    var controlGroup: String?
    /// Key names that were present and checked but have no effect yet (the gateway services), sorted.
    var inertKeys: [String] = []

    /// Used when no file is given. DESIGN §5 names Lima's vmnet defaults (shared and host), which need the
    /// uplink port; until that exists the default is one isolated network.
    static let builtIn = Config(networks: [
        NetworkSpec(name: "default", mode: .isolated, subnet: IPv4Subnet("192.168.109.0/24")!),
    ])

    /// Reads and checks `file`.
    static func load(file: String) throws(ConfigError) -> Config {
        guard access(file, R_OK) == 0 else {
            throw ConfigError(file: file, line: nil, key: "", reason: "cannot read: \(String(cString: strerror(errno)))")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, line: nil, key: "", reason: "cannot read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: file, line: nil, key: "", reason: "is not UTF-8 text")
        }
        return try parse(yaml: text, file: file)
    }

    /// Parses our format (top-level `networks:`) or Lima's `networks.yaml` (top-level `vmnet:`).
    /// `file` is only used in error messages.
    static func parse(yaml: String, file: String) throws(ConfigError) -> Config {
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
        var inert: Set<String> = []
        for (name, key, value) in try networks.mapping() {
            if let problem = Names.networkProblem(name) { throw key.error(problem) }
            let parsed = try NetworkParser.parse(name: name, key: key, value: value)
            config.networks.append(parsed.spec)
            inert.formUnion(parsed.inertKeys)
        }
        guard !config.networks.isEmpty else { throw networks.error("defines no networks") }
        try checkAcrossNetworks(networks)
        config.inertKeys = inert.sorted()
        return config
    }

    /// Subnets must not overlap and each interface may be used by one port only.
    private static func checkAcrossNetworks(_ networks: ConfigValue) throws(ConfigError) {
        var subnets: [(subnet: IPv4Subnet, path: String, line: Int?)] = []
        var interfaces: [String: String] = [:]
        for (_, _, value) in try networks.mapping() {
            for (key, _, item) in try value.mapping() {
                if key == "subnet", let subnet = IPv4Subnet(try item.string()) {
                    if let other = subnets.first(where: { $0.subnet.overlaps(subnet) }) {
                        throw item.error("\(subnet) overlaps \(other.path) \(other.subnet)" + (other.line.map { " (line \($0))" } ?? ""))
                    }
                    subnets.append((subnet, item.path, item.line))
                }
                if key == "ports" {
                    for port in try item.sequence() {
                        for (portKey, _, name) in try port.mapping() where portKey == "tap" || portKey == "link" {
                            let interface = try name.string()
                            if let other = interfaces[interface] {
                                throw name.error("interface \(interface) is already used by \(other)")
                            }
                            interfaces[interface] = name.path
                        }
                    }
                }
            }
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
