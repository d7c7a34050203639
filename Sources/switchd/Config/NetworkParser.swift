// NetworkParser: one network's settings (DESIGN §5 table) read into a NetworkSpec.
import Glibc
import Proto
import Switch

/// Reads one entry of `networks:` (or Lima's `vmnet:`), applying defaults and checking every value.
enum NetworkParser {
    /// Keys that shape the dataplane and its services today.
    static let activeKeys: Set<String> = [
        "mode", "subnet", "gateway", "mtu", "macAgeing", "macLimit", "queueFrames", "ports",
        "dhcp", "dhcpRange", "leaseTime", "reservations", "dnsProxy", "upstreamDNS", "domain",
        "ipv6", "ipv6Prefix", "routerAdvertisement",
    ]
    /// Keys of the uplink (host/shared modes): checked now, used once that lands.
    static let inertKeys: Set<String> = ["nat44", "nat66", "interface"]

    static let prefixLengths = 16...29
    static let mtuRange = 1280...65520
    /// Without IPv6 the floor is IPv4's minimum reassembly size (RFC 791).
    static let mtuRangeWithoutIPv6 = 576...65520
    static let macAgeingRange = 1...86_400
    static let macLimitRange = 1...4096
    static let queueFramesRange = 1...65_536

    /// `key` is the network's name node (for errors about missing keys), `value` its settings map.
    static func parse(name: String, key: ConfigValue, value: ConfigValue)
        throws(ConfigError) -> (spec: NetworkSpec, inertKeys: [String]) {
        var values: [String: ConfigValue] = [:]
        for (setting, settingKey, settingValue) in try value.mapping() {
            guard activeKeys.contains(setting) || inertKeys.contains(setting) else {
                throw settingKey.error("unknown key")
            }
            values[setting] = settingValue
        }
        func missing(_ setting: String, _ reason: String) -> ConfigError {
            ConfigError(file: key.file, line: key.line, key: "\(key.path).\(setting)", reason: reason)
        }

        // Only isolated networks have a dataplane so far (the uplink port of host/shared is still to come).
        let notYet = "needs the uplink port, not implemented yet; use mode: isolated"
        guard let modeValue = values["mode"] else {
            throw missing("mode", "not given, so it defaults to shared, which \(notYet)")
        }
        let modeText = try modeValue.string()
        guard let mode = NetworkMode(rawValue: modeText) else {
            throw modeValue.error("\"\(modeText)\" is not one of isolated, host, shared")
        }
        guard mode == .isolated else { throw modeValue.error("mode \(mode.rawValue) \(notYet)") }

        guard let subnetValue = values["subnet"] else { throw missing("subnet", "is required") }
        let subnetText = try subnetValue.string()
        guard let subnet = IPv4Subnet(subnetText) else {
            throw subnetValue.error("\"\(subnetText)\" is not an IPv4 subnet like 192.168.109.0/24 (host bits zero)")
        }
        guard prefixLengths.contains(subnet.prefixLength) else {
            throw subnetValue.error("prefix length /\(subnet.prefixLength) is out of range /16../29")
        }

        var spec = NetworkSpec(name: name, mode: mode, subnet: subnet)
        if let gateway = values["gateway"] {
            spec.gateway = try host(gateway, in: subnet)
        }
        let ipv6 = try values["ipv6"]?.bool() ?? true
        if let mtu = values["mtu"] { spec.mtu = try mtu.int(in: ipv6 ? mtuRange : mtuRangeWithoutIPv6) }
        if let v = values["macAgeing"] { spec.macAgeing = try v.int(in: macAgeingRange) }
        if let v = values["macLimit"] { spec.macLimit = try v.int(in: macLimitRange) }
        if let v = values["queueFrames"] { spec.queueFrames = try v.int(in: queueFramesRange) }
        if let ports = values["ports"] {
            spec.ports = []
            for item in try ports.sequence() { spec.ports.append(try port(item)) }
        }
        spec.services = try services(values, subnet: subnet, gateway: spec.gateway)
        return (spec, values.keys.filter { inertKeys.contains($0) })
    }

