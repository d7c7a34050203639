// Switchboard: every network of the daemon, started, stopped and replaced as a whole (reload).
//
// Design note. Each network runs in its own Dataplane with its own forwarding thread: networks
// share no frames, so nothing is lost by keeping them apart, and a reload can start or stop one
// without touching the others' ports, queues or MAC tables (docs/DESIGN.md §6: "untouched networks keep
// their ports"). A host or shared network adds, around its dataplane, the uplink TAP (a port of
// that dataplane), the nftables table `inet switchd-NAME`, the forwarding sysctls and the DNS
// server on kernel sockets. Start order is dataplane (with uplink), table, sysctls, DNS, thread;
// stop is the reverse. Host-wide state that outlives a crash (sysctls, tables) is recorded in the
// state directory and cleaned at the next start (`recover`).
import Proto
import SwitchSys

public final class Switchboard: @unchecked Sendable {
    /// One running network.
    private final class Running {
        var spec: NetworkSpec
        let dataplane: Dataplane
        var dns: KernelDNSServer?
        /// Port forwards (Forward/PortForwards.swift); host and shared networks only.
        var forwards: PortForwards?
        var warnings: [String] = []
        init(spec: NetworkSpec, dataplane: Dataplane) { self.spec = spec; self.dataplane = dataplane }
    }

    private let runDir: String
    private let stateDir: String?
    private var running: [Running] = []
    private let mutex = Lock()
    private let sysctl: Sysctl?
    /// The file listing the nftables tables this instance created (`STATEDIR/nftables`).
    private let tablesRecord: String?

    /// Forwarding threads per network (`switchd run --threads`).
    private let threads: Int

    public init(runDir: String, stateDir: String?, threads: Int = 1) {
        self.runDir = runDir
        self.stateDir = stateDir
        self.threads = threads
        sysctl = stateDir.map { Sysctl(stateDir: $0) }
        tablesRecord = stateDir.map { "\($0)/nftables" }
    }

    private func locked<T>(_ body: () throws(SwitchError) -> T) throws(SwitchError) -> T {
        try mutex.withLock(body)
    }

    // MARK: - Lifecycle

    /// Cleans what a previous run of this state directory left behind when it could not exit
    /// cleanly (SIGKILL, a crash): forwarding sysctls it changed, nftables tables it created.
    /// Returns one line per thing cleaned, for the log.
    public func recover() -> [String] {
        var cleaned: [String] = []
        if let sysctl {
            cleaned += sysctl.recover().map { "restored \($0)" }
        }
        if let tablesRecord, let text = Sysctl.readFile(tablesRecord) {
            let existing = Set(Firewall.existingTables())
            for name in text.split(separator: "\n").map(String.init) where existing.contains(name) {
                if Firewall.remove(network: name) { cleaned.append("deleted nftables table inet \(Firewall.table(network: name))") }
            }
            File.remove(tablesRecord)
        }
        // Socket directories of networks that were running then (the control socket is claimed
        // before this runs, so nobody else serves this run directory).
        if let entries = File.entries(of: runDir) {
            for name in entries.sorted() {
                let dir = "\(runDir)/\(name)"
                guard let files = File.entries(of: dir), !files.isEmpty,
                      files.allSatisfy(Dataplane.socketNames.contains) else { continue }
                for file in files { File.remove("\(dir)/\(file)") }
                File.removeDirectory(dir)
                cleaned.append("removed the sockets of network \(name) in \(dir)")
            }
        }
        return cleaned
    }

