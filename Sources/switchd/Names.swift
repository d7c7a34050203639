// Names: the rules for network, interface and namespace names, shared by the config and the control socket.

/// Checks names before they reach the dataplane; each function returns why a name is bad, or nil.
enum Names {
    /// Network names are `[a-z][a-z0-9-]{0,11}` so that `sw-NAME` fits the 15-character interface limit (docs/DESIGN.md §1).
    static func networkProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), bytes.count <= 12,
              bytes.allSatisfy({ isLowercaseLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") })
        else { return "\"\(name)\" is not a valid network name (a lowercase letter, then up to 11 of a-z, 0-9, -)" }
        return nil
    }

    /// Linux interface names (`dev_valid_name`): 1..15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
    static func interfaceProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "interface name is empty" }
        if bytes.count > 15 { return "interface name \"\(name)\" is longer than 15 characters" }
        if name == "." || name == ".." || bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 >= 0x7F }) {
            return "\"\(name)\" is not a valid interface name"
        }
        return nil
    }

    /// Network namespace names as `ip netns` keeps them: a file name under /run/netns.
    static func netnsProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty || bytes.count > 255 || name == "." || name == ".."
            || bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 <= 0x20 || $0 >= 0x7F }) {
            return "\"\(name)\" is not a valid network namespace name"
        }
        return nil
    }

    /// A DNS name of letters, digits and hyphens: labels of 1-63, at most 253 in all (RFC 1035 §2.3.1).
    static func isDNSName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let l = Array(label.utf8)
            guard (1...63).contains(l.count), l.first != UInt8(ascii: "-"), l.last != UInt8(ascii: "-") else { return false }
            return l.allSatisfy { b in
                isDigit(b) || b == UInt8(ascii: "-") || isLowercaseLetter(b | 0x20)
            }
        }
    }

    private static func isLowercaseLetter(_ b: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) }
    private static func isDigit(_ b: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) }
}
