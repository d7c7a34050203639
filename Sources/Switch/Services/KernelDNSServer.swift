// KernelDNSServer: the gateway's DNS proxy on ordinary kernel UDP and TCP sockets, for `host` and `shared` modes (docs/DESIGN.md §4).
//
// Design note. The DNS logic is DNSProxy's; this file is only its transport. One thread runs a
// poll(2) loop over an eventfd that `stop()` writes, a UDP and a TCP listening socket per gateway
// address, one UDP socket per address family towards the upstream resolvers, and the accepted TCP
// connections. Every socket is nonblocking and each readable socket is served a bounded batch per
// turn, so no client holds the loop. The proxy names a UDP client by (listening socket, peer
// address) and a TCP client by its connection number. Nothing here is on the forwarding path:
// allocation is fine, and the proxy's counters are published under a mutex once per turn.
//
// TCP follows RFC 7766: each message carries a 2-byte length (§8), several may be pipelined and are
// answered as they complete, possibly out of order (§6.2.1.1), idle connections are closed (§6.2.3)
// and their number is bounded (§6.2.2). A connection with `maxQueriesPerConnection` queries
// outstanding, or `outputBacklog` bytes of answers it has not read, is not read from until it
// catches up (backpressure rather than an unbounded buffer); one whose unread answers would exceed
// `maxOutputBytes` anyway is closed. A length below a DNS header, or a message the proxy cannot
// parse, closes that connection only.
//
// Upstream queries always go over UDP, also for TCP clients. A reply is passed back unchanged, as
// the proxy does for every client: its size already fits what the client's query (forwarded as
// sent, EDNS option included) allowed, and a TC=1 reply reaches a TCP client truncated too (a
// retry upstream over TCP, RFC 7766 §5, is not done here). Local answers are a few records, far
// below 512 bytes, so nothing is truncated here.
import Glibc
import Proto
import SwitchSys

/// The DNS proxy of one `host` or `shared` network, served from kernel sockets on the gateway
/// addresses by a thread of its own.
final class KernelDNSServer: @unchecked Sendable {
    /// A DNS client as the proxy names it.
    enum Client: Hashable, Sendable {
        /// A UDP client: the index of the listening socket its query came to, and its address.
        case udp(listener: Int, peer: InetSocketAddress)
        /// A TCP connection, numbered from 1 in order of acceptance.
        case tcp(connection: UInt64)
    }

    /// What the transport counted (the proxy's own counters are `counters`).
    struct TransportCounters: Hashable, Sendable {
        /// Datagrams received on the UDP listening sockets.
        var udpQueries: UInt64 = 0
        /// TCP connections accepted and served.
        var tcpAccepted: UInt64 = 0
        /// TCP connections closed at once because `maxConnections` were open.
        var tcpRefused: UInt64 = 0
        /// TCP connections closed for a length below a DNS header or a message the proxy could not parse.
        var tcpMalformed: UInt64 = 0
        /// TCP connections closed after `tcpIdleTimeout` without a query and nothing outstanding.
        var tcpIdleClosed: UInt64 = 0
        /// TCP connections closed because their unread answers would exceed `maxOutputBytes`.
        var tcpOverflows: UInt64 = 0
        /// Datagrams on an upstream socket from an address that is not a current upstream: ignored.
        var upstreamStrangers: UInt64 = 0
        /// Answers and upstream queries dropped because a socket buffer was full (EAGAIN, ENOBUFS).
        var sendDrops: UInt64 = 0
        /// Other failed socket calls (each logged, at most one line a second).
        var socketErrors: UInt64 = 0
    }

    /// One TCP client connection and its buffers.
    final class Connection {
        let id: UInt64
        let fd: Int32
        /// Bytes read and not yet taken as messages: at most a partial message, or whole ones held
        /// back while the connection is at its limits.
        var input: [UInt8] = []
        /// Framed answers; `output[outputStart...]` is not written yet.
        var output: [UInt8] = []
        var outputStart = 0
        /// Queries of this connection waiting for an upstream.
        var outstanding = 0
        /// When the last query arrived or an answer was written (monotonic ns).
        var lastActivity: Int64
        /// The client shut down its sending side: answer what is outstanding, then close.
        var peerClosed = false
        var closed = false

