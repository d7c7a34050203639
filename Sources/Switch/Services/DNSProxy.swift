// DNSProxy: the gateway's DNS proxy as a transport-free state machine: DNS message bytes and the
// time go in, answers for clients and queries for upstream resolvers come out (docs/DESIGN.md §4).
//
// Design note. The same core serves every transport: the isolated-mode responder hands it the UDP
// payload of a frame; the host/shared-mode listeners hand it datagrams from a kernel UDP socket or
// messages from a TCP stream with the 2-byte length already stripped (RFC 7766 §8), and add the
// length back to answers. The caller names each client with its own `Client` value (a port and
// address, a socket and peer, a TCP connection) and each upstream with an index into
// `config.upstreams`; the proxy never sees a socket.
//
// Forwarded queries are matched by (upstream index, ID) with a fresh, unpredictable ID per
// transmission (RFC 5452 §9.2), and the reply's question must echo the query's (RFC 5452 §4.2).
// Outstanding queries live in one dictionary bounded by `maxOutstanding`; `expire` scans it, which
// is cheap at that size and at the rate a loop calls it (a few times a second), and needs no timer
// per query. A timed-out query moves to the next upstream and, when every upstream has had its
// turn, the client gets SERVFAIL. An upstream that times out also stops being the first choice.
import Proto

/// An upstream resolver: an address and UDP/TCP port (53 unless configured).
public enum UpstreamAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(IPv4Address, port: UInt16 = 53)
    case ipv6(IPv6Address, port: UInt16 = 53)

    /// Parses `A.B.C.D`, `A.B.C.D:PORT`, an IPv6 address, or `[IPV6]:PORT`; nil when malformed.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            guard let address = IPv6Address(text[text.index(after: text.startIndex)..<close]) else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), port != 0 else { return nil }
            self = .ipv6(address, port: port)
        } else if let address = IPv6Address(text) {
            self = .ipv6(address)
        } else if let colon = text.firstIndex(of: ":") {
            guard let address = IPv4Address(text[..<colon]), let port = UInt16(text[text.index(after: colon)...]),
                  port != 0 else { return nil }
            self = .ipv4(address, port: port)
        } else if let address = IPv4Address(text) {
            self = .ipv4(address)
        } else {
            return nil
        }
    }

    /// The port.
    public var port: UInt16 {
        switch self { case .ipv4(_, let port), .ipv6(_, let port): return port }
    }

    /// True for `127.0.0.0/8` and `::1`: a stub resolver on the host (e.g. systemd-resolved's
    /// 127.0.0.53), reachable from switchd's own namespace.
    public var isLoopback: Bool {
        switch self {
        case .ipv4(let address, _): return address.rawValue >> 24 == 127
        case .ipv6(let address, _): return address == IPv6Address(high: 0, low: 1)
        }
    }

    /// True when both name the same host, ports aside (an IPv4-mapped IPv6 address, RFC 4291
    /// §2.5.5.2, is the same host as its IPv4 address).
    public func isSameHost(as other: UpstreamAddress) -> Bool {
        switch (self.canonical, other.canonical) {
        case (.ipv4(let a, _), .ipv4(let b, _)): return a == b
        case (.ipv6(let a, _), .ipv6(let b, _)): return a == b
        default: return false
        }
    }

    var canonical: UpstreamAddress {
        if case .ipv6(let address, let port) = self, address.high == 0, address.low >> 32 == 0xFFFF {
            return .ipv4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: address.low)), port: port)
        }
        return self
    }

    /// `A.B.C.D:PORT` or `[IPV6]:PORT`.
    public var description: String {
        switch self {
        case .ipv4(let address, let port): return "\(address):\(port)"
        case .ipv6(let address, let port): return "[\(address)]:\(port)"
        }
    }
}