    /// Makes the running networks those of `specs`: new ones start, removed ones stop, changed ones
    /// restart, unchanged ones are left alone (ports, MAC tables and forwarding untouched).
    /// Returns the networks that could not start, with why (each message starts with
    /// "network NAME:"); the others run regardless.
    @discardableResult
    public func apply(_ specs: [NetworkSpec]) -> [(network: String, error: SwitchError)] {
        mutex.lock()
        defer { mutex.unlock() }
        // Port forwards alone change without a restart (Forward/PortForwards.swift).
        let wanted = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0.withoutForwards) })
        for network in running where wanted[network.spec.name] != network.spec.withoutForwards {
            let why = wanted[network.spec.name] == nil ? "removed from the configuration" : "changed"
            Log.notice("network \(network.spec.name): stopping (\(why))")
            stop(network)
        }
        running.removeAll { wanted[$0.spec.name] != $0.spec.withoutForwards }
        var failures: [(String, SwitchError)] = []
        var next: [Running] = []
        for spec in specs {
            if let network = running.first(where: { $0.spec.name == spec.name }) {
                Log.info("network \(spec.name): unchanged, left running")
                network.spec = spec
                do throws(SwitchError) { try network.forwards?.replace(with: spec.portForwards) } catch {
                    let error = error.inNetwork(spec.name)
                    Log.error(error.description)
                    failures.append((spec.name, error))
                }
                next.append(network)
                continue
            }
            do throws(SwitchError) {
                next.append(try start(spec))
                Log.notice("network \(spec.name): running (\(spec.mode.rawValue) \(spec.subnet)"
                           + (spec.uplink.map { ", uplink \($0)" } ?? "") + ")")
            } catch {
                // One "network NAME:" prefix, whichever layer the error came from.
                let error = error.inNetwork(spec.name)
                Log.error(error.description)
                failures.append((spec.name, error))
            }
        }
        running = next
        updateForwarding()
        saveTables()
        return failures
    }

    /// Stops every network and restores what switchd changed on the host. Idempotent.
    public func shutdown() {
        mutex.lock()
        defer { mutex.unlock() }
        for network in running.reversed() { stop(network) }
        running = []
        sysctl?.restoreAll()
        saveTables()
    }

    /// The uplink interfaces of the running networks (a reload's config check must not call them taken).
    public var uplinks: Set<String> {
        mutex.withLock { Set(running.compactMap(\.spec.uplink)) }
    }

    private func start(_ spec: NetworkSpec) throws(SwitchError) -> Running {
        if spec.mode == .shared && spec.nat66 && spec.ipv6Prefix != nil
            && Sysctl.read(Sysctl.ipv6Forwarding) == "0" {
            // IPv6 forwarding makes the kernel ignore RAs on accept_ra=1 interfaces (docs/DESIGN.md §1).
            let dependent = Sysctl.interfacesDependingOnRA()
            if !dependent.isEmpty {
                throw SwitchError("nat66 needs IPv6 forwarding, which would stop \(dependent.joined(separator: ", ")) "
                                  + "from taking router advertisements (accept_ra=1) and lose their IPv6 routes; "
                                  + "set net.ipv6.conf.IFACE.accept_ra=2 on them, or nat66: false")
            }
        }
        let dataplane = try Dataplane(runDir: runDir, stateDir: stateDir, network: spec, threads: threads)
        let network = Running(spec: spec, dataplane: dataplane)
        do throws(SwitchError) {
            if spec.uplink != nil {
                if Firewall.existingTables().contains(spec.name) {
                    Log.notice("network \(spec.name): replacing a leftover nftables table inet \(Firewall.table(network: spec.name))")
                }
                try Firewall.install(spec)
                network.warnings = Firewall.blockingChains()
                for warning in network.warnings { Log.warning("network \(spec.name): \(warning); see README, Firewalls") }
                if spec.mode == .shared { try enableForwarding(for: spec) }
                let lookups = LoopHostTable(dataplane: dataplane)
                let forwards = PortForwards(network: spec, resolveName: { lookups.address(of: $0) },
                                              installTable: { rules throws(SwitchError) in try Firewall.install(spec, forwards: rules) })
                network.forwards = forwards
                _ = try forwards.add(spec.portForwards, fromConfig: true)
                if spec.services.dnsProxy {
                    let dns = try KernelDNSServer(
                        network: spec.name, gateway: spec.gatewayIdentity, listen: spec.gatewayAddresses,
                        upstreams: spec.services.upstreamDNS.map { configured in
                            ResolvConf.filter(configured.map(UpstreamAddress.init), excluding: ResolvConf.addresses(of: spec.gatewayIdentity))
                        },
                        hostTable: LoopHostTable(dataplane: dataplane))
                    network.dns = dns
                    try dns.start()
                }
            }
            try dataplane.start()
            try network.forwards?.start()
        } catch {
            stop(network)
            throw error
        }
        return network
    }

    private func stop(_ network: Running) {
        network.forwards?.stop()
        network.forwards = nil
        network.dns?.stop()
        network.dns = nil
        network.dataplane.shutdown()
        if network.spec.uplink != nil { Firewall.remove(network: network.spec.name) }
    }

    /// Turns on the forwarding `spec` needs (before any other running network needed it).
    private func enableForwarding(for spec: NetworkSpec) throws(SwitchError) {
        guard let sysctl else { throw SwitchError("shared mode needs a state directory to record the sysctls it changes") }
        try sysctl.set(Sysctl.ipv4Forwarding, to: "1")
        if spec.nat66 && spec.ipv6Prefix != nil { try sysctl.set(Sysctl.ipv6Forwarding, to: "1") }
    }

    /// Restores forwarding sysctls no running network needs any longer.
    private func updateForwarding() {
        guard let sysctl else { return }
        let shared = running.filter { $0.spec.mode == .shared }
        if shared.isEmpty { sysctl.restore(Sysctl.ipv4Forwarding) }
        if !shared.contains(where: { $0.spec.nat66 && $0.spec.ipv6Prefix != nil }) { sysctl.restore(Sysctl.ipv6Forwarding) }
    }

    /// Records the tables that exist because of this process, for `recover` after a crash.
    private func saveTables() {
        guard let tablesRecord else { return }
        let names = running.filter { $0.spec.uplink != nil }.map(\.spec.name)
        if names.isEmpty {
            File.remove(tablesRecord)
        } else {
            do { try Sysctl.writeFile(tablesRecord, names.map { $0 + "\n" }.joined()) } catch {
                Log.warning("cannot record nftables tables in \(tablesRecord): \(error.errno)")
            }
        }
    }

    // MARK: - Control

    private func network(_ name: String) throws(SwitchError) -> Dataplane {
        guard let network = running.first(where: { $0.spec.name == name }) else { throw SwitchError("no network named \(name)") }
        return network.dataplane
    }

    /// Every running network, in configuration order.
    public func status() -> [NetworkStatus] {
        mutex.lock()
        defer { mutex.unlock() }
        return running.flatMap { network in
            network.dataplane.status().map { status in
                var status = status
                status.warnings = network.warnings.isEmpty ? nil : network.warnings
                status.forwards = network.forwards?.list() ?? []
                return status
            }
        }
    }

    public func addPort(network name: String, spec: PortSpec) throws(SwitchError) -> String {
        try locked { () throws(SwitchError) in try network(name).addPort(network: name, spec: spec) }
    }

    public func removePort(network name: String, id: String) throws(SwitchError) {
        try locked { () throws(SwitchError) in try network(name).removePort(network: name, id: id) }
    }

    /// Starts a capture on network `name` (see `Dataplane.startCapture`). It holds that network's
    /// dataplane, so its counters stay readable after a reload removed the network.
    public func startCapture(network name: String, port: String?, filter: CaptureFilter?) throws(SwitchError) -> Capture {
        try locked { () throws(SwitchError) in try network(name).startCapture(network: name, port: port, filter: filter) }
    }
}

