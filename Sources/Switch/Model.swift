// The dataplane's public model: what the executable hands in (specs) and gets back (status).
//
// Everything here is a plain value. The executable parses files and arguments into these; the
// forwarding thread never sees a string key.
import Proto
import SwitchSys

/// How a network reaches the host and beyond (docs/DESIGN.md §1): `host` and `shared` have an uplink TAP in
/// switchd's namespace and an nftables table; `isolated` has neither.
public enum NetworkMode: String, Sendable, Codable, CaseIterable {
    case isolated, host, shared
}

/// A port to create at start-up or at run time.
public enum PortSpec: Sendable, Equatable {
    /// A TAP device switchd creates; its kernel side optionally moved into network namespace `netns`.
    case tap(name: String, netns: String?, mac: MACAddress?)
    /// An existing interface joined with AF_PACKET.
    case link(interface: String)

    /// The port's interface name (its id, and its key in `NetworkSpec.portSecurityByPort`).
    public var name: String {
        switch self {
        case .tap(let name, _, _): name
        case .link(let interface): interface
        }
    }
}

/// The gateway services of one network (docs/DESIGN.md §4-5), every default applied.
public struct ServicesSpec: Sendable, Equatable {
    public var dhcp = true
    /// The addresses DHCP hands out; nil: second host .. last host of the subnet.
    public var dhcpRange: ClosedRange<IPv4Address>? = nil
    /// Seconds.
    public var leaseTime = 3600
    public var reservations: [MACAddress: IPv4Address] = [:]
    public var dnsProxy = true
    /// Upstream resolvers; nil: the host's resolv.conf, re-read when it changes.
    public var upstreamDNS: [IPAddress]? = nil
    /// The DNS domain of DHCP clients; nil: `NAME.internal`.
    public var domain: String? = nil
    public var ipv6 = true
    /// The network's IPv6 /64; nil: a ULA prefix derived from the network name.
    public var ipv6Prefix: IPv6Address? = nil
    public var routerAdvertisement = true
    /// DHCP fairness (README "DHCP fairness"): live leases plus pending offers one port may hold.
    public var dhcpLeasesPerPort = 4
    /// Whether a port's DHCP leases end when the port is removed (default: they run on).
    public var releaseLeasesOnPortRemoval = false

    public init() {}
}

/// The port-security guards of a port (README "Port security"): each refuses one kind of frame a
/// guest could use to take the network from the others, and counts it on the port.
public struct PortSecuritySpec: Sendable, Equatable, Hashable {
    /// Source MACs: a port sends only from MACs it learned; a MAC learned on another live port does
    /// not move until it ages out there (`spoofedMac`); past `macLimit` new MACs are refused (`macLimit`).
    public var mac: Bool
    /// IPv4/IPv6 source addresses: in the network's subnet or prefix (or link-local, or unspecified),
    /// and not bound to another port or the gateway (`spoofedIp`).
    public var ip: Bool
    /// ARP and NDP claims: an ARP sender or an NA target bound to another port or the gateway, or an
    /// ARP sender MAC that is not the frame's source (`spoofedArp`, `spoofedNd`).
    public var neighbor: Bool
    /// DHCP server messages (UDP from port 67 or 547) from a guest (`rogueDhcp`).
    public var dhcpServer: Bool
    /// Router advertisements and redirects from a guest (`rogueRa`).
    public var routerAdvertisement: Bool

    public init(mac: Bool, ip: Bool, neighbor: Bool, dhcpServer: Bool, routerAdvertisement: Bool) {
        self.mac = mac; self.ip = ip; self.neighbor = neighbor; self.dhcpServer = dhcpServer
        self.routerAdvertisement = routerAdvertisement
    }

    /// Every guard on: the default for guest ports (TAP, socket and attached ports).
    public static let all = PortSecuritySpec(mac: true, ip: true, neighbor: true, dhcpServer: true, routerAdvertisement: true)
    /// Every guard off: the default for the uplink and `link` ports.
    public static let none = PortSecuritySpec(mac: false, ip: false, neighbor: false, dhcpServer: false, routerAdvertisement: false)

    /// The guards' names as config keys and `status` show them, with whether each is on.
    public var named: [(String, Bool)] {
        [("mac", mac), ("ip", ip), ("neighbor", neighbor), ("dhcpServer", dhcpServer),
         ("routerAdvertisement", routerAdvertisement)]
    }
}

/// A network's VXLAN tunnel (README "VXLAN: one network across hosts"): RFC 7348 to every remote
/// VTEP over an IPv4 or IPv6 underlay, one `vxlan` port per remote.
public struct VXLANSpec: Sendable, Equatable {
    /// The VXLAN network identifier (24 bits).
    public var vni: UInt32
    /// The UDP port switchd binds on `local` and sends to (4789, the IANA port, unless configured).
    public var port: UInt16
    /// The underlay address switchd binds, and sends from.
    public var local: IPAddress
    /// The remote VTEPs (same family as `local`); BUM frames go to each (head-end replication).
    public var remotes: [IPAddress]