/// The names the proxy answers locally: DHCP clients by host name (the DHCP server implements it).
/// Host names are passed in lowercase, without the domain.
public protocol DNSHostTable {
    /// The IPv4 address leased to `hostname`, or nil when no client has that name.
    func address(of hostname: String) -> IPv4Address?
    /// An IPv6 address of `hostname`, or nil when none is known.
    func ipv6Address(of hostname: String) -> IPv6Address?
    /// The host name of the client holding `address`, or nil.
    func hostname(of address: IPv4Address) -> String?
}

/// What the proxy is configured with.
public struct DNSProxyConfig: Sendable {
    /// The local domain: `HOSTNAME.DOMAIN` is answered from the host table (default `NAME.internal`).
    public var domain: DNSName
    /// The gateway's IPv4 address, answered for `gateway.DOMAIN` and its PTR.
    public var gatewayIPv4: IPv4Address
    /// The gateway's IPv6 address for `gateway.DOMAIN` AAAA, if the network has IPv6.
    public var gatewayIPv6: IPv6Address?
    /// The network's subnet: PTR queries for unknown addresses inside it get NXDOMAIN instead of
    /// going upstream. Nil forwards every PTR query the host table cannot answer.
    public var subnet: IPv4Subnet?
    /// Upstream resolvers, tried in order from the currently preferred one.
    public var upstreams: [UpstreamAddress]
    /// How long to wait for one upstream before trying the next, in the unit of `now` (nanoseconds).
    public var timeout: Int64
    /// Most queries outstanding upstream at once; beyond that clients get SERVFAIL.
    public var maxOutstanding: Int
    /// TTL of local answers, seconds. Short: leases come and go.
    public var localTTL: UInt32

    public init(domain: DNSName, gatewayIPv4: IPv4Address, gatewayIPv6: IPv6Address? = nil, subnet: IPv4Subnet? = nil,
                upstreams: [UpstreamAddress], timeout: Int64 = 2_000_000_000, maxOutstanding: Int = 1024,
                localTTL: UInt32 = 60) {
        self.domain = domain; self.gatewayIPv4 = gatewayIPv4; self.gatewayIPv6 = gatewayIPv6; self.subnet = subnet
        self.upstreams = upstreams; self.timeout = timeout; self.maxOutstanding = maxOutstanding; self.localTTL = localTTL
    }

    /// The configuration for a network's gateway; nil when `gateway.domain` is not a valid name.
    public init?(gateway: GatewayIdentity, upstreams: [UpstreamAddress]) {
        guard let domain = DNSName(gateway.domain) else { return nil }
        self.init(domain: domain, gatewayIPv4: gateway.ipv4, gatewayIPv6: gateway.ipv6Address, subnet: gateway.subnet,
                  upstreams: upstreams)
    }
}

/// What the caller does after handing the proxy a message or the time.
public enum DNSAction<Client: Hashable & Sendable>: Hashable, Sendable {
    /// Send `message` to the client (a local answer, a restored upstream reply, or an error reply).
    case answer(Client, [UInt8])
    /// Send `message` to `config.upstreams[upstream]`.
    case forward(upstream: Int, [UInt8])
}

/// Counters of the proxy (all monotonic).
public struct DNSProxyCounters: Hashable, Sendable {
    /// Messages handed to `handleQuery`.
    public var queries: UInt64 = 0
    /// Answers made here: local names, and FORMERR/NOTIMP/REFUSED (not SERVFAIL).
    public var localAnswers: UInt64 = 0
    /// Queries sent upstream for the first time.
    public var forwarded: UInt64 = 0
    /// Upstream replies matched and passed to their client.
    public var replies: UInt64 = 0
    /// Queries sent again to the next upstream after a timeout.
    public var retries: UInt64 = 0
    /// SERVFAIL answers: every upstream timed out, no upstream configured, or the table was full.
    public var servfails: UInt64 = 0
    /// Queries and replies that did not parse (or a "query" with QR set, a "reply" without): dropped.
    public var malformed: UInt64 = 0
    /// Replies matching no outstanding query (late, duplicate, spoofed, wrong question): dropped.
    public var unmatched: UInt64 = 0
    /// Queries dropped because the same client already has that ID outstanding (a client retry).
    public var duplicates: UInt64 = 0
    /// Queries refused with SERVFAIL because `maxOutstanding` queries were already outstanding.
    public var tableFull: UInt64 = 0

