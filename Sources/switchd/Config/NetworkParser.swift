// NetworkParser: one network's settings (docs/DESIGN.md §5 table) read into a NetworkSpec.
import Glibc
import Proto
import Switch
import SwitchSys

/// Reads one entry of `networks:` (or Lima's `vmnet:`), applying defaults and checking every value.
enum NetworkParser {
    /// Every key of a network (docs/DESIGN.md §5).
    static let keys: Set<String> = [
        "mode", "subnet", "gateway", "mtu", "macAgeing", "macLimit", "queueFrames", "ports",
        "dhcp", "dhcpRange", "leaseTime", "reservations", "dnsProxy", "upstreamDNS", "domain",
        "ipv6", "ipv6Prefix", "routerAdvertisement", "nat44", "nat66", "interface", "portSecurity",
        "dhcpLeasesPerPort", "releaseLeasesOnPortRemoval", "vxlan", "portForwards",
    ]

    static let prefixLengths = 16...29
    static let mtuRange = 1280...65520
    /// Without IPv6 the floor is IPv4's minimum reassembly size (RFC 791).
    static let mtuRangeWithoutIPv6 = 576...65520
    static let macAgeingRange = 1...86_400
    static let macLimitRange = 1...4096
    static let queueFramesRange = 1...65_536
    /// `dhcpLeasesPerPort` (README "DHCP fairness"): at least one; a /16's pool at most.
    static let dhcpLeasesPerPortRange = 1...65_536

    /// `key` is the network's name node (for errors about missing keys), `value` its settings map.
    /// Checks within the network only; names shared across networks and the machine's interfaces are
    /// `Config`'s to check.
    /// `underlay` finds the interface holding `vxlan.local` and its MTU (the machine's, by default).
    static func parse(name: String, key: ConfigValue, value: ConfigValue,
                      underlay: (IPAddress) -> (name: String, mtu: Int)? = UnderlayInterface.interface(holding:))
        throws(ConfigError) -> NetworkSpec {
        var values: [String: ConfigValue] = [:]
        for (setting, settingKey, settingValue) in try value.mapping() {
            guard keys.contains(setting) else {
                throw settingKey.error("unknown key")
            }
            values[setting] = settingValue
        }
        func missing(_ setting: String, _ reason: String) -> ConfigError {
            ConfigError(file: key.file, line: key.line, key: "\(key.path).\(setting)", reason: reason)
        }

        var mode = NetworkMode.shared  // the default when not given (docs/DESIGN.md §5)
        if let modeValue = values["mode"] {
            let modeText = try modeValue.string()
            guard let given = NetworkMode(rawValue: modeText) else {
                throw modeValue.error("\"\(modeText)\" is not one of isolated, host, shared")
            }
            mode = given
        }

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
        if let v = values["portSecurity"] { spec.portSecurity = try portSecurity(v, base: .all) }
        if let ports = values["ports"] {
            spec.ports = []
            for item in try ports.sequence() {
                let (port, security) = try port(item, networkSecurity: spec.portSecurity)
                spec.ports.append(port)
                if let security { spec.portSecurityByPort[port.name] = security }
            }
        }
        spec.services = try services(values, subnet: subnet, gateway: spec.gateway)
        // Lima: "host mode ignores routerAdvertisement setting". A host network still advertises its
        // prefix for SLAAC, with router lifetime 0 (no default route through switchd).
        if mode == .host { spec.services.routerAdvertisement = true }
        try uplink(values, into: &spec)
        if let v = values["vxlan"] { spec.vxlan = try vxlan(v, mtu: values["mtu"], spec: spec, underlay: underlay) }
        if let v = values["portForwards"] { spec.portForwards = try portForwards(v, network: spec).map(\.spec) }
        return spec
    }