    public init(vni: UInt32, port: UInt16 = VXLANHeader.ianaPort, local: IPAddress, remotes: [IPAddress]) {
        self.vni = vni; self.port = port; self.local = local; self.remotes = remotes
    }
}

/// One network, fully resolved: every default applied, every value checked.
public struct NetworkSpec: Sendable, Equatable {
    public var name: String
    public var mode: NetworkMode
    public var subnet: IPv4Subnet
    public var gateway: IPv4Address
    public var mtu: Int
    /// Seconds a learned MAC stays without being seen again.
    public var macAgeing: Int
    /// Learned MACs allowed per port.
    public var macLimit: Int
    /// Frames each port may have waiting to be sent.
    public var queueFrames: Int
    public var ports: [PortSpec]
    public var services = ServicesSpec()
    /// `shared` only: masquerade the subnet (NAT44) and the IPv6 prefix (NAT66) to the outside.
    public var nat44 = true
    public var nat66 = true
    /// The uplink interface of `host`/`shared`; nil: `sw-NAME`.
    public var interface: String? = nil
    /// Port security of the network's guest ports (TAP, socket, attached); the uplink has none.
    public var portSecurity = PortSecuritySpec.all
    /// Port security of named ports (a TAP's or a link's interface name), instead of the default:
    /// `link` ports have none unless listed here.
    public var portSecurityByPort: [String: PortSecuritySpec] = [:]
    /// The network's VXLAN tunnel to other hosts; nil: none.
    public var vxlan: VXLANSpec? = nil
    /// Port forwards from the host into guests (README "Port forwarding"); host and shared only.
    public var portForwards: [PortForwardSpec] = []

    public init(name: String, mode: NetworkMode = .isolated, subnet: IPv4Subnet, gateway: IPv4Address? = nil,
                mtu: Int = 1500, macAgeing: Int = 300, macLimit: Int = 64, queueFrames: Int = 256,
                ports: [PortSpec] = []) {
        self.name = name
        self.mode = mode
        self.subnet = subnet
        self.gateway = gateway ?? subnet.firstHost
        self.mtu = mtu
        self.macAgeing = macAgeing
        self.macLimit = macLimit
        self.queueFrames = queueFrames
        self.ports = ports
    }

    /// The uplink interface's name in `host` and `shared` modes; nil in `isolated` mode.
    public var uplink: String? { mode == .isolated ? nil : interface ?? "sw-\(name)" }

    /// The DNS domain of the network's DHCP clients.
    public var domain: String { services.domain ?? "\(name).internal" }

    /// The network's IPv6 /64: configured, else a ULA prefix (RFC 4193) whose 40-bit global id is
    /// derived from the network name, so it is stable across restarts and hosts; nil without IPv6.
    public var ipv6Prefix: IPv6Address? {
        guard services.ipv6 else { return nil }
        if let prefix = services.ipv6Prefix { return prefix }
        let h = FNV1a.hash("switchd/\(name)".utf8)
        return IPv6Address(high: 0xFD00_0000_0000_0000 | (h & 0xFF_FFFF_FFFF) << 16, low: 0)
    }

    /// The virtual gateway MAC of an `isolated` network: locally administered, derived from the name.
    public var gatewayMAC: MACAddress {
        let h = FNV1a.hash("switchd-gateway/\(name)".utf8)
        return MACAddress(rawValue: 0x0200_0000_0000 | (h & 0xFF_FFFF_FFFF))
    }
}

/// Errors the dataplane reports to the control socket and the command line.
///
/// Structured so that callers need not parse text: `network` is the network it happened in (shown as
/// a "network NAME: " prefix), `underlying` the failed syscall where there was one (its errno for
/// callers that tell cases apart). `description`, the text users see, is the prefix and `message`.
public struct SwitchError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The network the error happened in; nil when not known (yet) or not about one network.
    public var network: String?
    /// What went wrong, without the network prefix.
    public var message: String
    /// The failed system call behind it, if any.
    public var underlying: SysError?

    public init(_ message: String) { self.message = message }

    /// A failed system call, in its own words ("bind PATH: Address already in use").
    public init(_ error: SysError) {
        message = error.description
        underlying = error
    }

    /// The errno of the failed system call behind the error, if any.
    public var errno: Errno? { underlying?.errno }

    public var description: String { network.map { "network \($0): \(message)" } ?? message }

    /// The error as one of network `name`: the same error if it already names a network.
    public func inNetwork(_ name: String) -> SwitchError {
        guard network == nil else { return self }
        var error = self
        error.network = name
        return error
    }
}

