// Firewall: the nftables table of a host or shared network (docs/DESIGN.md §1), `inet switchd-NAME`.
//
// Design note. switchd owns exactly one table per network and never edits another. The ruleset
// is plain text fed to `nft -f -` in one transaction that creates, empties and refills the table,
// so applying it is atomic and idempotent (a leftover from a crash is replaced, not duplicated).
// Policy, per mode:
// - host: packets from the uplink to anything that is not one of the host's own addresses
//   (`fib daddr type local`, plus broadcast and multicast) are rejected in prerouting, before the
//   routing decision: with forwarding off the kernel would drop them silently and connections
//   would hang instead of failing fast. New connections from elsewhere into the subnet are rejected
//   in forward (they can only arrive when the host forwards for someone else, e.g. Docker).
// - shared: the subnet is forwarded and masqueraded to anything outside it (`nat44`), the ULA prefix
//   likewise (`nat66`); replies come back through conntrack; new connections from outside into
//   the subnet are rejected. A family without NAT is treated as in host mode (nothing beyond the
//   host), since ULA and RFC 1918 addresses are not routable out there.
// TCP is refused with a reset, everything else with ICMP administratively prohibited. In both
// modes the DNS proxy's port 53 on the gateway addresses is closed to everyone but the guests
// and the host itself (docs/DESIGN.md §4: it only answers clients on the network).
// Port forwards served by DNAT (Forward/PortForward.swift) add a `nat` prerouting chain (clients
// elsewhere) and a `nat` output chain (the host's own, non-loopback clients), both matching only
// destinations that are local (`fib daddr type local`), so traffic routed through the host is never
// taken; the forward chain accepts `ct status dnat` before its rejects. A forward whose host name
// has no lease gets a reject in the input chain instead (a reset or port unreachable, not a hang).
import Glibc
import Proto
import SwitchSys

enum Firewall {
    /// The table's name: `switchd-NAME` in family `inet`.
    static func table(network: String) -> String { "switchd-\(network)" }