/// The kernel DNS server's host table: questions go to the network's DHCP leases on its
/// forwarding thread (one command round trip per local name, never per frame).
struct LoopHostTable: DNSHostTable {
    let dataplane: Dataplane
    func address(of hostname: String) -> IPv4Address? {
        if case .address(let a) = dataplane.lookup(.address(hostname)) { return a }
        return nil
    }
    func ipv6Address(of hostname: String) -> IPv6Address? { nil }
    func hostname(of address: IPv4Address) -> String? {
        if case .hostname(let name) = dataplane.lookup(.hostname(address)) { return name }
        return nil
    }
}

extension NetworkSpec {
    /// The gateway as the services present it.
    var gatewayIdentity: GatewayIdentity {
        GatewayIdentity(mac: gatewayMAC, ipv4: gateway, subnet: subnet, ipv6Prefix: ipv6Prefix, mtu: mtu,
                        domain: domain, routesBeyondHost: mode == .shared)
    }

    /// The gateway's addresses on the uplink: IPv4 and, with IPv6, the ULA `::1`.
    var gatewayAddresses: [IPAddress] {
        [.v4(gateway)] + (ipv6Prefix.map { [.v6(IPv6Address(high: $0.high, low: 1))] } ?? [])
    }
}

extension UpstreamAddress {
    init(_ address: IPAddress) {
        switch address {
        case .v4(let a): self = .ipv4(a)
        case .v6(let a): self = .ipv6(a)
        }
    }
}

