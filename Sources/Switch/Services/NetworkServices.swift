// NetworkServices: the gateway services of one network, as the forwarding loop sees them.
//
// The loop hands over every frame addressed to the gateway MAC or to a multicast group; the
// services answer through `emit` (back to the sender's port, or flooded) and say whether they
// took the frame. Everything here runs on the forwarding thread but only for that traffic
// (ARP, NDP, DHCP, DNS to the gateway), never for frames between guests. The DNS proxy's
// upstream sockets are the only fds; the loop polls them and calls `upstreamReadable`.
import Glibc
import Proto
import SwitchSys

/// Where a frame the services emit goes.
enum ServiceDestination: Equatable {
    /// To one port (the one the request came from).
    case port(slot: UInt16, generation: UInt16)
    /// To every port of the network.
    case flood
}

/// A DNS client in `isolated` mode: the port its query came from, its UDP endpoint, and the
/// gateway address it asked (the answer comes from there).
struct DNSFrameClient: Hashable, Sendable {
    var slot: UInt16
    var generation: UInt16
    var endpoint: GuestEndpoint
    var server: IPAddress
}

/// The DNS proxy's host table: DHCP clients by host name (none without DHCP).
struct LeaseHosts: DNSHostTable {
    let dhcp: DHCPServer?
    func address(of hostname: String) -> IPv4Address? { dhcp?.hostAddress(named: hostname) }
    func ipv6Address(of hostname: String) -> IPv6Address? { nil }
    func hostname(of address: IPv4Address) -> String? { dhcp?.hostName(for: address) }
}

final class NetworkServices {
    let gateway: GatewayIdentity
    let dhcp: DHCPServer?
    private var arp: ARPResponder
    private var ndp: NDPResponder
    private var echo: EchoResponder
    /// Router advertisements (nil with `ipv6: false` or `routerAdvertisement: false`).
    private var router: RouterAdvertiser?
    /// When the next unsolicited RA is due (monotonic seconds).
    private var nextAdvertisement: Double = 0
    private var dns: DNSProxy<DNSFrameClient>?
    /// Where upstream resolvers come from when `upstreamDNS` is not configured (read by `tick`
    /// without a housekeeper; with one, read on its thread and handed over in `resolvUpdates`).
    private var resolvConf: ResolvConfSource?
    private var resolvUpdates: Mailbox<[UpstreamAddress]>?
    /// UDP sockets towards the upstream resolvers (with the DNS proxy only).
    private var upstreams: DNSUpstreams?
    /// The upstream sockets, one per address family (-1: none), for the loop to poll.
    var upstreamIPv4: Int32 { upstreams?.ipv4 ?? -1 }
    var upstreamIPv6: Int32 { upstreams?.ipv6 ?? -1 }
    /// Frames the services did not take although they were for the gateway (isolated mode: dropped).
    private(set) var unanswered: UInt64 = 0
    private var lastResolvCheck: Int64 = 0

    /// Whether a removed port's leases end with it (`releaseLeasesOnPortRemoval`).
    private let releaseLeasesOnPortRemoval: Bool

    /// `stateDir` holds the network's leases (`STATEDIR/NAME/leases`); nil keeps them in memory.
    /// With a `housekeeper` the lease file is written on its thread, never on the caller's.
    init(spec: NetworkSpec, mac: MACAddress, stateDir: String?, housekeeper: Housekeeper? = nil) {
        releaseLeasesOnPortRemoval = spec.services.releaseLeasesOnPortRemoval
        var gateway = spec.gatewayIdentity
        gateway.mac = mac
        self.gateway = gateway
        arp = ARPResponder(gateway: gateway)
        ndp = NDPResponder(gateway: gateway)
        echo = EchoResponder(gateway: gateway, isolated: spec.mode == .isolated)
        if spec.services.ipv6 && spec.services.routerAdvertisement && gateway.ipv6Prefix != nil {
            router = RouterAdvertiser(gateway: gateway)
        }
        if spec.services.dhcp {
            var store: LeaseStore? = nil
            if let stateDir {
                let dir = "\(stateDir)/\(spec.name)"
                let made: Bool
                do throws(SysError) {
                    try File.makeDirectory(dir, mode: 0o755)
                    made = true
                } catch {
                    Log.warning("network \(spec.name): cannot create \(dir): \(error.errno); leases are not saved")
                    made = false
                }
                if made {
                    let file = FileLeaseStore(path: "\(dir)/leases")
                    store = housekeeper.map { BackgroundLeaseStore(file: file, housekeeper: $0) } ?? file
                }
            }
            let range = spec.services.dhcpRange ?? Self.defaultRange(spec.subnet, gateway: spec.gateway)
            dhcp = DHCPServer(gateway: gateway, range: range, leaseTime: spec.services.leaseTime,
                              reservations: spec.services.reservations, store: store,
                              leasesPerPort: spec.services.dhcpLeasesPerPort)
        } else {
            dhcp = nil
        }
        // Host and shared networks serve DNS from kernel sockets on the gateway addresses
        // (KernelDNSServer); queries to port 53 go up the uplink to them.
        if spec.services.dnsProxy && spec.mode == .isolated {
            let own = ResolvConf.addresses(of: gateway)
            var upstreams: [UpstreamAddress]
            if let configured = spec.services.upstreamDNS {
                upstreams = configured.map { address in
                    switch address {
                    case .v4(let a): .ipv4(a)
                    case .v6(let a): .ipv6(a)
                    }
                }
                upstreams = ResolvConf.filter(upstreams, excluding: own)
            } else {
                let source = ResolvConfSource(excluding: own)
                upstreams = source.currentUpstreams()
                if let housekeeper {
                    // stat(2) every 2 s, and a read when it changed, on the housekeeping thread.
                    let mailbox = Mailbox(initial: upstreams)
                    housekeeper.every(seconds: 2) { mailbox.post(source.currentUpstreams()) }
                    resolvUpdates = mailbox
                } else {
                    resolvConf = source
                }
            }
            if let config = DNSProxyConfig(gateway: gateway, upstreams: upstreams) {
                dns = DNSProxy(config: config, hostTable: LeaseHosts(dhcp: dhcp))
                self.upstreams = DNSUpstreams()
            } else {
                Log.warning("network \(spec.name): domain \(spec.domain) is not a valid DNS name; DNS proxy off")
            }
        }
    }

