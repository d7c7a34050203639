// PortForward: the port-forward rule model (README "Port forwarding"), shared by the config file,
// the control socket and `PortForwards`: what is forwarded, which engine serves it, and the
// checks that make a rule valid on a network.
//
// Design note. One rule model, two engines (docs/decisions.md "Port forwarding: DNAT and a relay"):
// nftables DNAT in the network's own table where the kernel forwards that family for the network
// (`shared` with NAT for it) and the host address is not loopback, so guests see the client's real
// address; a userspace relay (host socket -> kernel socket to the guest) everywhere else (loopback
// addresses, `host` mode, which never forwards, a family without NAT, an IPv6 host address for an
// IPv4 target), where guests see the gateway's address.
import Proto

/// The transport of a forward.
public enum ForwardProtocol: String, Sendable, Codable, CaseIterable {
    case tcp, udp
}

/// A guest: an address, or a DHCP host name resolved through the network's leases.
public enum ForwardTarget: Sendable, Hashable, CustomStringConvertible {
    case address(IPAddress)
    case name(String)

    /// An IP address if `text` is one, else a host name (lower-cased); nil when it is neither a
    /// single DNS label nor `LABEL.DOMAIN` (only the label is kept).
    public init?(_ text: String) {
        if let address = IPAddress(text) { self = .address(address); return }
        let label = text.lowercased().split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
              label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return nil }
        self = .name(label)
    }

    public var description: String {
        switch self {
        case .address(let a): a.description
        case .name(let n): n
        }
    }
}

/// A port or an inclusive range of ports, 1...65535.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public var first: UInt16
    public var last: UInt16

    public init?(first: Int, last: Int) {
        guard (1...65535).contains(first), (1...65535).contains(last), first <= last else { return nil }
        self.first = UInt16(first); self.last = UInt16(last)
    }

    /// `N` or `N-M`; the reason when it is not a valid port or range.
    public static func parse(_ text: String) -> Result<PortRange, PortRangeProblem> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let a = Int(parts[0].trimmingSpaces), let b = Int(parts.last!.trimmingSpaces) else {
            return .failure(PortRangeProblem(message: "\"\(text)\" is not a port or a range like 8080 or 8080-8089"))
        }
        for n in [a, b] where !(1...65535).contains(n) {
            return .failure(PortRangeProblem(message: "port \(n) is out of range 1..65535"))
        }
        guard let range = PortRange(first: a, last: b) else {
            return .failure(PortRangeProblem(message: "\"\(text)\" is not a range: \(a) is above \(b)"))
        }
        return .success(range)
    }

    public var count: Int { Int(last) - Int(first) + 1 }
    public func overlaps(_ other: PortRange) -> Bool { first <= other.last && other.first <= last }
    public func contains(_ port: UInt16) -> Bool { first <= port && port <= last }
    public var description: String { first == last ? "\(first)" : "\(first)-\(last)" }
}

/// Why a port range did not parse.
public struct PortRangeProblem: Error, Sendable, Equatable {
    public var message: String
}

/// How a forward reaches its guest.
public enum ForwardEngine: String, Sendable, Codable {
    /// nftables DNAT in the network's table (the client's own address reaches the guest).
    case dnat
    /// switchd's userspace relay (the guest sees the gateway's address).
    case relay
}

/// One port forward: `proto` connections to `hostAddress`:`hostPorts` go to `guest`:`guestPorts`
/// (the n-th host port to the n-th guest port).
public struct PortForwardSpec: Sendable, Hashable {
    public var proto: ForwardProtocol
    /// A unicast address of the host, or 0.0.0.0 / :: for every address of that family but loopback.
    public var hostAddress: IPAddress
    public var hostPorts: PortRange
    public var guest: ForwardTarget
    public var guestPorts: PortRange

    public init(proto: ForwardProtocol, hostAddress: IPAddress, hostPorts: PortRange, guest: ForwardTarget, guestPorts: PortRange) {
        self.proto = proto; self.hostAddress = hostAddress; self.hostPorts = hostPorts; self.guest = guest; self.guestPorts = guestPorts
    }

    /// The host addresses of a forward that names none: the host itself over IPv4 and IPv6.
    public static let defaultHostAddresses: [IPAddress] = [.v4(IPv4Address(127, 0, 0, 1)), .v6(IPv6Address(high: 0, low: 1))]

    /// The forward's id, unique on a host (host ports of one protocol and address never overlap):
    /// `tcp:127.0.0.1:8080`, `udp:[::1]:5000-5009`.
    public var id: String {
        switch hostAddress {
        case .v4(let a): "\(proto.rawValue):\(a):\(hostPorts)"
        case .v6(let a): "\(proto.rawValue):[\(a)]:\(hostPorts)"
        }
    }

    /// `PROTO HOST:PORTS -> GUEST:PORTS`, for messages.
    public var summary: String {
        let guestText: String = if case .address(.v6(let a)) = guest { "[\(a)]" } else { guest.description }
        return "\(id) -> \(guestText):\(guestPorts)"
    }