    /// `nat44`, `nat66` and `interface`. NAT is `shared` only, but both flags are accepted (type-checked) and
    /// ignored in the other modes: Lima's own networks.yaml sets them on its `host` network.
    private static func uplink(_ values: [String: ConfigValue], into spec: inout NetworkSpec) throws(ConfigError) {
        if let v = values["nat44"] { spec.nat44 = try v.bool() }
        if let v = values["nat66"] {
            spec.nat66 = try v.bool()
            if spec.nat66, !spec.services.ipv6, spec.mode == .shared {
                throw v.error("nat66 needs IPv6, but ipv6 is false")
            }
        }
        // Without IPv6 there is nothing to translate; a default (or an ignored) nat66 just turns off.
        if !spec.services.ipv6 { spec.nat66 = false }
        if let v = values["interface"] {
            let name = try interface(v)
            guard spec.mode != .isolated else {
                throw v.error("interface is the uplink of host and shared networks; isolated networks have none")
            }
            spec.interface = name
        }
    }

    /// The guards of `portSecurity`: `true` (all on), `false` (all off), or a map of the guards to
    /// change from `base`, e.g. `{ip: false}`.
    static func portSecurity(_ value: ConfigValue, base: PortSecuritySpec) throws(ConfigError) -> PortSecuritySpec {
        if case .scalar = value.node { return try value.bool() ? .all : .none }
        var spec = base
        for (setting, settingKey, flag) in try value.mapping() {
            switch setting {
            case "mac": spec.mac = try flag.bool()
            case "ip": spec.ip = try flag.bool()
            case "neighbor": spec.neighbor = try flag.bool()
            case "dhcpServer": spec.dhcpServer = try flag.bool()
            case "routerAdvertisement": spec.routerAdvertisement = try flag.bool()
            default:
                throw settingKey.error("unknown guard (portSecurity is true, false, or a map of mac, ip, neighbor, dhcpServer, routerAdvertisement to true/false)")
            }
        }
        return spec
    }