    /// docs/DESIGN.md §5: second host .. last host, without the gateway (when it is the first host the
    /// range starts after it; a gateway elsewhere is excluded by the DHCP server itself).
    static func defaultRange(_ subnet: IPv4Subnet, gateway: IPv4Address) -> ClosedRange<IPv4Address> {
        let first = IPv4Address(rawValue: subnet.firstHost.rawValue + 1)
        return first...subnet.lastHost
    }

    /// True when `address` is one of the gateway's.
    private func isGateway(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let a): a == gateway.ipv4
        case .v6(let a): a == gateway.ipv6Address || a == gateway.linkLocal
        }
    }

    /// A frame to the gateway MAC or a multicast group from port (`slot`, `generation`). Returns
    /// true when a service took it (answered or consumed), so it is not forwarded.
    func handle(_ frame: UnsafeRawBufferPointer, slot: UInt16, generation: UInt16, now: Int64,
                scratch: UnsafeMutableRawBufferPointer, emit: (Int, ServiceDestination) -> Void) -> Bool {
        let back = ServiceDestination.port(slot: slot, generation: generation)
        // Cheapest first: each looks at the EtherType and a few bytes before anything else.
        switch arp.respond(to: frame, into: scratch) {
        case .notMine: break
        case .consumed: return true
        case .reply(let n): emit(n, back); return true
        }
        switch ndp.respond(to: frame, into: scratch) {
        case .notMine: break
        case .consumed: return true
        case .reply(let n): emit(n, back); return true
        }
        if router != nil {
            switch router!.respond(to: frame, into: scratch, now: Self.seconds(now)) {
            case .notMine: break
            case .consumed: return true
            case .reply(let n):
                // An answer to an unspecified source goes to all nodes (the RA is addressed so).
                let destination = MACAddress(loading: scratch.baseAddress!)
                emit(n, destination.isMulticast ? .flood : back)
                return true
            }
        }
        switch echo.respond(to: frame, into: scratch) {
        case .notMine: break
        case .consumed: return true
        case .reply(let n): emit(n, back); return true
        }
        if let dhcp {
            switch dhcp.respond(to: frame, into: scratch, now: Self.wallClock(),
                                port: DHCPPort(slot: slot, generation: generation)) {
            case .notMine: break
            case .consumed: return true
            case .reply(let n):
                emit(n, back)
                return true
            }
        }
        guard let segment = GatewayFrames.segment(in: frame), isGateway(segment.destination),
              segment.destinationPort == 53 else { return false }
        guard dns != nil else { return false }
        switch segment.protocol {
        case .udp:
            let client = DNSFrameClient(slot: slot, generation: generation, endpoint: segment.source, server: segment.destination)
            perform(dns: { $0.handleQuery(Array(segment.payload), from: client, now: now) }, scratch: scratch, emit: emit)
            return true
        case .tcp:
            // DNS over TCP is not served in isolated mode: refuse at once so resolvers fall back fast.
            if let n = GatewayFrames.reset(refusing: segment, from: gateway.mac, into: scratch) { emit(n, back) }
            return true
        default:
            return false
        }
    }

    /// Runs one step of the DNS proxy and carries out what it asks for.
    private func perform(dns step: (inout DNSProxy<DNSFrameClient>) -> [DNSAction<DNSFrameClient>],
                         scratch: UnsafeMutableRawBufferPointer, emit: (Int, ServiceDestination) -> Void) {
        guard dns != nil else { return }
        let actions = step(&dns!)
        for action in actions {
            switch action {
            case .answer(let client, let message):
                let n = message.withUnsafeBytes { payload in
                    GatewayFrames.udp(from: gateway.mac, client.server, port: 53, to: client.endpoint, payload: payload,
                                      into: scratch)
                }
                if let n { emit(n, .port(slot: client.slot, generation: client.generation)) }
            case .forward(let index, let message):
                guard let upstream = dns?.config.upstreams[safe: index] else { continue }
                upstreams?.send(message, to: upstream)
            }
        }
    }

    /// Reads every reply waiting on an upstream socket and passes it to the proxy.
    func upstreamReadable(fd: Int32, now: Int64, scratch: UnsafeMutableRawBufferPointer,
                          emit: (Int, ServiceDestination) -> Void) {
        guard let upstreams else { return }
        while true {
            guard case .datagram(let n, let from) = upstreams.receive(fd), n > 0 else { return }
            guard let sender = from?.upstream,
                  let index = dns?.config.upstreams.firstIndex(where: { $0 == sender }) else {
                continue  // not from a resolver we asked: ignore
            }
            let reply = upstreams.received(n)
            perform(dns: { $0.handleUpstreamReply(reply, from: index, now: now) }, scratch: scratch, emit: emit)
        }
    }

    private static func seconds(_ nanoseconds: Int64) -> Double { Double(nanoseconds) / 1e9 }

    /// Periodic work: unsolicited router advertisements (RFC 4861 §6.2.4 timing), DNS timeouts,
    /// and the host's resolv.conf when it changed (checked every 2 s, by the housekeeper when
    /// there is one: then this only takes what it posted).
    func tick(now: Int64, scratch: UnsafeMutableRawBufferPointer, emit: (Int, ServiceDestination) -> Void) {
        if router != nil {
            let seconds = Self.seconds(now)
            if nextAdvertisement == 0 {
                nextAdvertisement = router!.nextUnsolicited(after: seconds, random: Double.random(in: 0..<1))
            } else if seconds >= nextAdvertisement {
                let n = router!.unsolicited(into: scratch)
                if n > 0 { emit(n, .flood) }
                nextAdvertisement = router!.nextUnsolicited(after: seconds, random: Double.random(in: 0..<1))
            }
        }
        guard dns != nil else { return }
        // Only with queries outstanding: housekeeping on the forwarding thread allocates nothing.
        if dns!.outstandingCount > 0 { perform(dns: { $0.expire(now: now) }, scratch: scratch, emit: emit) }
        var changed: [UpstreamAddress]? = resolvUpdates?.take()
        if let resolvConf, now - lastResolvCheck >= 2_000_000_000 {
            lastResolvCheck = now
            changed = resolvConf.currentUpstreams()
        }
        if let upstreams = changed, upstreams != dns?.config.upstreams {
            Log.info("DNS upstreams now \(upstreams.map(\.description).joined(separator: ", "))")
            perform(dns: { $0.setUpstreams(upstreams, now: now) }, scratch: scratch, emit: emit)
        }
    }
}

