// ConfigError: a problem in the configuration file, located by file, line and key.

/// Prints as `FILE:LINE: KEY: REASON`, e.g. `config.yaml:7: networks.lab.mtu: 70000 is out of range 1280..65520`.
struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The file as the user named it.
    var file: String
    /// 1-based line, nil when the problem has no place in the file (unreadable, empty).
    var line: Int?
    /// Dotted key path (`networks.lab.ports[0].tap`); empty for file-level problems.
    var key: String
    var reason: String

    var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if !key.isEmpty { text += key + ": " }
        return text + reason
    }
}
