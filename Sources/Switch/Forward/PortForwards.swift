// PortForwards: the port forwards of one host or shared network (README "Port forwarding"):
// the configured ones and those added at run time, their host names followed through the DHCP
// leases, the nftables rules of the DNAT ones and the relay of the others.
//
// Design note. One thread per network with forwards (docs/decisions.md "Port forwarding: DNAT and
// a relay"), never the forwarding thread: it relays (poll over the relay's sockets) and, about once
// a second, resolves host names with one lookup command each to the forwarding thread (a command
// round trip, never per frame) and re-applies the network's nftables table in one transaction only
// when a DNAT rule's target changed. Control requests (add, del, list) run on control threads under
// `mutex`; they open relay listeners themselves so that a port in use is an error of the request,
// and hand them over; only its thread closes relay sockets (no fd is closed under a poll).
import Glibc
import Proto
import SwitchSys

final class PortForwards: @unchecked Sendable {
    /// One forward and what serves it.
    final class Entry {
        let spec: PortForwardSpec
        let engine: ForwardEngine
        var fromConfig: Bool
        /// The guest address in use: the configured address, or the lease of a host name (nil: none).
        var resolved: IPAddress?
        /// Relay listeners, one per host port (empty for DNAT).
        var listeners: [Int32] = []
        init(spec: PortForwardSpec, engine: ForwardEngine, fromConfig: Bool) {
            self.spec = spec; self.engine = engine; self.fromConfig = fromConfig
            if case .address(let a) = spec.guest { resolved = a }
        }

        var status: ForwardStatus {
            ForwardStatus(id: spec.id, proto: spec.proto.rawValue, hostAddress: spec.hostAddress.description,
                          hostPort: spec.hostPorts.description, guest: spec.guest.description,
                          guestPort: spec.guestPorts.description, resolved: resolved?.description,
                          state: resolved == nil ? "unresolved" : "active", engine: engine.rawValue,
                          origin: fromConfig ? "config" : "runtime")
        }
    }

    let network: NetworkSpec
    /// The IPv4 address of a DHCP host name now (the network's leases), nil when it has none.
    private let resolveName: (String) -> IPv4Address?
    /// Installs the network's table with these DNAT rules.
    private let installTable: ([ForwardRule]) throws(SwitchError) -> Void

    private let mutex: Lock
    private var entries: [Entry] = []
    /// Relay sockets of removed forwards, for the thread to close; `closing` until it has.
    private var retired: [Int32] = []
    private var closing: Set<Int32> = []
    private let closed: Condition
    /// The DNAT rules in the table now; nil before the first install.
    private var installed: [ForwardRule]?
    /// The last failure to install the table from `refresh`, logged once.
    private var lastFailure: String?
    private var thread: PosixThread.Handle?
    private var stopping = false
    /// Written to wake the thread (a socketpair: the thread reads it empty again).
    private var wake: (reader: Int32, writer: Int32) = (-1, -1)
    let relay: Relay

    /// How often host names are looked up again.
    static let resolveIntervalNanoseconds: Int64 = 1_000_000_000

    init(network: NetworkSpec, resolveName: @escaping (String) -> IPv4Address?,
         installTable: @escaping ([ForwardRule]) throws(SwitchError) -> Void) {
        self.network = network
        self.resolveName = resolveName
        self.installTable = installTable
        let lock = Lock()
        mutex = lock
        closed = Condition(lock)
        relay = Relay(network: network.name)
    }

    // MARK: - Requests (any thread)