    public init() {}
}

/// The DNS proxy of one network. Owned by one loop; not thread-safe.
public struct DNSProxy<Client: Hashable & Sendable> {
    /// The configuration; change upstreams through `setUpstreams`.
    public private(set) var config: DNSProxyConfig
    /// The host table for local names.
    public let hostTable: any DNSHostTable
    /// Counters.
    public private(set) var counters = DNSProxyCounters()

    /// The upstream tried first for new queries; moves on when it times out.
    public private(set) var preferredUpstream = 0

    struct PendingKey: Hashable { var upstream: Int; var id: UInt16 }
    struct ClientQuery: Hashable { var client: Client; var id: UInt16 }
    struct Pending {
        var client: Client
        /// The query as the client sent it (its own ID).
        var query: [UInt8]
        var question: DNSQuestion
        var sentAt: Int64
        /// Upstreams tried so far, this one included.
        var attempts: Int
        /// Order of arrival, so expiry acts in a stable order.
        var sequence: UInt64
    }

    var pending: [PendingKey: Pending] = [:]
    var inFlight: [ClientQuery: PendingKey] = [:]
    var sequence: UInt64 = 0
    let makeID: () -> UInt16

    /// A proxy. `makeID` returns query IDs for upstream; the default draws them from the system's
    /// random generator (RFC 5452 §9.2); tests pass a deterministic one.
    public init(config: DNSProxyConfig, hostTable: any DNSHostTable,
                makeID: @escaping () -> UInt16 = { UInt16.random(in: .min ... .max) }) {
        self.config = config
        self.hostTable = hostTable
        self.makeID = makeID
    }

    /// Queries waiting for an upstream.
    public var outstandingCount: Int { pending.count }

    // MARK: Queries

    /// Handles one DNS message from `client`: a local answer or error reply for the client, the query
    /// for an upstream, or nothing (malformed input, or a retry of a query already outstanding).
    public mutating func handleQuery(_ query: [UInt8], from client: Client, now: Int64) -> [DNSAction<Client>] {
        counters.queries += 1
        guard let message = DNSMessage.parse(query), !message.flags.isResponse else {
            counters.malformed += 1
            return []
        }
        guard message.flags.opcode == .query else { return [localAnswer(to: message, .notImplemented, client)] }
        // RFC 1035 allows QDCOUNT > 1 in theory, but no server answers it; one question or FORMERR.
        guard message.questions.count == 1 else { return [localAnswer(to: message, .formatError, client)] }
        let question = message.questions[0]
        if let (rcode, answers) = resolveLocally(question) {
            return [localAnswer(to: message, rcode, client, answers: answers, authoritative: rcode != .refused)]
        }
        guard !config.upstreams.isEmpty else { return [serverFailure(to: message, client)] }
        if inFlight[ClientQuery(client: client, id: message.id)] != nil {
            counters.duplicates += 1
            return []
        }
        guard pending.count < config.maxOutstanding else {
            counters.tableFull += 1
            return [serverFailure(to: message, client)]
        }
        counters.forwarded += 1
        sequence += 1
        let entry = Pending(client: client, query: query, question: question, sentAt: now, attempts: 1, sequence: sequence)
        return [send(entry, to: preferredUpstream)]
    }