        init(id: UInt64, fd: Int32, now: Int64) { self.id = id; self.fd = fd; lastActivity = now }

        var pendingOutput: Int { output.count - outputStart }
    }

    /// A listening socket and the address it is bound to.
    struct Listener {
        var fd: Int32
        var address: InetSocketAddress
    }

    /// Most TCP connections at once (RFC 7766 §6.2.2); more are accepted and closed at once.
    static let maxConnections = 64
    /// Queries of one connection outstanding upstream before it is no longer read from.
    static let maxQueriesPerConnection = 16
    /// Unread answer bytes of one connection before it is no longer read from.
    static let outputBacklog = 16 * 1024
    /// Unread answer bytes of one connection beyond which it is closed.
    static let maxOutputBytes = 256 * 1024
    /// Datagrams or accepts served per socket per turn of the loop, so every socket gets its turn.
    static let batch = 64
    /// The poll timeout, which is also how often the proxy's timeouts are checked.
    static let tick: Int64 = 250_000_000
    /// How often resolv.conf is checked for changes.
    static let resolvConfInterval: Int64 = 2_000_000_000

    /// The network's name, for log lines.
    let network: String

    private let udpListeners: [Listener]
    private let tcpListeners: [Listener]
    /// UDP sockets towards the upstream resolvers, one per address family (-1: none).
    /// The UDP sockets towards the upstream resolvers.
    private let upstreams: DNSUpstreams
    /// Written by `stop()` to end the loop.
    private let wakeFD: Int32

    // Owned by the loop thread once it runs (before: by the caller of `init` and `start`).
    private var proxy: DNSProxy<Client>
    private let resolvConf: ResolvConfSource?
    private var connections: [UInt64: Connection] = [:]
    private var lastConnection: UInt64 = 0
    private var transport = TransportCounters()
    private var lastExpire: Int64 = 0
    private var lastResolvCheck: Int64 = 0
    /// Accepting stops for a second when the process is out of descriptors, so a listener that stays
    /// readable does not spin the loop.
    private var acceptPausedUntil: Int64 = 0
    private var lastWarning: Int64?
    private var suppressedWarnings = 0

    /// Guards `published` and `publishedTransport`.
    private let countersLock = Lock()
    private var published = DNSProxyCounters()
    private var publishedTransport = TransportCounters()
    private var publishedConnectionCount = 0
    /// Guards `thread` and `state`; held across the join in `stop()` so a second caller waits.
    private let lifecycleLock = Lock()
    private var thread: pthread_t?
    private enum State { case ready, running, stopped }
    private var state = State.ready

    /// How long the proxy waits for one upstream before trying the next (ns; 2 s). Set before `start()`.
    var upstreamTimeout: Int64 {
        get { proxy.config.timeout }
        set {
            precondition(state == .ready, "upstreamTimeout is set before start()")
            var config = proxy.config
            config.timeout = newValue
            proxy = DNSProxy(config: config, hostTable: proxy.hostTable)
        }
    }

    /// How long a TCP connection may stay without a query while nothing is outstanding (ns; 10 s,
    /// RFC 7766 §6.2.3 suggests seconds). Set before `start()`.
    var tcpIdleTimeout: Int64 = 10_000_000_000