    /// Adds forwards (the configuration's, or one request's): each is checked against the network
    /// and the forwards there already, relay ports are bound, then the table follows. All or none.
    func add(_ specs: [PortForwardSpec], fromConfig: Bool = false) throws(SwitchError) -> [ForwardStatus] {
        // Host names resolve before the forward exists, so that it works from the first connection.
        let names = Set(specs.compactMap { s -> String? in if case .name(let n) = s.guest { n } else { nil } })
        var answers: [String: IPv4Address] = [:]
        for name in names { answers[name] = resolveName(name) }
        return try mutex.withLock { () throws(SwitchError) -> [ForwardStatus] in
            var added: [Entry] = []
            do throws(SwitchError) {
                for spec in specs {
                    if let problem = spec.problem(on: network) {
                        throw SwitchError("forward \(spec.summary): " + (problem.field.map { "\($0): " } ?? "") + problem.message)
                    }
                    if let other = (entries + added).first(where: { $0.spec.conflicts(with: spec) }) {
                        throw SwitchError("forward \(spec.summary): host ports overlap forward \(other.spec.summary)")
                    }
                    let entry = Entry(spec: spec, engine: spec.engine(on: network), fromConfig: fromConfig)
                    if entry.engine == .relay { entry.listeners = try Relay.listen(spec) }
                    added.append(entry)
                }
            } catch {
                for entry in added { for fd in entry.listeners { Descriptor.close(fd) } }
                throw error
            }
            entries += added
            resolveLocked(names: answers, lookedUp: names)
            do throws(SwitchError) { try applyLocked() } catch {
                entries.removeAll { e in added.contains { $0 === e } }
                for entry in added { for fd in entry.listeners { Descriptor.close(fd) } }
                try? applyLocked()
                throw error
            }
            signal()
            return added.map(\.status)
        }
    }

    /// Removes the forwards with id `id`, or every forward of `proto` on `hostAddress` (any, when
    /// nil) whose host ports are `hostPorts`. Returns the ids removed; an error when none matched.
    func remove(id: String?, proto: ForwardProtocol? = nil, hostAddress: IPAddress? = nil,
                hostPorts: PortRange? = nil) throws(SwitchError) -> [String] {
        try mutex.withLock { () throws(SwitchError) -> [String] in
            let gone = entries.filter { e in
                if let id { return e.spec.id == id }
                return e.spec.proto == proto && e.spec.hostPorts == hostPorts && (hostAddress == nil || e.spec.hostAddress == hostAddress)
            }
            guard !gone.isEmpty else {
                let what = id ?? "\(proto?.rawValue ?? "?") \(hostAddress?.description ?? "*"):\(hostPorts?.description ?? "?")"
                throw SwitchError("no forward \(what) on network \(network.name) (switchd forward list \(network.name) shows them)")
            }
            entries.removeAll { e in gone.contains { $0 === e } }
            let fds = Set(gone.flatMap(\.listeners))
            for entry in gone { entry.listeners = [] }
            if thread != nil, !stopping {
                // Closed by the thread, which may be polling them; waited for, so that the ports
                // are free again when this returns (a reload may bind them at once).
                retired += fds
                closing.formUnion(fds)
                signal()
                while !closing.isDisjoint(with: fds) && !stopping { closed.wait() }
            } else {
                for fd in fds { Descriptor.close(fd) }
            }
            try applyLocked()
            return gone.map(\.spec.id)
        }
    }

    /// Makes the configured forwards `specs` and drops the runtime ones (a reload).
    func replace(with specs: [PortForwardSpec]) throws(SwitchError) {
        let stale = mutex.withLock { entries.filter { !$0.fromConfig || !specs.contains($0.spec) }.map(\.spec.id) }
        for id in stale { _ = try? remove(id: id) }
        let kept = specs.filter(Set(mutex.withLock { entries.map(\.spec) }).contains)
        _ = try add(specs.filter { !kept.contains($0) }, fromConfig: true)
    }

    /// The forwards, as specified.
    var specs: [PortForwardSpec] { mutex.withLock { entries.map(\.spec) } }

    /// Every forward with its state, in the order they were added.
    func list() -> [ForwardStatus] { mutex.withLock { entries.map(\.status) } }

    /// Where a relay connection that arrived on listener `fd` goes now: the guest's socket
    /// address, or nil when the forward is gone or its host name has no lease (refused).
    func relayTarget(listener fd: Int32) -> InetSocketAddress? {
        mutex.withLock {
            for entry in entries {
                guard let i = entry.listeners.firstIndex(of: fd) else { continue }
                guard let address = entry.resolved else { return nil }
                return InetSocketAddress(address, port: entry.spec.guestPort(for: entry.spec.hostPorts.first &+ UInt16(i)))
            }
            return nil
        }
    }

    // MARK: - Resolution