    /// `{tap: NAME, netns: NS, mac: MAC, portSecurity: ...}` or `{link: IFACE, portSecurity: ...}`,
    /// with the port's own guards when it sets them (a map changes the network's guards for a TAP,
    /// none for a link).
    static func port(_ item: ConfigValue, networkSecurity: PortSecuritySpec = .all)
        throws(ConfigError) -> (PortSpec, PortSecuritySpec?) {
        var tap: String?, netns: String?, mac: MACAddress?, link: String?
        var extra: ConfigValue?
        var securityValue: ConfigValue?
        for (setting, settingKey, value) in try item.mapping() {
            switch setting {
            case "portSecurity": securityValue = value
            case "tap": tap = try interface(value)
            case "link": link = try interface(value)
            case "netns":
                let name = try value.string()
                if let problem = Names.netnsProblem(name) { throw value.error(problem) }
                netns = name; extra = settingKey
            case "mac": mac = try unicastMAC(value); extra = settingKey
            default: throw settingKey.error("unknown key (a port is {tap: NAME, netns: NS, mac: MAC} or {link: IFACE}, either with portSecurity)")
            }
        }
        switch (tap, link) {
        case (let tap?, nil):
            let security = try securityValue.map { v throws(ConfigError) in try portSecurity(v, base: networkSecurity) }
            return (.tap(name: tap, netns: netns, mac: mac), security)
        case (nil, let link?):
            if let extra { throw extra.error("only tap ports take netns and mac") }
            let security = try securityValue.map { v throws(ConfigError) in try portSecurity(v, base: .none) }
            return (.link(interface: link), security)
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

    /// The gateway services' keys (docs/DESIGN.md §5).
    private static func services(_ values: [String: ConfigValue], subnet: IPv4Subnet, gateway: IPv4Address)
        throws(ConfigError) -> ServicesSpec {
        var services = ServicesSpec()
        if let v = values["dhcp"] { services.dhcp = try v.bool() }
        if let v = values["dnsProxy"] { services.dnsProxy = try v.bool() }
        if let v = values["ipv6"] { services.ipv6 = try v.bool() }
        if let v = values["routerAdvertisement"] { services.routerAdvertisement = try v.bool() }
        if let v = values["leaseTime"] { services.leaseTime = try v.int(in: 60...(1 << 31 - 1)) }
        if let v = values["dhcpLeasesPerPort"] { services.dhcpLeasesPerPort = try v.int(in: dhcpLeasesPerPortRange) }
        if let v = values["releaseLeasesOnPortRemoval"] { services.releaseLeasesOnPortRemoval = try v.bool() }
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

    /// `vxlan: {vni: N, port: 4789, local: ADDR, remotes: [ADDR, ...]}` (README "VXLAN: one network
    /// across hosts"). The network MTU must fit the underlay: MTU + 50 (IPv4) or + 70 (IPv6) bytes
    /// of VXLAN, UDP, outer IP and inner Ethernet headers (RFC 7348 §4) at most the MTU of the
    /// interface that holds `local`.
    static func vxlan(_ value: ConfigValue, mtu mtuValue: ConfigValue?, spec: NetworkSpec,
                      underlay: (IPAddress) -> (name: String, mtu: Int)?) throws(ConfigError) -> VXLANSpec {
        var vni: UInt32?, port = VXLANHeader.ianaPort, local: IPAddress?, localValue: ConfigValue?
        var remotes: [(address: IPAddress, value: ConfigValue)] = [], remotesValue: ConfigValue?
        for (setting, settingKey, v) in try value.mapping() {
            switch setting {
            case "vni": vni = UInt32(try v.int(in: 0...Int(VXLANHeader.maxVNI)))
            case "port": port = UInt16(try v.int(in: 1...65535))
            case "local":
                local = try underlayAddress(v)
                localValue = v
            case "remotes":
                remotesValue = v
                for item in try v.sequence() {
                    let address = try underlayAddress(item)
                    guard !remotes.contains(where: { $0.address == address }) else { throw item.error("\(address) is listed twice") }
                    remotes.append((address, item))
                }
            default:
                throw settingKey.error("unknown key (vxlan is {vni: N, port: 4789, local: ADDR, remotes: [ADDR, ...]})")
            }
        }
        func missing(_ setting: String) -> ConfigError {
            ConfigError(file: value.file, line: value.line, key: "\(value.path).\(setting)", reason: "is required")
        }
        guard let vni else { throw missing("vni") }
        guard let local, let localValue else { throw missing("local") }
        guard let remotesValue else { throw missing("remotes") }
        guard !remotes.isEmpty else { throw remotesValue.error("lists no remote VTEP") }
        let isV6: (IPAddress) -> Bool = { if case .v6 = $0 { true } else { false } }
        for (remote, item) in remotes {
            guard isV6(remote) == isV6(local) else {
                throw item.error("\(remote) is not of the family of vxlan.local \(local) (one underlay family per network)")
            }
            guard remote != local else { throw item.error("\(remote) is vxlan.local itself") }
        }
        // The inner MTU is the network MTU; the outer packet must fit the underlay (RFC 7348 §4).
        let overhead = isV6(local) ? VXLANHeader.overheadIPv6 : VXLANHeader.overheadIPv4
        let family = isV6(local) ? "IPv6" : "IPv4"
        guard let (interface, underlayMTU) = underlay(local) else {
            throw localValue.error("no interface of this host holds \(local), so mtu cannot be checked against the "
                                   + "underlay (vxlan.local must be an address of this host)")
        }
        guard spec.mtu + overhead <= underlayMTU else {
            // Located at `mtu` when the file sets it, else at vxlan.local (the default MTU has no line).
            throw (mtuValue ?? localValue).error(
                "mtu \(spec.mtu)\(mtuValue == nil ? " (the default)" : "") + \(overhead) bytes of VXLAN over \(family) is more "
                + "than the MTU \(underlayMTU) of \(interface), the interface that holds vxlan.local \(local): "
                + "set mtu to at most \(underlayMTU - overhead)")
        }
        return VXLANSpec(vni: vni, port: port, local: local, remotes: remotes.map(\.address))
    }

    /// The keys of one `portForwards` entry.
    static let portForwardKeys = "proto, hostAddress, hostPort, guest, guestPort"

    /// `portForwards: [{proto: tcp|udp, hostAddress: ADDR, hostPort: N or "N-M", guest: NAME-or-IP,
    /// guestPort: N or "N-M"}]` (README "Port forwarding"), each with the entry it came from. An
    /// entry without `hostAddress` is two forwards, from 127.0.0.1 and from ::1; `guestPort`
    /// defaults to `hostPort`. Host ports of one protocol and address may not overlap.
    static func portForwards(_ value: ConfigValue, network: NetworkSpec)
        throws(ConfigError) -> [(spec: PortForwardSpec, item: ConfigValue)] {
        let items = try value.sequence()
        if network.mode == .isolated, !items.isEmpty {
            throw value.error("port forwards need a host or shared network: an isolated network has no uplink, and "
                              + "switchd has no TCP/IP stack of its own to end connections on the guest side "
                              + "(README \"Port forwarding\")")
        }
        var result: [(spec: PortForwardSpec, item: ConfigValue)] = []
        for item in items {
            var fields: [String: ConfigValue] = [:]
            for (setting, settingKey, v) in try item.mapping() {
                guard ["proto", "hostAddress", "hostPort", "guest", "guestPort"].contains(setting) else {
                    throw settingKey.error("unknown key (a port forward is {\(portForwardKeys)})")
                }
                fields[setting] = v
            }
            func required(_ key: String) throws(ConfigError) -> ConfigValue {
                guard let v = fields[key] else {
                    throw ConfigError(file: item.file, line: item.line, key: "\(item.path).\(key)", reason: "is required")
                }
                return v
            }
            let protoValue = try required("proto")
            let protoText = try protoValue.string()
            guard let proto = ForwardProtocol(rawValue: protoText) else { throw protoValue.error("\"\(protoText)\" is not tcp or udp") }
            let hostPortValue = try required("hostPort")
            let hostPorts = try portRange(hostPortValue)
            let guestValue = try required("guest")
            let guestText = try guestValue.string()
            guard let guest = ForwardTarget(guestText) else {
                throw guestValue.error("\"\(guestText)\" is neither an IP address nor a DHCP host name")
            }
            let guestPortValue = fields["guestPort"]
            let guestPorts = try guestPortValue.map { v throws(ConfigError) in try portRange(v) } ?? hostPorts
            var addresses = PortForwardSpec.defaultHostAddresses
            if let v = fields["hostAddress"] {
                let text = try v.string()
                guard let address = IPAddress(text) else { throw v.error("\"\(text)\" is not an IPv4 or IPv6 address") }
                addresses = [address]
            }
            for address in addresses {
                let spec = PortForwardSpec(proto: proto, hostAddress: address, hostPorts: hostPorts, guest: guest, guestPorts: guestPorts)
                if let problem = spec.problem(on: network) {
                    let place = problem.field.flatMap { field in field == "guestPort" ? (guestPortValue ?? hostPortValue) : fields[field] } ?? item
                    throw place.error(problem.message)
                }
                if let other = result.first(where: { $0.spec.conflicts(with: spec) }) {
                    throw hostPortValue.error("\(spec.id) overlaps \(other.item.path) (\(other.spec.id))"
                                              + (other.item.line.map { " at line \($0)" } ?? ""))
                }
                result.append((spec, item))
            }
        }
        return result
    }

    /// A port `N` or a range `"N-M"` of ports 1..65535.
    private static func portRange(_ value: ConfigValue) throws(ConfigError) -> PortRange {
        switch PortRange.parse(try value.string()) {
        case .success(let range): return range
        case .failure(let problem): throw value.error(problem.message)
        }
    }

    /// A unicast underlay address: IPv4, or IPv6 that is not link-local (a link-local underlay
    /// would need an interface scope that the config does not carry).
    private static func underlayAddress(_ value: ConfigValue) throws(ConfigError) -> IPAddress {
        let text = try value.string()
        guard let address = IPAddress(text) else { throw value.error("\"\(text)\" is not an IPv4 or IPv6 address") }
        switch address {
        case .v4(let a):
            guard a.rawValue != 0, a.rawValue >> 28 != 0xE, a.rawValue != 0xFFFF_FFFF else {
                throw value.error("\(a) is not a unicast address (multicast VTEP groups are not supported: list each remote)")
            }
        case .v6(let a):
            guard !a.isUnspecified, !a.isMulticast else {
                throw value.error("\(a) is not a unicast address (multicast VTEP groups are not supported: list each remote)")
            }
            guard !a.isLinkLocal else { throw value.error("\(a) is link-local; use a global or ULA underlay address") }
        }
        return address
    }

    private static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}