    /// Binds UDP and TCP sockets on every address in `listen` (port `port`, 53 in production), with
    /// IP_FREEBIND / IPV6_FREEBIND so an address that is being added concurrently is fine; IPv6
    /// sockets are IPV6_V6ONLY. A link-local address is an error: it cannot be bound without an
    /// interface. Bind errors name the address and the errno text.
    /// `upstreams`: configured resolvers, or nil to follow `resolvConfPath` through a
    /// ResolvConfSource, re-read every 2 s; either way without `ResolvConf.addresses(of: gateway)`.
    /// `hostTable` answers HOST.DOMAIN and PTR locally; it is called from the server's thread.
    init(network: String, gateway: GatewayIdentity, listen: [IPAddress], port: UInt16 = 53,
         upstreams: [UpstreamAddress]?, resolvConfPath: String = "/etc/resolv.conf",
         hostTable: any DNSHostTable) throws(SwitchError) {
        let own = ResolvConf.addresses(of: gateway)
        let source: ResolvConfSource?
        let initial: [UpstreamAddress]
        if let upstreams {
            source = nil
            initial = ResolvConf.filter(upstreams, excluding: own)
        } else {
            source = ResolvConfSource(path: resolvConfPath, excluding: own)
            initial = source!.currentUpstreams()
        }
        guard let config = DNSProxyConfig(gateway: gateway, upstreams: initial) else {
            throw SwitchError("DNS: domain \(gateway.domain) is not a valid DNS name")
        }

        var udp: [Listener] = [], tcp: [Listener] = []
        func closeAll() { for l in udp + tcp { Descriptor.close(l.fd) } }
        for address in listen {
            let socketAddress = InetSocketAddress(address, port: port)
            do throws(SwitchError) {
                udp.append(Listener(fd: try Self.bind(socketAddress, stream: false), address: socketAddress))
                tcp.append(Listener(fd: try Self.bind(socketAddress, stream: true), address: socketAddress))
            } catch {
                closeAll()
                throw error
            }
        }
        let wake: Int32
        do {
            wake = try EventFD.open()
        } catch {
            closeAll()
            throw SwitchError("DNS: \(error)")
        }

        self.network = network
        resolvConf = source
        proxy = DNSProxy(config: config, hostTable: hostTable)
        udpListeners = udp
        tcpListeners = tcp
        wakeFD = wake
        self.upstreams = DNSUpstreams { family, error in
            Log.warning("network \(network): DNS: no upstream socket for IPv\(family == AF_INET ? 4 : 6): \(error)")
        }
        published = proxy.counters
    }

    deinit {
        stop()
    }