extension NetworkServices {
    /// Port (`slot`, `generation`) left the network: its DHCP clients count for no port any more,
    /// and with `releaseLeasesOnPortRemoval` their leases end now (README "DHCP fairness").
    func portRemoved(slot: UInt16, generation: UInt16) {
        dhcp?.portRemoved(DHCPPort(slot: slot, generation: generation), release: releaseLeasesOnPortRemoval,
                          now: Self.wallClock())
    }

    /// The DHCP server's refusals for `status` (`drops.dhcpCapped`, `drops.dhcpRateLimited`), those above 0.
    var dhcpDrops: [(String, UInt64)] {
        guard let counters = dhcp?.counters else { return [] }
        return [("dhcpCapped", counters.capped), ("dhcpRateLimited", counters.rateLimited)]
            .filter { $0.1 > 0 }.map { ($0.0, UInt64($0.1)) }
    }

    /// Seconds since the Unix epoch (lease expiry is wall-clock time, kept across restarts).
    static func wallClock() -> Int64 {
        Int64(Clock.realtime().tv_sec)
    }

    /// The network's leases for `status` and `switchd leases`.
    func leaseStatus() -> [LeaseStatus] {
        (dhcp?.leases(now: Self.wallClock()) ?? []).map {
            LeaseStatus(mac: $0.mac.description, ip: $0.ip.description, hostname: $0.hostname, expires: $0.expires)
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