    /// Local answer for `question`: (rcode, answers), or nil to forward it.
    func resolveLocally(_ question: DNSQuestion) -> (DNSRcode, [DNSRecord])? {
        let name = question.name
        let ttl = config.localTTL
        if name.hasSuffix(config.domain) {
            guard question.class == .internet || question.class == .any else { return (.refused, []) }
            let relative = name.labels.count - config.domain.labels.count
            if relative == 0 { return (.noError, []) }
            guard relative == 1 else { return (.nameError, []) }
            let host = String(decoding: name.labels[0].map(Self.lower), as: UTF8.self)
            let v4: IPv4Address?, v6: IPv6Address?
            if host == "gateway" {
                v4 = config.gatewayIPv4; v6 = config.gatewayIPv6
            } else {
                v4 = hostTable.address(of: host); v6 = hostTable.ipv6Address(of: host)
            }
            guard v4 != nil || v6 != nil else { return (.nameError, []) }
            var answers: [DNSRecord] = []
            if question.type == .a || question.type == .any, let v4 { answers.append(.a(name, v4, ttl: ttl)) }
            if question.type == .aaaa || question.type == .any, let v6 { answers.append(.aaaa(name, v6, ttl: ttl)) }
            return (.noError, answers)
        }
        if let address = Self.reverseIPv4(name) {
            let target: DNSName?
            if address == config.gatewayIPv4 {
                target = DNSName(labels: [Array("gateway".utf8)] + config.domain.labels)
            } else if let host = hostTable.hostname(of: address) {
                target = DNSName(labels: [Array(host.utf8)] + config.domain.labels)
            } else {
                target = nil
            }
            guard let target else {
                if let subnet = config.subnet, subnet.contains(address) { return (.nameError, []) }
                return nil
            }
            guard question.class == .internet || question.class == .any else { return (.refused, []) }
            let wanted = question.type == .ptr || question.type == .any
            return (.noError, wanted ? [.ptr(name, target, ttl: ttl)] : [])
        }
        return nil
    }