/// Packet and byte counts in one direction.
public struct TrafficCount: Codable, Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) { self.packets = packets; self.bytes = bytes }
}

/// One port as `status --json` shows it (docs/status-json.md).
public struct PortStatus: Codable, Sendable, Equatable {
    public var id: String
    /// `tap`, `link`, `dgram`, `stream`, `vxlan`.
    public var kind: String
    /// The TAP name (with `@netns` when moved), the peer's socket path, or `fd`.
    public var peer: String
    public var macs: [String]
    public var offloads: [String]
    public var rx: TrafficCount
    public var tx: TrafficCount
    public var drops: [String: UInt64]
    public var segmented: UInt64
    public var superFrames: UInt64
    /// The port-security guards that are on (`mac`, `ip`, `neighbor`, `dhcpServer`, `routerAdvertisement`).
    public var security: [String]
    public init(id: String, kind: String, peer: String, macs: [String] = [], offloads: [String] = [],
                rx: TrafficCount = .init(), tx: TrafficCount = .init(), drops: [String: UInt64] = [:],
                segmented: UInt64 = 0, superFrames: UInt64 = 0, security: [String] = []) {
        self.id = id; self.kind = kind; self.peer = peer; self.macs = macs; self.offloads = offloads
        self.rx = rx; self.tx = tx; self.drops = drops; self.segmented = segmented; self.superFrames = superFrames
        self.security = security
    }
}

/// The listening sockets of a network; nil where that socket does not exist (yet).
public struct SocketPaths: Codable, Sendable, Equatable {
    public var dgram: String?
    public var stream: String?
    public var dgramOffload: String?
    public var streamOffload: String?
    public var vhostUser: String?
    public init(dgram: String? = nil, stream: String? = nil, dgramOffload: String? = nil, streamOffload: String? = nil,
                vhostUser: String? = nil) {
        self.dgram = dgram; self.stream = stream; self.dgramOffload = dgramOffload; self.streamOffload = streamOffload
        self.vhostUser = vhostUser
    }
}

/// A DHCP lease as `status --json` shows it (empty until the services exist).
public struct LeaseStatus: Codable, Sendable, Equatable {
    public var mac: String
    public var ip: String
    public var hostname: String?
    /// Seconds since the Unix epoch.
    public var expires: Int64
}

/// One network as `status --json` shows it.
public struct NetworkStatus: Codable, Sendable, Equatable {
    public var name: String
    public var mode: String
    public var subnet: String
    public var gateway: String
    public var ipv6Prefix: String?
    public var mtu: Int
    public var uplink: String?
    public var sockets: SocketPaths
    public var ports: [PortStatus]
    public var leases: [LeaseStatus]
    /// Frames dropped before they belonged to a port (docs/status-json.md).
    public var drops: [String: UInt64] = [:]
    /// Problems switchd can see but not fix, e.g. another nftables table dropping forwarded
    /// packets; absent when there are none.
    public var warnings: [String]? = nil
    /// Captures running on this network (`switchd capture`); absent when none.
    public var captures: Int? = nil
    /// Port forwards (config and runtime) with their state; empty for isolated networks.
    public var forwards: [ForwardStatus]? = nil
    public init(name: String, mode: String, subnet: String, gateway: String, ipv6Prefix: String? = nil, mtu: Int,
                uplink: String? = nil, sockets: SocketPaths, ports: [PortStatus], leases: [LeaseStatus] = []) {
        self.name = name; self.mode = mode; self.subnet = subnet; self.gateway = gateway; self.ipv6Prefix = ipv6Prefix
        self.mtu = mtu; self.uplink = uplink; self.sockets = sockets; self.ports = ports; self.leases = leases
    }
}

/// The socket type of a port made by `switchd attach` (docs/DESIGN.md §6): one end of a socketpair.
public enum AttachKind: String, Sendable, Codable, CaseIterable {
    /// SOCK_DGRAM: one frame per datagram (QEMU `dgram,local.type=fd`, libkrun `unixgram,fd=`).
    case dgram
    /// SOCK_STREAM: 4-byte big-endian length, then the frame (QEMU `stream,addr.type=fd`, libkrun `unixstream,fd=`).
    case stream
}

/// A port made by `switchd attach`: its id, and the socketpair end for the client (the caller closes it
/// once it has been passed on).
public struct AttachedPort: Sendable, Equatable {
    public var id: String
    public var clientFD: Int32
    public init(id: String, clientFD: Int32) { self.id = id; self.clientFD = clientFD }
}

/// One learned MAC of a network's forwarding table, as `switchd fdb` shows it.
public struct FDBEntry: Codable, Sendable, Equatable {
    public var mac: String
    /// The id of the port it was learned on.
    public var port: String
    /// Seconds since a frame from it was last seen.
    public var age: Int
    public init(mac: String, port: String, age: Int) { self.mac = mac; self.port = port; self.age = age }
}