// MARK: - Port forwards

extension Switchboard {
    /// Adds runtime forwards to network `name` (they last until a restart or reload); a host port
    /// that a forward of another network holds is refused too.
    public func addForwards(network name: String, _ specs: [PortForwardSpec]) throws(SwitchError) -> [ForwardStatus] {
        try locked { () throws(SwitchError) -> [ForwardStatus] in
            let network = try forwardsOf(name)
            for spec in specs {
                for other in running where other.spec.name != name {
                    if let taken = other.forwards?.specs.first(where: { $0.conflicts(with: spec) }) {
                        throw SwitchError("forward \(spec.summary): host ports overlap forward \(taken.summary) of network \(other.spec.name)")
                    }
                }
            }
            return try network.add(specs)
        }
    }

    /// Removes forwards of network `name` by id, or by protocol, host ports and (optionally) address.
    public func removeForwards(network name: String, id: String?, proto: ForwardProtocol?, hostAddress: IPAddress?,
                               hostPorts: PortRange?) throws(SwitchError) -> [String] {
        try locked { () throws(SwitchError) -> [String] in
            try forwardsOf(name).remove(id: id, proto: proto, hostAddress: hostAddress, hostPorts: hostPorts)
        }
    }

    /// The forwards of network `name` with their state.
    public func forwards(network name: String) throws(SwitchError) -> [ForwardStatus] {
        try locked { () throws(SwitchError) -> [ForwardStatus] in
            guard let network = running.first(where: { $0.spec.name == name }) else { throw SwitchError("no network named \(name)") }
            return network.forwards?.list() ?? []
        }
    }

    private func forwardsOf(_ name: String) throws(SwitchError) -> PortForwards {
        guard let network = running.first(where: { $0.spec.name == name }) else { throw SwitchError("no network named \(name)") }
        guard let forwards = network.forwards else {
            throw SwitchError("network \(name) is isolated: port forwards need a host or shared network (README \"Port forwarding\")")
        }
        return forwards
    }
}

extension NetworkSpec {
    /// The spec with no port forwards: what decides whether a reload restarts the network.
    var withoutForwards: NetworkSpec {
        var spec = self
        spec.portForwards = []
        return spec
    }
}

// MARK: - switchd attach, fdb, idle exit

extension Switchboard {
    public func attach(network name: String, kind: AttachKind, offload: Bool, peer: String) throws(SwitchError) -> AttachedPort {
        try locked { () throws(SwitchError) in try network(name).attach(network: name, kind: kind, offload: offload, peer: peer) }
    }

    public func fdb(network name: String) throws(SwitchError) -> [FDBEntry] {
        try locked { () throws(SwitchError) in try network(name).fdb(network: name) }
    }

    /// Ports of every running network, uplinks not counted (`--exit-when-idle`).
    public func clientPortCount() -> Int {
        (try? locked { () throws(SwitchError) in running.reduce(0) { $0 + $1.dataplane.clientPortCount() } }) ?? 0
    }
}