    /// `{tap: NAME, netns: NS, mac: MAC}` or `{link: IFACE}`.
    static func port(_ item: ConfigValue) throws(ConfigError) -> PortSpec {
        var tap: String?, netns: String?, mac: MACAddress?, link: String?
        var extra: ConfigValue?
        for (setting, settingKey, value) in try item.mapping() {
            switch setting {
            case "tap": tap = try interface(value)
            case "link": link = try interface(value)
            case "netns":
                let name = try value.string()
                if let problem = Names.netnsProblem(name) { throw value.error(problem) }
                netns = name; extra = settingKey
            case "mac": mac = try unicastMAC(value); extra = settingKey
            default: throw settingKey.error("unknown key (a port is {tap: NAME, netns: NS, mac: MAC} or {link: IFACE})")
            }
        }
        switch (tap, link) {
        case (let tap?, nil): return .tap(name: tap, netns: netns, mac: mac)
        case (nil, let link?):
            if let extra { throw extra.error("only tap ports take netns and mac") }
            return .link(interface: link)
        case (_?, _?): throw item.error("a port is either tap or link, not both")
        case (nil, nil): throw item.error("a port needs tap: NAME or link: IFACE")
        }
    }

    private static func interface(_ value: ConfigValue) throws(ConfigError) -> String {
        let name = try value.string()
        if let problem = Names.interfaceProblem(name) { throw value.error(problem) }
        return name
    }

    private static func unicastMAC(_ value: ConfigValue) throws(ConfigError) -> MACAddress {
        let text = try value.string()
        guard let mac = MACAddress(text) else { throw value.error("\"\(text)\" is not a MAC address like 02:00:00:00:00:01") }
        guard !mac.isMulticast, !mac.isZero else { throw value.error("\(mac) is not a unicast address") }
        return mac
    }

    /// A host address of `subnet` (not the network or broadcast address).
    private static func host(_ value: ConfigValue, in subnet: IPv4Subnet) throws(ConfigError) -> IPv4Address {
        let text = try value.string()
        guard let address = IPv4Address(text) else { throw value.error("\"\(text)\" is not an IPv4 address") }
        guard subnet.contains(address), address != subnet.network, address != subnet.broadcast else {
            throw value.error("\(address) is not a host address of \(subnet)")
        }
        return address
    }

    /// The gateway services' keys (DESIGN §5), and the uplink's, which are only checked for now.
    private static func services(_ values: [String: ConfigValue], subnet: IPv4Subnet, gateway: IPv4Address)
        throws(ConfigError) -> ServicesSpec {
        var services = ServicesSpec()
        for flag in ["nat44", "nat66"] { _ = try values[flag]?.bool() }
        if let v = values["interface"] { _ = try interface(v) }
        if let v = values["dhcp"] { services.dhcp = try v.bool() }
        if let v = values["dnsProxy"] { services.dnsProxy = try v.bool() }
        if let v = values["ipv6"] { services.ipv6 = try v.bool() }
        if let v = values["routerAdvertisement"] { services.routerAdvertisement = try v.bool() }
        if let v = values["leaseTime"] { services.leaseTime = try v.int(in: 60...(1 << 31 - 1)) }
        if let v = values["domain"] {
            let text = try v.string()
            guard Names.isDNSName(text) else { throw v.error("\"\(text)\" is not a DNS name like lab.internal") }
            services.domain = text.lowercased()
        }
        if let v = values["ipv6Prefix"] {
            let text = try v.string()
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1] == "64", let prefix = IPv6Address(parts[0]) else {
                throw v.error("\"\(text)\" is not an IPv6 /64 prefix like fd00:1:2:3::/64")
            }
            guard prefix.low == 0 else { throw v.error("\(text) has bits set past the /64") }
            guard !prefix.isMulticast, !prefix.isLinkLocal else { throw v.error("\(text) is not a unicast prefix") }
            services.ipv6Prefix = prefix
        }
        if let v = values["upstreamDNS"] {
            var list: [IPAddress] = []
            for item in try v.sequence() {
                let text = try item.string()
                guard let address = IPAddress(text) else { throw item.error("\"\(text)\" is not an IP address") }
                list.append(address)
            }
            services.upstreamDNS = list
        }
        if let v = values["dhcpRange"] {
            let text = try v.string()
            let ends = text.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count == 2, let first = IPv4Address(ends[0]), let last = IPv4Address(ends[1]) else {
                throw v.error("\"\(text)\" is not a range like 192.168.109.2-192.168.109.254")
            }
            guard first <= last, subnet.contains(first), subnet.contains(last), first > subnet.network, last < subnet.broadcast else {
                throw v.error("\(text) is not a range of host addresses of \(subnet)")
            }
            guard !(first...last).contains(gateway) else { throw v.error("\(text) includes the gateway \(gateway)") }
            services.dhcpRange = first...last
        }
        if let v = values["reservations"] {
            for (_, key, address) in try v.mapping() {
                let mac = try unicastMAC(key)
                let ip = try host(address, in: subnet)
                guard ip != gateway else { throw address.error("\(ip) is the gateway") }
                guard !services.reservations.values.contains(ip) else { throw address.error("\(ip) is reserved twice") }
                services.reservations[mac] = ip
            }
        }
        return services
    }

    private static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}
