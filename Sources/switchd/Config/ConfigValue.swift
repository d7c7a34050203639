// ConfigValue: a YAML node with the key path that reached it, and typed reads that fail with a located error.
import Yams

/// One node of the configuration tree. Reads check the YAML type and throw `ConfigError`s that name
/// the file, the node's line and `path`.
struct ConfigValue {
    let node: Node
    /// Dotted key path from the top of the file, e.g. `networks.lab.mtu`.
    let path: String
    let file: String

    var line: Int? { node.mark?.line }

    func error(_ reason: String) -> ConfigError {
        ConfigError(file: file, line: line, key: path, reason: reason)
    }

    /// What the node is, for "expected X, got Y" messages.
    var kindDescription: String {
        switch node {
        case .mapping: return "a map"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            return node.tag.rawValue == Tag.Name.null.rawValue ? "nothing" : "\"\(scalar.string)\""
        }
    }

    /// The entries of a map in file order; keys must be strings. Each entry's `key` node carries the key's line.
    func mapping() throws(ConfigError) -> [(name: String, key: ConfigValue, value: ConfigValue)] {
        guard case .mapping(let map) = node else { throw error("expected a map, got \(kindDescription)") }
        var entries: [(name: String, key: ConfigValue, value: ConfigValue)] = []
        for (keyNode, valueNode) in map {
            guard case .scalar(let scalar) = keyNode else {
                throw ConfigError(file: file, line: keyNode.mark?.line ?? line, key: path, reason: "map keys must be plain names")
            }
            let childPath = path.isEmpty ? scalar.string : "\(path).\(scalar.string)"
            entries.append((scalar.string, ConfigValue(node: keyNode, path: childPath, file: file),
                            ConfigValue(node: valueNode, path: childPath, file: file)))
        }
        return entries
    }

    /// The items of a list, each with `path[i]`.
    func sequence() throws(ConfigError) -> [ConfigValue] {
        guard case .sequence(let seq) = node else { throw error("expected a list, got \(kindDescription)") }
        return seq.enumerated().map { ConfigValue(node: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// Any scalar's text: YAML would read some names (`12:34:56:12:34:56`, `yes`) as numbers or booleans.
    func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node, node.tag.rawValue != Tag.Name.null.rawValue else {
            throw error("expected a string, got \(kindDescription)")
        }
        return scalar.string
    }

    func bool() throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = node, node.tag.rawValue == Tag.Name.bool.rawValue, let value = Bool.construct(from: scalar) else {
            throw error("expected true or false, got \(kindDescription)")
        }
        return value
    }

    func int() throws(ConfigError) -> Int {
        guard case .scalar(let scalar) = node, node.tag.rawValue == Tag.Name.int.rawValue, let value = Int.construct(from: scalar) else {
            throw error("expected an integer, got \(kindDescription)")
        }
        return value
    }

    /// An integer within `range`; the message quotes the value as written.
    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let value = try int()
        guard range.contains(value) else {
            throw error("\(node.scalar?.string ?? String(value)) is out of range \(range.lowerBound)..\(range.upperBound)")
        }
        return value
    }

    /// A list of strings.
    func strings() throws(ConfigError) -> [String] {
        var result: [String] = []
        for item in try sequence() { result.append(try item.string()) }
        return result
    }
}