    /// The ruleset of `spec` (a host or shared network), as `nft -f` reads it: the table is
    /// created, flushed by deleting it, and created again with its chains, in one transaction.
    static func ruleset(_ spec: NetworkSpec, forwards: [ForwardRule] = []) -> String {
        let table = table(network: spec.name)
        guard let uplink = spec.uplink else { return "" }
        let shared = spec.mode == .shared
        let nat44 = shared && spec.nat44
        let prefix = spec.ipv6Prefix.map { "\($0)/64" }
        let nat66 = shared && spec.nat66 && prefix != nil
        let notLocal = "fib daddr type != { local, broadcast, multicast }"
        var pre: [String] = []
        // What may not leave the host: everything in host mode, the families without NAT in shared mode.
        switch (nat44, nat66) {
        case (true, true): break
        case (true, false): pre.append("meta nfproto ipv6")
        case (false, true): pre.append("meta nfproto ipv4")
        case (false, false): pre.append("")
        }
        var rules: [String] = []
        for family in pre {
            let match = "iifname \"\(uplink)\" " + (family.isEmpty ? "" : family + " ") + notLocal
            rules.append("\(match) meta l4proto tcp reject with tcp reset")
            rules.append("\(match) reject with icmpx type admin-prohibited")
        }
        var text = """
        table inet \(table)
        delete table inet \(table)
        table inet \(table) {
        \tchain prerouting {
        \t\ttype filter hook prerouting priority filter; policy accept;

        """
        for rule in rules { text += "\t\t\(rule)\n" }
        text += """
        \t}
        \tchain input {
        \t\ttype filter hook input priority filter; policy accept;
        \t\t# The DNS proxy answers the network's clients (and the host's own), nobody else.
        \t\tiifname != { "lo", "\(uplink)" } ip daddr \(spec.gateway) meta l4proto { tcp, udp } th dport 53 reject with icmpx type admin-prohibited

        """
        if let prefix = spec.ipv6Prefix {
            let gateway6 = IPv6Address(high: prefix.high, low: 1)
            text += "\t\tiifname != { \"lo\", \"\(uplink)\" } ip6 daddr \(gateway6) meta l4proto { tcp, udp } th dport 53 reject with icmpx type admin-prohibited\n"
        }
        // Forwards whose guest is not known now: refused at once rather than left to the host.
        for rule in forwards where rule.target == nil {
            let match = "\(destination(rule.forward)) \(rule.forward.proto.rawValue) dport \(rule.forward.hostPorts)"
            text += rule.forward.proto == .tcp ? "\t\t\(match) reject with tcp reset\n" : "\t\t\(match) reject with icmpx type port-unreachable\n"
        }
        text += """
        \t}
        \tchain forward {
        \t\ttype filter hook forward priority filter; policy accept;
        \t\tiifname "\(uplink)" accept
        \t\toifname "\(uplink)" ct state established,related accept
        \t\toifname "\(uplink)" ct status dnat accept
        \t\toifname "\(uplink)" meta l4proto tcp reject with tcp reset
        \t\toifname "\(uplink)" reject with icmpx type admin-prohibited
        \t}

        """
        if nat44 || nat66 {
            text += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
            if nat44 {
                text += "\t\tip saddr \(spec.subnet) ip daddr != \(spec.subnet) oifname != \"\(uplink)\" masquerade\n"
            }
            if nat66, let prefix {
                text += "\t\tip6 saddr \(prefix) ip6 daddr != \(prefix) oifname != \"\(uplink)\" masquerade\n"
            }
            text += "\t}\n"
        }
        let dnat = forwards.compactMap { rule in rule.target.map { (rule.forward, $0) } }
        if !dnat.isEmpty {
            // Clients elsewhere (not the guests: a guest reaching a forward would get replies from
            // a neighbour, not through the gateway) and the host's own clients.
            text += "\tchain forwards-in {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            for (forward, target) in dnat { text += "\t\tiifname != \"\(uplink)\" \(dnatRule(forward, to: target))\n" }
            text += "\t}\n\tchain forwards-local {\n\t\ttype nat hook output priority -100; policy accept;\n"
            for (forward, target) in dnat { text += "\t\t\(dnatRule(forward, to: target))\n" }
            text += "\t}\n"
        }
        text += "}\n"
        return text
    }

    /// The destination match of a forward: its host address, which must be local; a wildcard is
    /// every local address of the family but loopback (the relay serves loopback).
    private static func destination(_ forward: PortForwardSpec) -> String {
        switch forward.hostAddress {
        case .v4(let a): forward.isWildcard ? "fib daddr type local ip daddr != 127.0.0.0/8" : "fib daddr type local ip daddr \(a)"
        case .v6(let a): forward.isWildcard ? "fib daddr type local ip6 daddr != ::1" : "fib daddr type local ip6 daddr \(a)"
        }
    }

    /// `MATCH dnat ip to GUEST[:PORT]`; a range of other guest ports maps each host port to its own
    /// (`tcp dport map`), since a NAT port range would pick any of them.
    static func dnatRule(_ forward: PortForwardSpec, to target: IPAddress) -> String {
        let proto = forward.proto.rawValue
        let match = "\(destination(forward)) \(proto) dport \(forward.hostPorts)"
        let (family, address): (String, String) = switch target {
        case .v4(let a): ("ip", a.description)
        case .v6(let a): ("ip6", "[\(a)]")
        }
        if forward.guestPorts == forward.hostPorts { return "\(match) dnat \(family) to \(address)" }
        if forward.hostPorts.count == 1 { return "\(match) dnat \(family) to \(address):\(forward.guestPorts.first)" }
        let pairs = (0..<forward.hostPorts.count).map { i in
            "\(Int(forward.hostPorts.first) + i) : \(Int(forward.guestPorts.first) + i)"
        }
        return "\(match) dnat \(family) to \(address) : \(proto) dport map { \(pairs.joined(separator: ", ")) }"
    }

    /// Creates (or replaces) the table of `spec`.
    static func install(_ spec: NetworkSpec, forwards: [ForwardRule] = []) throws(SwitchError) {
        let result = Program.run(["nft", "-f", "-"], input: ruleset(spec, forwards: forwards))
        guard result.status == 0 else {
            throw SwitchError("nftables table inet \(table(network: spec.name)): \(result.output)")
        }
    }

    /// Deletes the table of network `name` if it exists; true when there was one.
    @discardableResult
    static func remove(network name: String) -> Bool {
        let table = table(network: name)
        // Creating first makes the delete succeed whether or not the table existed.
        let result = Program.run(["nft", "-f", "-"], input: "table inet \(table)\ndelete table inet \(table)\n")
        if result.status != 0 { Log.warning("cannot delete nftables table inet \(table): \(result.output)") }
        return result.status == 0
    }

    /// The networks whose `inet switchd-NAME` table exists now.
    static func existingTables() -> [String] {
        let result = Program.run(["nft", "list", "tables", "inet"])
        guard result.status == 0 else { return [] }
        return result.output.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "table", words[1] == "inet", words[2].hasPrefix("switchd-") else { return nil }
            return String(words[2].dropFirst("switchd-".count))
        }
    }

    /// Base chains of other tables on the forward hook whose policy is drop: they can block what
    /// switchd's table accepts (a firewall, Docker). One line per chain, for `status` and the log.
    static func blockingChains(in listing: String) -> [String] {
        var found: [String] = []
        var table = ""
        var chain = ""
        for raw in listing.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: " \t")
            if line.hasPrefix("table ") {
                table = String(line.dropFirst(6).dropLast(line.hasSuffix(" {") ? 2 : 0))
            } else if line.hasPrefix("chain ") {
                chain = String(line.dropFirst(6).dropLast(line.hasSuffix(" {") ? 2 : 0))
            } else if line.contains("hook forward"), line.contains("policy drop"), !table.hasPrefix("inet switchd-") {
                found.append("table \(table) chain \(chain) drops forwarded packets by default (policy drop)")
            }
        }
        return found
    }

    /// `blockingChains` of the live ruleset.
    static func blockingChains() -> [String] {
        let result = Program.run(["nft", "list", "chains"])
        return result.status == 0 ? blockingChains(in: result.output) : []
    }
}

/// A forward served by DNAT, with the guest address it goes to now (nil: a host name without a
/// lease, refused until it has one).
struct ForwardRule: Equatable, Sendable {
    var forward: PortForwardSpec
    var target: IPAddress?
}

extension StringProtocol {
    /// The text without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