    /// The guest port of host port `port` (one of `hostPorts`).
    public func guestPort(for port: UInt16) -> UInt16 { guestPorts.first &+ (port &- hostPorts.first) }

    /// Whether the host address is 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        switch hostAddress {
        case .v4(let a): a.rawValue >> 24 == 127
        case .v6(let a): a == IPv6Address(high: 0, low: 1)
        }
    }

    /// Whether the host address is 0.0.0.0 or ::.
    public var isWildcard: Bool {
        switch hostAddress {
        case .v4(let a): a.rawValue == 0
        case .v6(let a): a.isUnspecified
        }
    }

    /// Whether the two would claim a common host port: same protocol and family, the same address
    /// or a wildcard, overlapping ports.
    public func conflicts(with other: PortForwardSpec) -> Bool {
        guard proto == other.proto, hostPorts.overlaps(other.hostPorts) else { return false }
        switch (hostAddress, other.hostAddress) {
        case (.v4, .v4), (.v6, .v6):
            return hostAddress == other.hostAddress || isWildcard || other.isWildcard
        default:
            return false
        }
    }

    /// The engine that serves the forward on `network` (see the design note above).
    public func engine(on network: NetworkSpec) -> ForwardEngine {
        guard !isLoopback, network.mode == .shared else { return .relay }
        switch (hostAddress, guest) {
        case (.v4, .name), (.v4, .address(.v4)):
            return network.nat44 ? .dnat : .relay
        case (.v6, .address(.v6)):
            return network.nat66 && network.ipv6Prefix != nil ? .dnat : .relay
        default:
            return .relay
        }
    }

    /// Why the forward cannot exist on `network`, or nil. Each problem is tied to one field (for
    /// the config file's located errors): `field` is `proto`, `hostAddress`, `hostPort`, `guest`
    /// or `guestPort`, or nil for the forward as a whole.
    public func problem(on network: NetworkSpec) -> (field: String?, message: String)? {
        guard network.mode != .isolated else {
            return (nil, "port forwards need a host or shared network: an isolated network has no uplink, and switchd has "
                    + "no TCP/IP stack of its own to end connections on the guest side (README \"Port forwarding\")")
        }
        switch hostAddress {
        case .v4(let a):
            guard a.rawValue >> 28 != 0xE, a.rawValue != 0xFFFF_FFFF else { return ("hostAddress", "\(a) is not a unicast address") }
        case .v6(let a):
            guard !a.isMulticast else { return ("hostAddress", "\(a) is not a unicast address") }
            guard !a.isLinkLocal else { return ("hostAddress", "\(a) is link-local; use a global, ULA or loopback address") }
        }
        guard guestPorts.count == hostPorts.count else {
            return ("guestPort", "\(guestPorts) has \(guestPorts.count) port\(guestPorts.count == 1 ? "" : "s") but hostPort "
                    + "\(hostPorts) has \(hostPorts.count): the ranges must be of the same length")
        }
        if case .address(let address) = guest {
            switch address {
            case .v4(let a):
                let subnet = network.subnet
                guard subnet.contains(a), a != subnet.network, a != subnet.broadcast else {
                    return ("guest", "\(a) is not a host address of the network's subnet \(subnet)")
                }
                guard a != network.gateway else { return ("guest", "\(a) is the gateway, not a guest") }
            case .v6(let a):
                guard let prefix = network.ipv6Prefix else {
                    return ("guest", "\(a) is an IPv6 address, but the network has ipv6: false")
                }
                guard a.high == prefix.high else { return ("guest", "\(a) is not in the network's prefix \(prefix)/64") }
                guard a.low != 1 else { return ("guest", "\(a) is the gateway, not a guest") }
                guard a.low != 0 else { return ("guest", "\(a) is the prefix itself, not a guest") }
            }
        }
        return nil
    }
}

/// One forward as `status --json` and `forward list --json` show it (docs/status-json.md).
public struct ForwardStatus: Codable, Sendable, Equatable {
    public var id: String
    public var proto: String
    public var hostAddress: String
    /// `N` or `N-M`.
    public var hostPort: String
    /// The address or host name as configured.
    public var guest: String
    public var guestPort: String
    /// The guest address in use; nil while a host name has no lease.
    public var resolved: String?
    /// `active` (forwarding), `unresolved` (a host name without a lease: connections are refused).
    public var state: String
    /// `dnat` or `relay`.
    public var engine: String
    /// `config` or `runtime` (runtime forwards last until switchd restarts or reloads).
    public var origin: String

    public init(id: String, proto: String, hostAddress: String, hostPort: String, guest: String, guestPort: String,
                resolved: String?, state: String, engine: String, origin: String) {
        self.id = id; self.proto = proto; self.hostAddress = hostAddress; self.hostPort = hostPort; self.guest = guest
        self.guestPort = guestPort; self.resolved = resolved; self.state = state; self.engine = engine; self.origin = origin
    }
}

private extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