    /// Looks host names up again and re-applies the table when a DNAT target changed (the thread,
    /// about once a second; tests call it directly).
    func refresh() {
        let names = mutex.withLock { Set(entries.compactMap { e -> String? in if case .name(let n) = e.spec.guest { n } else { nil } }) }
        var answers: [String: IPv4Address] = [:]
        for name in names { answers[name] = resolveName(name) }  // outside the lock: a loop round trip each
        mutex.withLock {
            resolveLocked(names: answers, lookedUp: names)
            do throws(SwitchError) {
                try applyLocked()
                lastFailure = nil
            } catch {
                // Retried every second; said once per distinct failure.
                if error.message != lastFailure { Log.warning("network \(network.name): port forwards: \(error.message)") }
                lastFailure = error.message
            }
        }
    }

    private func resolveLocked(names: [String: IPv4Address], lookedUp: Set<String> = []) {
        for entry in entries {
            guard case .name(let name) = entry.spec.guest, lookedUp.contains(name) else { continue }
            let now = names[name].map(IPAddress.v4)
            if now != entry.resolved {
                Log.notice("network \(network.name): forward \(entry.spec.id): \(name) "
                           + (now.map { "is \($0) now" } ?? "has no lease now: connections are refused"))
                entry.resolved = now
            }
        }
    }

    /// Installs the table when its DNAT rules differ from what is installed.
    private func applyLocked() throws(SwitchError) {
        let rules = entries.filter { $0.engine == .dnat }.map { ForwardRule(forward: $0.spec, target: $0.resolved) }
        guard rules != installed else { return }
        try installTable(rules)
        installed = rules
    }

    // MARK: - The thread

    /// Starts the thread: first lookups at once, relaying from then on.
    func start() throws(SwitchError) {
        do {
            let pair = try Socket.connectedPair(Int32(SOCK_DGRAM.rawValue))
            wake = (pair.0, pair.1)
            try Descriptor.setNonBlocking(wake.reader)
            try Descriptor.setNonBlocking(wake.writer)
        } catch {
            throw SwitchError("port forwards: \(error)")
        }
        refresh()
        do { thread = try PosixThread.start("the port-forward thread of network \(network.name)") { self.run() } } catch {
            throw SwitchError(error)
        }
    }

    /// Stops the thread and closes every relay socket. Idempotent.
    func stop() {
        mutex.withLock { stopping = true; closed.broadcast() }
        signal()
        if let thread { PosixThread.join(thread) }
        thread = nil
        relay.closeAll()
        mutex.withLock {
            for entry in entries { for fd in entry.listeners { Descriptor.close(fd) } ; entry.listeners = [] }
            for fd in retired { Descriptor.close(fd) }
            retired = []
            closing = []
            entries = []
        }
        for fd in [wake.reader, wake.writer] where fd >= 0 { Descriptor.close(fd) }
        wake = (-1, -1)
    }

    private func signal() {
        guard wake.writer >= 0 else { return }
        var one: UInt8 = 1
        _ = try? withUnsafeBytes(of: &one) { raw throws(SysError) in try Socket.send(wake.writer, raw) }
    }

    private func run() {
        var nextResolve = Clock.monotonicNanoseconds() + Self.resolveIntervalNanoseconds
        var drain = [UInt8](repeating: 0, count: 64)
        while true {
            let (listeners, toClose, stop) = mutex.withLock { () -> ([(Int32, ForwardProtocol)], [Int32], Bool) in
                defer { retired = [] }
                return (entries.flatMap { e in e.listeners.map { ($0, e.spec.proto) } }, retired, stopping)
            }
            if stop { return }
            if !toClose.isEmpty {
                for fd in toClose { relay.listenerClosed(fd); Descriptor.close(fd) }
                mutex.withLock {
                    closing.subtract(toClose)
                    closed.broadcast()
                }
            }
            let now = Clock.monotonicNanoseconds()
            if now >= nextResolve {
                refresh()
                relay.expire(now: now, targets: self)
                nextResolve = now + Self.resolveIntervalNanoseconds
            }
            let timeout = Int32(max(1, min(1000, (nextResolve - now) / 1_000_000)))
            relay.turn(listeners: listeners, wake: wake.reader, timeoutMilliseconds: timeout, targets: self)
            drain.withUnsafeMutableBytes { raw in
                while (try? Socket.receive(wake.reader, into: raw)) ?? 0 > 0 {}
            }
        }
    }
}