    static func lower(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    /// The address of `d.c.b.a.in-addr.arpa` (RFC 1035 §3.5), or nil for any other name.
    static func reverseIPv4(_ name: DNSName) -> IPv4Address? {
        let labels = name.labels
        guard labels.count == 6, let suffix = DNSName("in-addr.arpa"), name.hasSuffix(suffix) else { return nil }
        var value: UInt32 = 0
        for label in labels[0..<4].reversed() {
            guard (1...3).contains(label.count), label.allSatisfy({ $0 &- 0x30 < 10 }),
                  label.count == 1 || label[0] != 0x30 else { return nil }
            let octet = label.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard octet <= 255 else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return IPv4Address(rawValue: value)
    }

    mutating func localAnswer(to query: DNSMessage, _ rcode: DNSRcode, _ client: Client, answers: [DNSRecord] = [],
                              authoritative: Bool = false) -> DNSAction<Client> {
        counters.localAnswers += 1
        let response = DNSMessage.makeResponse(to: query, rcode: rcode, answers: answers, authoritative: authoritative)
        return .answer(client, response.emit() ?? [])
    }

    mutating func serverFailure(to query: DNSMessage, _ client: Client) -> DNSAction<Client> {
        counters.servfails += 1
        return .answer(client, DNSMessage.serverFailure(to: query).emit() ?? [])
    }

    /// Records `entry` as outstanding at `upstream` under a fresh ID and returns the query to send.
    mutating func send(_ entry: Pending, to upstream: Int) -> DNSAction<Client> {
        var id = makeID()
        while pending[PendingKey(upstream: upstream, id: id)] != nil { id = makeID() }
        let key = PendingKey(upstream: upstream, id: id)
        pending[key] = entry
        inFlight[ClientQuery(client: entry.client, id: DNSMessage.id(of: entry.query) ?? 0)] = key
        var bytes = entry.query
        DNSMessage.setID(id, in: &bytes)
        return .forward(upstream: upstream, bytes)
    }

    // MARK: Replies

    /// Handles a message from `config.upstreams[upstreamIndex]`: the matching client gets it back
    /// with its own ID and otherwise unchanged (TC=1 answers included: the client retries over TCP,
    /// RFC 7766 §5). Unmatched and malformed replies are dropped and counted.
    public mutating func handleUpstreamReply(_ reply: [UInt8], from upstreamIndex: Int, now: Int64) -> [DNSAction<Client>] {
        let parsed: (id: UInt16, flags: DNSFlags, question: DNSQuestion?)? = reply.withUnsafeBytes { bytes in
            guard let header = DNSHeader(validating: bytes) else { return nil }
            // An upstream may drop the question from an error reply (FORMERR); then only the ID matches.
            if header.questionCount == 0 { return (header.id, header.flags, nil) }
            return DNSMessage.parseFirstQuestion(bytes).map { ($0.id, $0.flags, $0.question) }
        }
        guard let parsed, parsed.flags.isResponse else {
            counters.malformed += 1
            return []
        }
        let key = PendingKey(upstream: upstreamIndex, id: parsed.id)
        guard let entry = pending[key], parsed.question.map({ $0 == entry.question }) ?? true else {
            counters.unmatched += 1
            return []
        }
        let clientID = DNSMessage.id(of: entry.query) ?? 0
        pending[key] = nil
        inFlight[ClientQuery(client: entry.client, id: clientID)] = nil
        counters.replies += 1
        var bytes = reply
        DNSMessage.setID(clientID, in: &bytes)
        return [.answer(entry.client, bytes)]
    }

    // MARK: Time

    /// Retries every query that waited `config.timeout` on the next upstream it has not tried, and
    /// answers SERVFAIL once all have been tried. Call it a few times per timeout period.
    public mutating func expire(now: Int64) -> [DNSAction<Client>] {
        let expired = pending.filter { now - $0.value.sentAt >= config.timeout }.sorted { $0.value.sequence < $1.value.sequence }
        var actions: [DNSAction<Client>] = []
        let count = config.upstreams.count
        for (key, var entry) in expired {
            pending[key] = nil
            inFlight[ClientQuery(client: entry.client, id: DNSMessage.id(of: entry.query) ?? 0)] = nil
            if count > 0, key.upstream == preferredUpstream { preferredUpstream = (preferredUpstream + 1) % count }
            if entry.attempts >= count {
                if let query = DNSMessage.parse(entry.query) { actions.append(serverFailure(to: query, entry.client)) }
                continue
            }
            entry.attempts += 1
            entry.sentAt = now
            counters.retries += 1
            actions.append(send(entry, to: (key.upstream + 1) % count))
        }
        return actions
    }

    // MARK: Changes

    /// Replaces the upstream list (resolv.conf changed). If it differs, every outstanding query is
    /// sent again to the new list's first upstream (or answered SERVFAIL when the list is empty),
    /// since the old indices no longer name the same servers.
    public mutating func setUpstreams(_ upstreams: [UpstreamAddress], now: Int64) -> [DNSAction<Client>] {
        guard upstreams != config.upstreams else { return [] }
        config.upstreams = upstreams
        preferredUpstream = 0
        let entries = pending.values.sorted { $0.sequence < $1.sequence }
        pending.removeAll()
        inFlight.removeAll()
        return entries.compactMap { entry in
            if upstreams.isEmpty {
                return DNSMessage.parse(entry.query).map { serverFailure(to: $0, entry.client) }
            }
            var entry = entry
            entry.attempts = 1
            entry.sentAt = now
            counters.retries += 1
            return send(entry, to: 0)
        }
    }

    /// Forgets every query of `client` (its TCP connection closed); later replies count as unmatched.
    public mutating func forget(client: Client) {
        for (key, entry) in pending where entry.client == client {
            pending[key] = nil
            inFlight[ClientQuery(client: client, id: DNSMessage.id(of: entry.query) ?? 0)] = nil
        }
    }
}