    /// A nonblocking socket bound to `address` (and listening, for `stream`); errors name the address.
    private static func bind(_ address: InetSocketAddress, stream: Bool) throws(SwitchError) -> Int32 {
        let label = "\(address)/\(stream ? "tcp" : "udp")"
        guard !address.isLinkLocal else {
            throw SwitchError("DNS: cannot bind \(label): a link-local address needs an interface")
        }
        let type = stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd: Int32
        do { fd = try Socket.open(type | Int32(SOCK_NONBLOCK.rawValue), domain: address.family) } catch {
            throw SwitchError("DNS: cannot open a socket for \(label): \(error.errno)")
        }
        func fail(_ what: String, _ e: Errno = .current) -> SwitchError {
            Descriptor.close(fd)
            return SwitchError("DNS: cannot \(what) \(label): \(e)")
        }
        // FREEBIND: the gateway address may be added to the uplink just after this (or be on its
        // way back after a link flap); binding must not depend on that order.
        if address.family == AF_INET6 {
            guard Socket.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) else { throw fail("set IPV6_V6ONLY for") }
            // IPV6_FREEBIND is Linux 4.15+; before it, IP_FREEBIND covered IPv6 sockets as well.
            guard Socket.setOption(fd, Int32(IPPROTO_IPV6), IPV6_FREEBIND, 1) || Socket.setOption(fd, Int32(IPPROTO_IP), IP_FREEBIND, 1)
            else { throw fail("set IPV6_FREEBIND for") }
        } else {
            guard Socket.setOption(fd, Int32(IPPROTO_IP), IP_FREEBIND, 1) else { throw fail("set IP_FREEBIND for") }
        }
        // TCP only: connections left in TIME_WAIT must not keep a restarted server from binding.
        // (On UDP it would let two servers share the port instead of failing.)
        if stream, !Socket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) { throw fail("set SO_REUSEADDR for") }
        do { try Socket.bind(fd, to: address) } catch { throw fail("bind", error.errno) }
        if stream {
            do { try Socket.listen(fd, backlog: 64) } catch { throw fail("listen on", error.errno) }
        }
        return fd
    }

    /// Linux's IPV6_FREEBIND (linux/in6.h), which Glibc's headers may lack.
    private static let IPV6_FREEBIND: Int32 = 78

    /// A UDP socket towards upstreams of `family`, or -1 (logged: upstreams of that family fail over).
    // MARK: Lifecycle

    /// Starts one thread running a poll() loop.
    func start() throws(SwitchError) {
        lifecycleLock.lock()
        defer { lifecycleLock.unlock() }
        guard state == .ready else {
            throw SwitchError("DNS: the server of network \(network) was \(state == .running ? "already started" : "stopped")")
        }
        do { thread = try PosixThread.start("the DNS thread of network \(network)") { self.run() } } catch {
            throw SwitchError(error)
        }
        state = .running
    }

    /// Wakes the thread (eventfd), joins it, closes every socket; idempotent.
    func stop() {
        lifecycleLock.lock()
        defer { lifecycleLock.unlock() }
        guard state != .stopped else { return }
        state = .stopped
        if let thread {
            EventFD.signal(wakeFD)
            PosixThread.join(thread)
            self.thread = nil
        }
        // The thread is gone (or never ran): its state is ours now.
        for connection in connections.values { Descriptor.close(connection.fd) }
        connections.removeAll()
        for listener in udpListeners + tcpListeners { Descriptor.close(listener.fd) }
        upstreams.close()
        if wakeFD >= 0 { Descriptor.close(wakeFD) }
    }

    /// A snapshot of the proxy's counters, as of the loop's last turn (at most a tick old).
    var counters: DNSProxyCounters { countersLock.withLock { published } }

    /// A snapshot of the transport's counters, as of the loop's last turn.
    var transportCounters: TransportCounters { countersLock.withLock { publishedTransport } }

    /// Open TCP connections, as of the loop's last turn (for tests).
    var connectionCount: Int { countersLock.withLock { publishedConnectionCount } }

    // MARK: The loop

    /// What a pollfd stands for.
    private enum Slot {
        case wake
        case udp(listener: Int)
        case tcp(listener: Int)
        case upstream(fd: Int32)
        case connection(UInt64)
    }

    /// The thread's loop: until `stop()` writes the eventfd, poll, serve what is ready, then the
    /// timers, then publish the counters.
    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var fds: [pollfd] = []
        var slots: [Slot] = []
        let start = Self.monotonic()
        lastExpire = start
        lastResolvCheck = start
        while true {
            fds.removeAll(keepingCapacity: true)
            slots.removeAll(keepingCapacity: true)
            func watch(_ fd: Int32, _ events: Int32, _ slot: Slot) {
                fds.append(pollfd(fd: fd, events: Int16(events), revents: 0))
                slots.append(slot)
            }
            watch(wakeFD, POLLIN, .wake)
            for (i, listener) in udpListeners.enumerated() { watch(listener.fd, POLLIN, .udp(listener: i)) }
            if Self.monotonic() >= acceptPausedUntil {
                for (i, listener) in tcpListeners.enumerated() { watch(listener.fd, POLLIN, .tcp(listener: i)) }
            }
            for fd in [upstreams.ipv4, upstreams.ipv6] where fd >= 0 { watch(fd, POLLIN, .upstream(fd: fd)) }
            for connection in connections.values {
                // Events 0 still reports POLLHUP and POLLERR.
                let events = (wantsInput(connection) ? POLLIN : 0) | (connection.pendingOutput > 0 ? POLLOUT : 0)
                watch(connection.fd, events, .connection(connection.id))
            }
            var ready = 0
            do { ready = try Poll.wait(&fds, milliseconds: Int32(Self.tick / 1_000_000)) } catch {
                warn("\(error)")  // "poll: REASON"
                PosixThread.sleep(milliseconds: 100)
            }
            let now = Self.monotonic()
            if ready > 0 {
                for (i, fd) in fds.enumerated() where fd.revents != 0 {
                    switch slots[i] {
                    case .wake: return
                    case .udp(let listener): receiveQueries(listener: listener, buffer: &buffer, now: now)
                    case .tcp(let listener): acceptConnections(listener: listener, now: now)
                    case .upstream(let fd): receiveReplies(fd: fd, now: now)
                    case .connection(let id): serve(connection: id, events: Int32(fd.revents), buffer: &buffer, now: now)
                    }
                }
            }
            housekeeping(now: now)
            countersLock.withLock {
                published = proxy.counters
                publishedTransport = transport
                publishedConnectionCount = connections.count
            }
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds, the proxy's `now`.
    static func monotonic() -> Int64 { Clock.monotonicNanoseconds() }

    /// Timeouts, resolv.conf, and the TCP connections' deferred work and idle checks.
    private func housekeeping(now: Int64) {
        if proxy.outstandingCount > 0, now - lastExpire >= Self.tick {
            lastExpire = now
            perform(proxy.expire(now: now), query: nil, now: now)
        }
        if let resolvConf, now - lastResolvCheck >= Self.resolvConfInterval {
            lastResolvCheck = now
            let upstreams = resolvConf.currentUpstreams()
            if upstreams != proxy.config.upstreams {
                Log.info("network \(network): DNS upstreams now \(upstreams.map(\.description).joined(separator: ", "))")
                perform(proxy.setUpstreams(upstreams, now: now), query: nil, now: now)
            }
        }
        for connection in Array(connections.values) {
            // Messages held back while the connection was at its limits, which answers may have lifted.
            if connection.input.count >= 2 { takeMessages(connection, now: now) }
            guard !connection.closed, connection.outstanding == 0 else { continue }
            if connection.peerClosed && connection.pendingOutput == 0 && !Self.holdsMessage(connection.input) {
                drop(connection)
            } else if now - connection.lastActivity >= tcpIdleTimeout {
                transport.tcpIdleClosed += 1
                drop(connection)
            }
        }
    }

    // MARK: UDP

    /// Reads a batch of queries from UDP listener `index` and answers or forwards them.
    private func receiveQueries(listener index: Int, buffer: inout [UInt8], now: Int64) {
        let fd = udpListeners[index].fd
        for _ in 0..<Self.batch {
            guard let (length, sender) = Self.receive(fd, into: &buffer) else { return }
            guard length >= 0 else {
                transport.socketErrors += 1
                warn("receive on \(udpListeners[index].address)/udp: \(errnoText(Int32(-length)))")
                return
            }
            guard let sender else { continue }
            transport.udpQueries += 1
            let client = Client.udp(listener: index, peer: sender)
            perform(proxy.handleQuery(Array(buffer[..<length]), from: client, now: now), query: client, now: now)
        }
    }

    /// One datagram from `fd`: its length (or -errno) and sender; nil when none is waiting.
    private static func receive(_ fd: Int32, into buffer: inout [UInt8]) -> (Int, InetSocketAddress?)? {
        buffer.withUnsafeMutableBytes { receive(fd, into: $0) }
    }

    /// The same into a raw buffer (the upstream sockets' own).
    private static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (Int, InetSocketAddress?)? {
        while true {
            switch Datagram.receive(fd, into: buffer) {
            case .datagram(let count, let sender): return (count, sender)
            case .wouldBlock: return nil
            // A queued ICMP error for an earlier datagram: nothing to do, read on.
            case .failed(let e) where e == .ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH: continue
            case .failed(let e): return (-Int(e.rawValue), nil)
            }
        }
    }

    /// Sends `message` from `fd` to `destination`; counts and logs failures.
    private func send(_ message: [UInt8], from fd: Int32, to destination: InetSocketAddress, what: String) {
        guard let e = message.withUnsafeBytes({ Datagram.send(fd, $0, to: destination) }) else { return }
        count(e, sending: what, to: destination)
    }

    /// Counts a failed send: a full socket is a drop, anything else an error (logged).
    private func count(_ e: Errno, sending what: String, to destination: InetSocketAddress) {
        if e.wouldBlock || e == .ENOBUFS {
            transport.sendDrops += 1
        } else {
            transport.socketErrors += 1
            warn("send \(what) to \(destination): \(e)")
        }
    }

    // MARK: Upstream

    /// Reads a batch of replies from an upstream socket; a reply from a current upstream goes to the proxy.
    private func receiveReplies(fd: Int32, now: Int64) {
        for _ in 0..<Self.batch {
            let received: (Int, InetSocketAddress?)?
            switch upstreams.receive(fd) {
            case .datagram(let count, let sender): received = (count, sender)
            case .wouldBlock: received = nil
            case .failed(let e) where e == .ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH: continue
            case .failed(let e): received = (-Int(e.rawValue), nil)
            }
            guard let (length, sender) = received else { return }
            guard length >= 0 else {
                transport.socketErrors += 1
                warn("receive from upstream: \(errnoText(Int32(-length)))")
                return
            }
            guard let sender, let index = proxy.config.upstreams.firstIndex(of: sender.upstream) else {
                transport.upstreamStrangers += 1
                continue
            }
            perform(proxy.handleUpstreamReply(upstreams.received(length), from: index, now: now), query: nil, now: now)
        }
    }

    /// Sends a query to `config.upstreams[index]` (a failed send is retried on the next upstream
    /// when the proxy's timeout expires).
    private func forward(_ message: [UInt8], to index: Int) {
        guard let upstream = proxy.config.upstreams[safe: index] else { return }
        let destination = InetSocketAddress(upstream)
        switch upstreams.send(message, to: destination) {
        case .sent: break
        case .noSocket:
            transport.socketErrors += 1
            warn("no socket to reach upstream \(upstream)")
        case .dropped: transport.sendDrops += 1
        case .failed(let e): count(e, sending: "a query upstream", to: destination)
        }
    }

    // MARK: Proxy actions

    /// Carries out the proxy's actions. `query` is the client whose query produced them (its
    /// answers and forwards are for that query), or nil for replies, timeouts and upstream changes
    /// (each answer then completes one outstanding query of its client).
    private func perform(_ actions: [DNSAction<Client>], query: Client?, now: Int64) {
        for action in actions {
            switch action {
            case .answer(.udp(let listener, let peer), let message):
                guard !message.isEmpty, let fd = udpListeners[safe: listener]?.fd else { continue }
                send(message, from: fd, to: peer, what: "an answer")
            case .answer(.tcp(let id), let message):
                guard let connection = connections[id] else { continue }
                if query == nil { connection.outstanding = max(0, connection.outstanding - 1) }
                queueAnswer(message, to: connection, now: now)
            case .forward(let index, let message):
                if case .tcp(let id)? = query { connections[id]?.outstanding += 1 }
                forward(message, to: index)
            }
        }
    }

    // MARK: TCP

    /// Accepts a batch of connections on TCP listener `index`.
    private func acceptConnections(listener index: Int, now: Int64) {
        for _ in 0..<Self.batch {
            // accept4(2) is not imported (it needs _GNU_SOURCE); the flags follow with fcntl(2).
            let fd: Int32
            do { fd = try Socket.accept(tcpListeners[index].fd) } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO: continue
                case EAGAIN, EWOULDBLOCK: return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    acceptPausedUntil = now + 1_000_000_000
                    fallthrough
                default:
                    transport.socketErrors += 1
                    warn("accept on \(tcpListeners[index].address)/tcp: \(error.errno)")
                    return
                }
            }
            guard connections.count < Self.maxConnections else {
                // Closed at once (with a reset) so the client fails over now rather than at its timeout.
                transport.tcpRefused += 1
                warn("\(connections.count) TCP connections open; refusing more")
                Socket.reset(fd)
                Descriptor.close(fd)
                continue
            }
            Descriptor.setCloseOnExec(fd)
            do { try Descriptor.setNonBlocking(fd) } catch {
                transport.socketErrors += 1
                warn("O_NONBLOCK on a TCP connection: \(error.errno)")
                Descriptor.close(fd)
                continue
            }
            Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)  // answers are whole messages
            lastConnection += 1
            connections[lastConnection] = Connection(id: lastConnection, fd: fd, now: now)
            transport.tcpAccepted += 1
        }
    }

    /// True when the connection may take more queries now.
    private func canTakeQueries(_ connection: Connection) -> Bool {
        !connection.closed && connection.outstanding < Self.maxQueriesPerConnection && connection.pendingOutput < Self.outputBacklog
    }

    /// True when the loop should read from the connection.
    private func wantsInput(_ connection: Connection) -> Bool {
        !connection.peerClosed && canTakeQueries(connection)
    }

    /// True when `input` starts with a whole message (or a bad length).
    private static func holdsMessage(_ input: [UInt8]) -> Bool {
        guard input.count >= 2 else { return false }
        let length = Int(input[0]) << 8 | Int(input[1])
        return length < DNSHeader.length || input.count >= 2 + length
    }

    /// Serves poll events of connection `id`: writes what is pending, reads what arrived.
    private func serve(connection id: UInt64, events: Int32, buffer: inout [UInt8], now: Int64) {
        guard let connection = connections[id] else { return }
        if events & (POLLERR | POLLHUP | POLLNVAL) != 0 {
            drop(connection)  // reset or gone both ways: nothing more can be delivered
            return
        }
        if events & POLLOUT != 0 {
            guard flush(connection, now: now) else { return drop(connection) }
        }
        guard events & POLLIN != 0, wantsInput(connection) else { return }
        let received = buffer.withUnsafeMutableBytes { raw in Result { () throws(SysError) in try Socket.receive(connection.fd, into: raw) } }
        let n: Int
        switch received {
        case .success(let count): n = count
        case .failure(let error):
            // ECONNRESET and the like: the client's doing, not worth a warning.
            if error.errno != .EINTR && !error.errno.wouldBlock { drop(connection) }
            return
        }
        if n > 0 {
            connection.input += buffer[..<n]
            takeMessages(connection, now: now)
        } else {
            connection.peerClosed = true  // the answers still go out (housekeeping closes it when done)
        }
    }

    /// Hands the whole messages in the connection's input to the proxy while it may take queries.
    private func takeMessages(_ connection: Connection, now: Int64) {
        var start = 0
        defer { if start > 0 && !connection.closed { connection.input.removeFirst(start) } }
        let input = connection.input
        while canTakeQueries(connection), input.count - start >= 2 {
            let length = Int(input[start]) << 8 | Int(input[start + 1])
            guard length >= DNSHeader.length else {
                transport.tcpMalformed += 1
                return drop(connection)
            }
            guard input.count - start - 2 >= length else { return }
            let message = Array(input[(start + 2)..<(start + 2 + length)])
            start += 2 + length
            connection.lastActivity = now
            let client = Client.tcp(connection: connection.id)
            let malformed = proxy.counters.malformed
            let actions = proxy.handleQuery(message, from: client, now: now)
            guard proxy.counters.malformed == malformed else {
                transport.tcpMalformed += 1
                return drop(connection)
            }
            perform(actions, query: client, now: now)
        }
    }

    /// Queues `message` with its length prefix (RFC 7766 §8) and writes what the socket takes.
    private func queueAnswer(_ message: [UInt8], to connection: Connection, now: Int64) {
        guard !message.isEmpty, message.count <= Int(UInt16.max), !connection.closed else { return }
        guard connection.pendingOutput + 2 + message.count <= Self.maxOutputBytes else {
            transport.tcpOverflows += 1
            return drop(connection)
        }
        connection.output.append(UInt8(message.count >> 8))
        connection.output.append(UInt8(message.count & 0xFF))
        connection.output += message
        if !flush(connection, now: now) { drop(connection) }
    }

    /// Writes pending output until the socket is full; false when the connection failed.
    private func flush(_ connection: Connection, now: Int64) -> Bool {
        sending: while connection.pendingOutput > 0 {
            let sent = connection.output.withUnsafeBytes { raw in
                Result { () throws(SysError) in
                    try Socket.send(connection.fd, UnsafeRawBufferPointer(rebasing: raw[connection.outputStart...]))
                }
            }
            let n: Int
            switch sent {
            case .success(let count): n = count
            case .failure(let error) where error.errno.wouldBlock: break sending
            case .failure: return false  // EPIPE, ECONNRESET: the client left
            }
            guard n > 0 else { return false }
            connection.outputStart += n
            connection.lastActivity = now
        }
        if connection.pendingOutput == 0 {
            connection.output.removeAll(keepingCapacity: true)
            connection.outputStart = 0
        } else if connection.outputStart >= Self.outputBacklog {
            connection.output.removeFirst(connection.outputStart)
            connection.outputStart = 0
        }
        return true
    }

    /// Closes a connection and forgets its outstanding queries.
    private func drop(_ connection: Connection) {
        guard !connection.closed else { return }
        connection.closed = true
        Descriptor.close(connection.fd)
        connections[connection.id] = nil
        proxy.forget(client: .tcp(connection: connection.id))
    }

    // MARK: Logging

    /// Logs a warning, at most one line a second (the rest are counted into the next line).
    private func warn(_ message: @autoclosure () -> String) {
        let now = Self.monotonic()
        if let lastWarning, now - lastWarning < 1_000_000_000 {
            suppressedWarnings += 1
            return
        }
        let suppressed = suppressedWarnings > 0 ? " (\(suppressedWarnings) more warnings suppressed)" : ""
        Log.warning("network \(network): DNS: \(message())\(suppressed)")
        lastWarning = now
        suppressedWarnings = 0
    }
}
