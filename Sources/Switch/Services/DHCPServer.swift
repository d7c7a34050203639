// DHCPServer: the DHCPv4 responder of one network (RFC 2131, options of RFC 2132), a function from frames to verdicts.
//
// Design: every address a client ever held stays its own (a record kept past expiry) until the
// pool needs it for someone else, so a guest that comes back gets the same address; the key is
// the client identifier, else the MAC (RFC 2131 §4.2). A new client starts at a hash of its key
// (FNV-1a, stable across runs) so addresses do not depend on arrival order. Offers are held for
// `offerHoldTime` so two clients discovering at once never get the same address; only then are
// expired records of other clients reused, oldest first. DHCP is a few messages per client per
// lease, so this path allocates freely and logs; the per-frame cost is the early `notMine` check.
//
// Fairness (README "DHCP fairness"): each client that holds a live lease or a live offer is bound
// to the port its last DISCOVER or REQUEST came in on, and a port may hold at most
// `leasesPerPort` of them, so one port cannot starve the pool. Live counts are worked out when a
// new client asks, over that port's few clients only (never a scan of the pool). A port's DHCP
// messages beyond `messagesPerSecondPerPort` are dropped before parsing, so a storm stays cheap. Saving is
// `LeaseStore.save`, which on the forwarding thread hands the snapshot to a housekeeping thread.
import Proto

/// The switch port a DHCP message came in on: its slot and the slot's generation, so a port that
/// is removed and whose slot is reused is another port.
public struct DHCPPort: Hashable, Sendable {
    public var slot: UInt16
    public var generation: UInt16
    public init(slot: UInt16, generation: UInt16) { self.slot = slot; self.generation = generation }
}

/// The DHCPv4 server of one network; it answers as `gateway` and leases addresses from `range`.
///
/// The server is authoritative for its network: a REQUEST in INIT-REBOOT, RENEWING or REBINDING
/// state for a free address it has no record of is ACKed rather than ignored (RFC 2131 §4.3.2
/// lets a server stay silent there; answering is what makes a restart with lost state harmless).
public final class DHCPServer {
    /// What the server did, message by message.
    public struct Counters: Equatable, Sendable {
        public var offers = 0, acks = 0, naks = 0, releases = 0, declines = 0, informs = 0
        /// DHCP frames that failed validation (IP/UDP checksums, truncation, options, fields).
        public var malformed = 0
        /// DISCOVERs left unanswered because no address was free.
        public var exhausted = 0
        /// Relayed messages (giaddr ≠ 0), ignored.
        public var relayed = 0
        /// Messages for another server (REQUEST, RELEASE or DECLINE with a foreign server id) or
        /// that change nothing here (RELEASE of an address the client does not hold).
        public var ignored = 0
        /// DISCOVERs and REQUESTs of new clients left unanswered because their port already holds
        /// `leasesPerPort` live leases and offers (status: the network's `drops.dhcpCapped`).
        public var capped = 0
        /// DHCP frames dropped unread because their port sent more than `messagesPerSecondPerPort`
        /// this second (status: the network's `drops.dhcpRateLimited`).
        public var rateLimited = 0
        public init() {}
    }

    /// The identity replies come from (server id, router and DNS server are its IPv4 address).
    public let gateway: GatewayIdentity
    /// Addresses new clients get (reservations may lie outside it, within the subnet).
    public let range: ClosedRange<IPv4Address>
    /// Lease time in seconds (option 51); T1 is half of it, T2 seven eighths (RFC 2131 §4.4.5).
    public let leaseTime: Int
    /// Fixed addresses by MAC; they win over every other rule.
    public let reservations: [MACAddress: IPv4Address]
    /// Seconds a DECLINEd address is never offered (RFC 2131 §4.3.3 leaves it to the server).
    public var quarantineTime: Int64 = 600
    /// Seconds an OFFERed address stays set aside for the client it was offered to.
    public var offerHoldTime: Int64 = 60
    /// Live leases plus live offers one port may hold (`dhcpLeasesPerPort`); reserved MACs and
    /// clients renewing what they hold are exempt. Messages given without a port are not capped.
    public var leasesPerPort: Int
    /// DHCP messages one port may send per second; the rest are dropped before they are parsed,
    /// so a storm costs the forwarding thread a header check per frame. A client sends a handful
    /// per lease (RFC 2131 §4.1 retransmits after 4, 8, 16 s), so this only bites a flood.
    public var messagesPerSecondPerPort = 50
    /// Seconds between two log lines about capped ports (each says how many were refused meanwhile).
    public var capLogInterval: Int64 = 10
    /// What happened so far.
    public private(set) var counters = Counters()

    private let store: LeaseStore?
    /// Every remembered lease by address (expired ones too: they are their client's stable address).
    private var leasesByIP: [IPv4Address: Lease] = [:]
    private var ipByClient: [ClientKey: IPv4Address] = [:]
    /// Outstanding offers, both ways.
    private var offersByClient: [ClientKey: Offer] = [:]
    private var offeredIPs: [IPv4Address: ClientKey] = [:]
    /// DECLINEd addresses and when their quarantine ends.
    private var quarantined: [IPv4Address: Int64] = [:]
    private var reservedIPs: [IPv4Address: MACAddress] = [:]
    /// True from the first unanswered DISCOVER of an exhaustion episode until an address is given out again.
    private(set) var exhaustionLogged = false
    private var relaysLogged: Set<IPv4Address> = []
    /// The latest `now` the server was given, for the name lookups that take no time.
    private var clock: Int64 = 0
    /// The port each attributed client last asked through (restored leases have none until then).
    private var portByClient: [ClientKey: DHCPPort] = [:]
    /// The clients attributed to each port; some may no longer be live (pruned when counted).
    private var clientsByPort: [DHCPPort: Set<ClientKey>] = [:]
    /// When the last line about a capped port was logged, and refusals since then.
    private var lastCapLog: Int64?
    private var cappedSinceLog = 0
    /// Each port's DHCP messages in the current second (removed with the port).
    private var rates: [DHCPPort: (second: Int64, count: Int)] = [:]
    private var lastRateLog: Int64?
    private var rateLimitedSinceLog = 0

    /// A server for `gateway`'s network. Leases are loaded from `store` (those outside the subnet
    /// or on another client's reserved address are dropped) and saved to it after every change.
    public init(gateway: GatewayIdentity, range: ClosedRange<IPv4Address>, leaseTime: Int,
                reservations: [MACAddress: IPv4Address], store: LeaseStore?, leasesPerPort: Int = 4) {
        self.gateway = gateway
        self.range = range
        self.leaseTime = max(leaseTime, 1)
        self.store = store
        self.leasesPerPort = max(leasesPerPort, 1)
        var accepted: [MACAddress: IPv4Address] = [:]
        for (mac, ip) in reservations.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            if !Self.isHostAddress(ip, of: gateway) {
                Log.warning("dhcp: reservation \(ip) for \(mac) is not a host address of \(gateway.subnet) other than the gateway; ignored")
            } else if let other = reservedIPs[ip] {
                Log.warning("dhcp: \(ip) is reserved for both \(other) and \(mac); keeping \(other)")
            } else {
                accepted[mac] = ip
                reservedIPs[ip] = mac
            }
        }
        self.reservations = accepted
        for lease in (store?.load() ?? []).sorted(by: { $0.expires < $1.expires }) {
            guard Self.isHostAddress(lease.ip, of: gateway) else { continue }
            if let owner = reservedIPs[lease.ip], owner != lease.mac { continue }
            record(lease)                                   // later expiry wins on duplicates
        }
    }

    // MARK: Responder

    /// Handles one Ethernet frame. A UDP datagram to port 67 from port 68 (or 67, a relay), in an
    /// IPv4 packet to 255.255.255.255 or to the gateway, is this server's; anything else is
    /// `.notMine`. A malformed one is `.consumed` and counted; a reply, when there is one, is
    /// written into `reply` (too small a buffer: `.consumed`). `port` is where the frame came in:
    /// new clients are counted against it; nil (tests, tools) counts nothing and caps nothing.
    public func respond(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer, now: Int64,
                        port: DHCPPort? = nil) -> Verdict {
        guard let ethernet = EthernetFrame(validating: frame), ethernet.etherType == .ipv4,
              isAddressedToServer(ethernet.payload) else { return .notMine }
        if let port, !withinRate(port, now: now) { return .consumed }
        clock = max(clock, now)
        guard let ip = IPv4Header(validating: ethernet.payload), ip.isChecksumValid, !ip.isFragment,
              let udp = UDPHeader(validating: ip.payload), udp.isChecksumValid(pseudoHeaderSum: ip.payloadPseudoHeaderSum),
              let message = DHCPMessage.parse(udp.payload), message.op == .request, let mac = message.clientMAC,
              let type = message.messageType
        else {
            counters.malformed += 1
            return .consumed
        }
        if message.giaddr.rawValue != 0 {
            counters.relayed += 1
            if relaysLogged.count < 64, relaysLogged.insert(message.giaddr).inserted {   // one line per relay, bounded
                Log.info("dhcp: ignoring \(type) for \(mac) relayed by \(message.giaddr): relayed requests are not served")
            }
            return .consumed
        }
        let client = ClientKey(message, mac: mac)
        let context = ReplyContext(frame: ethernet, request: message, mac: mac, ipSource: ip.source, buffer: reply,
                                   port: port)
        switch type {
        case .discover: return discover(client, context, now: now)
        case .request: return request(client, context, now: now)
        case .decline: return decline(client, context, now: now)
        case .release: return release(client, context, now: now)
        case .inform: return inform(context)
        default:                                           // OFFER, ACK, NAK or unknown from a client
            counters.malformed += 1
            return .consumed
        }
    }

    /// Whether `packet` (an Ethernet payload) claims to be UDP to port 67 from 68 or 67, to the
    /// limited broadcast or the gateway; only the bytes that decide are looked at, so a truncated
    /// DHCP packet is still recognised (and then counted as malformed).
    private func isAddressedToServer(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard packet.count >= 20, packet[0] >> 4 == 4 else { return false }
        let headerLength = Int(packet[0] & 0x0F) * 4
        guard headerLength >= 20, packet.count >= headerLength + 4, packet[9] == IPProtocol.udp.rawValue,
              packet[6] & 0x1F == 0, packet[7] == 0 else { return false }   // first fragment only
        let destination = IPv4Address(loading: packet.baseAddress! + 16)
        guard destination == Self.limitedBroadcast || destination == gateway.ipv4 else { return false }
        let sourcePort = UInt16(packet[headerLength]) << 8 | UInt16(packet[headerLength + 1])
        let destinationPort = UInt16(packet[headerLength + 2]) << 8 | UInt16(packet[headerLength + 3])
        return destinationPort == Self.serverPort && (sourcePort == Self.clientPort || sourcePort == Self.serverPort)
    }

    // MARK: Messages

    private func discover(_ client: ClientKey, _ context: ReplyContext, now: Int64) -> Verdict {
        pruneOffers(now: now)
        guard admits(client, context, now: now) else { return .consumed }
        guard let allocation = allocate(client, mac: context.mac, requested: context.request.requestedIPAddress, now: now)
        else {
            counters.exhausted += 1
            if !exhaustionLogged {
                exhaustionLogged = true
                Log.warning("dhcp: no free address in \(range.lowerBound)-\(range.upperBound) for \(context.mac); new clients get no answer until one frees")
            }
            return .consumed
        }
        let ip = allocation.ip
        if allocation.fromPool { exhaustionLogged = false }
        setOffer(Offer(ip: ip, until: now + offerHoldTime), for: client)
        attribute(client, to: context.port, mac: context.mac)
        counters.offers += 1
        let lease = Lease(mac: context.mac, ip: ip, hostname: hostName(context.request) ?? leasesByIP[ip]?.hostname,
                          expires: now + Int64(leaseTime), clientID: context.request.clientIdentifier)
        return send(.offer, context, yiaddr: ip, lease: lease)
    }

    private func request(_ client: ClientKey, _ context: ReplyContext, now: Int64) -> Verdict {
        let message = context.request
        let ip: IPv4Address
        if let serverID = message.serverIdentifier {
            guard serverID == gateway.ipv4 else {           // SELECTING another server's offer
                removeOffer(for: client)
                counters.ignored += 1
                return .consumed
            }
            guard let requested = message.requestedIPAddress ?? (message.ciaddr.rawValue != 0 ? message.ciaddr : nil) else {
                counters.malformed += 1                    // RFC 2131 §4.3.2: SELECTING MUST carry option 50
                return .consumed
            }
            ip = requested
        } else if let requested = message.requestedIPAddress {
            ip = requested                                  // INIT-REBOOT
        } else if message.ciaddr.rawValue != 0 {
            ip = message.ciaddr                             // RENEWING (unicast) or REBINDING (broadcast)
        } else {
            counters.malformed += 1
            return .consumed
        }
        guard gateway.subnet.contains(ip) else { return nak(context, reason: "\(ip) is not on this network") }
        // Over the cap: silence, not a NAK (a NAK is broadcast to every port and sends the client
        // straight back to DISCOVER).
        guard admits(client, context, now: now) else { return .consumed }
        guard canBind(ip, to: client, mac: context.mac, now: now) else {
            return nak(context, reason: "\(ip) is not available to this client")
        }
        let lease = self.bind(ip, to: client, context, now: now)
        attribute(client, to: context.port, mac: context.mac)
        counters.acks += 1
        return send(.ack, context, yiaddr: ip, lease: lease)
    }

    private func decline(_ client: ClientKey, _ context: ReplyContext, now: Int64) -> Verdict {
        guard let ip = context.request.requestedIPAddress else {
            counters.malformed += 1                        // RFC 2131 §4.4.1: DECLINE MUST carry option 50
            return .consumed
        }
        guard context.request.serverIdentifier.map({ $0 == gateway.ipv4 }) ?? true, Self.isHostAddress(ip, of: gateway) else {
            counters.ignored += 1
            return .consumed
        }
        // RFC 2131 §4.3.3: the client declines an address it was given. From anyone else a
        // DECLINE would let one guest quarantine the whole pool, past any per-port cap.
        guard ipByClient[client] == ip || offersByClient[client]?.ip == ip else {
            counters.ignored += 1
            return .consumed
        }
        quarantined[ip] = now + quarantineTime
        if let offered = offeredIPs[ip] { removeOffer(for: offered) }
        if let lease = leasesByIP[ip], lease.client == client { removeLease(at: ip) }
        counters.declines += 1
        Log.warning("dhcp: \(context.mac) declined \(ip) (another host uses it?); not offered for \(quarantineTime) s")
        save()
        return .consumed
    }

    private func release(_ client: ClientKey, _ context: ReplyContext, now: Int64) -> Verdict {
        let ip = context.request.ciaddr
        guard context.request.serverIdentifier.map({ $0 == gateway.ipv4 }) ?? true,
              var lease = leasesByIP[ip], lease.client == client else {
            counters.ignored += 1
            return .consumed
        }
        // RFC 2131 §4.3.4: the address is free again, but the record stays so the client gets it back.
        if lease.expires > now {
            lease.expires = now
            leasesByIP[ip] = lease
            save()
        }
        counters.releases += 1
        return .consumed
    }

    private func inform(_ context: ReplyContext) -> Verdict {
        counters.informs += 1
        return send(.ack, context, yiaddr: IPv4Address(rawValue: 0), lease: nil)
    }

    private func nak(_ context: ReplyContext, reason: String) -> Verdict {
        counters.naks += 1
        return send(.nak, context, yiaddr: IPv4Address(rawValue: 0), lease: nil, reason: reason)
    }

    // MARK: Addresses

    /// The address to offer `client`: its reservation, its current or offered address, the one it
    /// asks for if free, the first free one from a hash of its key, else the expired record of
    /// another client that expired first. `fromPool` is false when the client already had it.
    private func allocate(_ client: ClientKey, mac: MACAddress, requested: IPv4Address?, now: Int64)
        -> (ip: IPv4Address, fromPool: Bool)? {
        if let reserved = reservations[mac] {
            return isAssignable(reserved, to: mac, now: now) ? (reserved, true) : nil
        }
        if let current = ipByClient[client], isAssignable(current, to: mac, now: now), isFree(current, for: client, now: now) {
            return (current, false)
        }
        if let offer = offersByClient[client], isAssignable(offer.ip, to: mac, now: now) {
            return (offer.ip, false)
        }
        if let requested, range.contains(requested), isAssignable(requested, to: mac, now: now),
           isFree(requested, for: client, now: now) {
            return (requested, true)
        }
        let size = UInt64(range.upperBound.rawValue - range.lowerBound.rawValue) + 1
        let start = client.stableHash % size
        for step in 0..<size {
            let ip = IPv4Address(rawValue: range.lowerBound.rawValue + UInt32((start + step) % size))
            if isAssignable(ip, to: mac, now: now), isFree(ip, for: client, now: now) { return (ip, true) }
        }
        let expired = leasesByIP.values
            .filter { $0.expires <= now && isAssignable($0.ip, to: mac, now: now) && offeredIPs[$0.ip] == nil }
            .min { ($0.expires, $0.ip) < ($1.expires, $1.ip) }
        return expired.map { ($0.ip, true) }
    }

    /// Whether `ip` may ever be `mac`'s: a host address of the subnet other than the gateway, not
    /// quarantined, and either its reservation or, for a MAC without one, in the range and not
    /// reserved for another MAC.
    private func isAssignable(_ ip: IPv4Address, to mac: MACAddress, now: Int64) -> Bool {
        guard Self.isHostAddress(ip, of: gateway) else { return false }
        if let until = quarantined[ip] {
            guard until <= now else { return false }
            quarantined[ip] = nil
        }
        if let reserved = reservations[mac] { return ip == reserved }
        return range.contains(ip) && reservedIPs[ip] == nil
    }

    /// Whether nobody else holds `ip`: no record of another client (even expired) and no live offer.
    private func isFree(_ ip: IPv4Address, for client: ClientKey, now: Int64) -> Bool {
        if let lease = leasesByIP[ip], lease.client != client { return false }
        if let other = offeredIPs[ip], other != client, let offer = offersByClient[other], offer.until > now { return false }
        return true
    }

    /// Whether a REQUEST for `ip` can be ACKed: assignable, not another client's live lease or
    /// live offer (a reservation overrides both), and not a different address from the one this
    /// client still holds (it is NAKed back to that one).
    private func canBind(_ ip: IPv4Address, to client: ClientKey, mac: MACAddress, now: Int64) -> Bool {
        guard isAssignable(ip, to: mac, now: now) else { return false }
        if reservations[mac] != nil { return true }
        if let lease = leasesByIP[ip], lease.client != client, lease.expires > now { return false }
        if let other = offeredIPs[ip], other != client, let offer = offersByClient[other], offer.until > now { return false }
        if let current = ipByClient[client], current != ip, isAssignable(current, to: mac, now: now),
           isFree(current, for: client, now: now) {
            return false
        }
        return true
    }

    /// Records the lease of `ip` for `client` until `now + leaseTime`, drops its other address and
    /// offer, hands it the host name (the newer lease wins a name) and saves.
    private func bind(_ ip: IPv4Address, to client: ClientKey, _ context: ReplyContext, now: Int64) -> Lease {
        let previous = leasesByIP[ip].flatMap { $0.client == client ? $0 : nil }
        let hostname = hostName(context.request) ?? previous?.hostname
        if let name = hostname {
            for other in leasesByIP.values where other.hostname == name && other.client != client && other.ip != ip {
                if other.expires > now {
                    Log.notice("dhcp: host name \(name) moves from \(other.ip) (\(other.mac)) to \(ip) (\(context.mac)): the newer lease wins")
                }
                leasesByIP[other.ip]?.hostname = nil
            }
        }
        removeOffer(for: client)
        if let offered = offeredIPs[ip] { removeOffer(for: offered) }
        let lease = Lease(mac: context.mac, ip: ip, hostname: hostname, expires: now + Int64(leaseTime),
                          clientID: context.request.clientIdentifier)
        if previous == nil {
            Log.info("dhcp: \(context.mac)\(hostname.map { " (\($0))" } ?? "") leases \(ip)")
        }
        record(lease)
        save()
        return lease
    }

    /// Stores `lease`, replacing whatever was on its address and the client's other address.
    private func record(_ lease: Lease) {
        if let old = ipByClient[lease.client], old != lease.ip { removeLease(at: old) }
        if leasesByIP[lease.ip] != nil { removeLease(at: lease.ip) }
        leasesByIP[lease.ip] = lease
        ipByClient[lease.client] = lease.ip
    }

    private func removeLease(at ip: IPv4Address) {
        guard let lease = leasesByIP.removeValue(forKey: ip) else { return }
        if ipByClient[lease.client] == ip { ipByClient[lease.client] = nil }
    }

    private func setOffer(_ offer: Offer, for client: ClientKey) {
        removeOffer(for: client)
        if let other = offeredIPs[offer.ip] { removeOffer(for: other) }
        offersByClient[client] = offer
        offeredIPs[offer.ip] = client
    }

    private func removeOffer(for client: ClientKey) {
        guard let offer = offersByClient.removeValue(forKey: client) else { return }
        if offeredIPs[offer.ip] == client { offeredIPs[offer.ip] = nil }
    }

    private func pruneOffers(now: Int64) {
        for (client, offer) in offersByClient where offer.until <= now { removeOffer(for: client) }
    }

    private func save() {
        store?.save(leasesByIP.values.sorted { $0.ip < $1.ip })
    }

    // MARK: Fairness (one port cannot take the pool)

    /// Whether `client` may get an offer or a lease through the message's port: always when it
    /// comes through no port, has a reservation or already holds a live lease or offer (a renewal
    /// is never refused); otherwise only while the port holds fewer than `leasesPerPort`. A refusal
    /// is counted and logged (at most one line per `capLogInterval`).
    private func admits(_ client: ClientKey, _ context: ReplyContext, now: Int64) -> Bool {
        guard let port = context.port, reservations[context.mac] == nil, !isLive(client, now: now) else { return true }
        let held = liveClients(of: port, now: now)
        guard held >= leasesPerPort else { return true }
        counters.capped += 1
        cappedSinceLog += 1
        if lastCapLog.map({ now &- $0 >= capLogInterval || now < $0 }) ?? true {
            Log.warning("dhcp: port \(port.slot) holds \(held) leases and offers (dhcpLeasesPerPort \(leasesPerPort)); "
                        + "not answering \(context.mac) (\(cappedSinceLog) refused since the last line)")
            lastCapLog = now
            cappedSinceLog = 0
        }
        return false
    }

    /// Counts one message from `port` in the second `now`; false (counted, logged at most once per
    /// `capLogInterval`) when the port is over `messagesPerSecondPerPort`.
    private func withinRate(_ port: DHCPPort, now: Int64) -> Bool {
        if let window = rates[port], window.second == now {
            guard window.count < messagesPerSecondPerPort else {
                counters.rateLimited += 1
                rateLimitedSinceLog += 1
                if lastRateLog.map({ now &- $0 >= capLogInterval || now < $0 }) ?? true {
                    Log.warning("dhcp: port \(port.slot) sends more than \(messagesPerSecondPerPort) DHCP messages a second; "
                                + "dropping the rest (\(rateLimitedSinceLog) dropped since the last line)")
                    lastRateLog = now
                    rateLimitedSinceLog = 0
                }
                return false
            }
            rates[port] = (now, window.count + 1)
        } else {
            rates[port] = (now, 1)
        }
        return true
    }

    /// Whether `client` holds an unexpired lease or offer.
    private func isLive(_ client: ClientKey, now: Int64) -> Bool {
        if let offer = offersByClient[client], offer.until > now { return true }
        if let ip = ipByClient[client], let lease = leasesByIP[ip], lease.expires > now { return true }
        return false
    }

    /// How many clients attributed to `port` are live; the others are forgotten on the way (their
    /// records stay, they just count for no port).
    private func liveClients(of port: DHCPPort, now: Int64) -> Int {
        guard let clients = clientsByPort[port] else { return 0 }
        var live = 0
        for client in clients {
            if isLive(client, now: now) {
                live += 1
            } else {
                clientsByPort[port]?.remove(client)
                portByClient[client] = nil
            }
        }
        if clientsByPort[port]?.isEmpty == true { clientsByPort[port] = nil }
        return live
    }

    /// Binds `client` to `port` (moving it from its previous port); reserved MACs count nowhere.
    private func attribute(_ client: ClientKey, to port: DHCPPort?, mac: MACAddress) {
        guard let port, reservations[mac] == nil else { return }
        if let previous = portByClient[client] {
            guard previous != port else { return }
            clientsByPort[previous]?.remove(client)
            if clientsByPort[previous]?.isEmpty == true { clientsByPort[previous] = nil }
        }
        portByClient[client] = port
        clientsByPort[port, default: []].insert(client)
    }

    /// The port is gone: its clients count for no port from now on. With `release`, their live
    /// leases end now (kept as their stable address, as a RELEASE does) and their offers are
    /// withdrawn; otherwise the leases run on and a client that comes back on another port keeps
    /// its address. Returns how many leases were released.
    @discardableResult
    public func portRemoved(_ port: DHCPPort, release: Bool, now: Int64) -> Int {
        rates[port] = nil
        guard let clients = clientsByPort.removeValue(forKey: port) else { return 0 }
        var released = 0
        for client in clients where portByClient[client] == port {
            portByClient[client] = nil
            guard release else { continue }
            removeOffer(for: client)
            if let ip = ipByClient[client], var lease = leasesByIP[ip], lease.expires > now {
                lease.expires = now
                leasesByIP[ip] = lease
                released += 1
            }
        }
        if released > 0 {
            Log.info("dhcp: port \(port.slot) removed; released its \(released) lease\(released == 1 ? "" : "s")")
            save()
        }
        return released
    }

    /// Live leases and offers attributed to `port` at `now` (for tests and status).
    public func heldCount(of port: DHCPPort, now: Int64) -> Int { liveClients(of: port, now: now) }

    // MARK: Names and listing

    /// Leases that have not expired at `now`, by address.
    public func leases(now: Int64) -> [Lease] {
        leasesByIP.values.filter { $0.expires > now }.sorted { $0.ip < $1.ip }
    }

    /// Every remembered lease, expired ones included (what is persisted), by address.
    public var allLeases: [Lease] { leasesByIP.values.sorted { $0.ip < $1.ip } }

    /// The address of the unexpired lease with host name `name` (one DNS label, any case) at `now`.
    public func hostAddress(named name: String, now: Int64) -> IPv4Address? {
        let wanted = name.lowercased()
        return leasesByIP.values.first { $0.hostname == wanted && $0.expires > now }?.ip
    }

    /// `hostAddress(named:now:)` at the latest time the server has been given.
    public func hostAddress(named name: String) -> IPv4Address? { hostAddress(named: name, now: clock) }

    /// The host name of the unexpired lease of `address` at `now`.
    public func hostName(for address: IPv4Address, now: Int64) -> String? {
        leasesByIP[address].flatMap { $0.expires > now ? $0.hostname : nil }
    }

    /// `hostName(for:now:)` at the latest time the server has been given.
    public func hostName(for address: IPv4Address) -> String? { hostName(for: address, now: clock) }

    /// `bytes` (option 12) as a DNS label (RFC 1035 §2.3.1, RFC 1123 §2.1): the part before the
    /// first dot or NUL, lower-cased, other characters than letters, digits and `-` made `-`,
    /// without leading or trailing `-`, at most 63 octets; nil when nothing is left.
    public static func sanitizedHostName(_ bytes: [UInt8]) -> String? {
        var label: [UInt8] = []
        for byte in bytes {
            if byte == UInt8(ascii: ".") || byte == 0 { break }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): label.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): label.append(byte + 32)
            default: label.append(UInt8(ascii: "-"))
            }
        }
        var trimmed = label.drop { $0 == UInt8(ascii: "-") }.prefix(63)
        while trimmed.last == UInt8(ascii: "-") { trimmed.removeLast() }
        return trimmed.isEmpty ? nil : String(decoding: trimmed, as: UTF8.self)
    }

    private func hostName(_ message: DHCPMessage) -> String? { message.hostName.flatMap(Self.sanitizedHostName) }

    // MARK: Replies

    /// Builds the reply of `type` and writes it as a frame (RFC 2131 §4.1 for where it goes).
    private func send(_ type: DHCPMessageType, _ context: ReplyContext, yiaddr: IPv4Address, lease: Lease?,
                      reason: String? = nil) -> Verdict {
        let request = context.request
        let zero = IPv4Address(rawValue: 0)
        // Table 3: ciaddr is echoed in an ACK (renewal, INFORM) and zero in OFFER and NAK.
        let ciaddr = type == .ack ? request.ciaddr : zero
        let reply = DHCPMessage(op: .reply, htype: request.htype, hlen: request.hlen, xid: request.xid,
                                flags: request.flags, ciaddr: ciaddr, yiaddr: yiaddr, chaddr: request.chaddr,
                                options: options(type, request: request, lease: lease, reason: reason))
        let ipDestination: IPv4Address
        let macDestination: MACAddress
        if type == .nak {
            (ipDestination, macDestination) = (Self.limitedBroadcast, .broadcast)   // §4.1: NAKs are broadcast
        } else if request.ciaddr.rawValue != 0 {
            (ipDestination, macDestination) = (request.ciaddr, context.mac)
        } else if lease == nil, context.ipSource.rawValue != 0 {
            (ipDestination, macDestination) = (context.ipSource, context.mac)       // INFORM without ciaddr
        } else if request.broadcast || yiaddr.rawValue == 0 {
            (ipDestination, macDestination) = (Self.limitedBroadcast, .broadcast)
        } else {
            (ipDestination, macDestination) = (yiaddr, context.mac)
        }
        return emit(reply, to: ipDestination, macDestination, context)
    }

    /// The options of a reply: message type and server id always; lease time (and T1/T2 when
    /// asked) with a lease; subnet mask, router and DNS server always (clients need them whether
    /// they ask or not); broadcast address, domain, MTU only when asked (or with no request list);
    /// the host name when the client sent or asked for one; the client id echoed (RFC 6842).
    private func options(_ type: DHCPMessageType, request: DHCPMessage, lease: Lease?, reason: String?) -> [DHCPOption] {
        var options = [DHCPOption(.messageType, [type.rawValue]), DHCPOption(.serverIdentifier, address: gateway.ipv4)]
        if type == .nak {
            if let reason { options.append(DHCPOption(.message, text: reason)) }
        } else {
            let requested = request.parameterRequestList.map(Set.init)
            func wants(_ code: DHCPOptionCode) -> Bool { requested?.contains(code) ?? true }
            if lease != nil {
                let time = UInt32(clamping: leaseTime)
                options.append(DHCPOption(.leaseTime, uint32: time))
                if wants(.renewalTime) { options.append(DHCPOption(.renewalTime, uint32: time / 2)) }
                if wants(.rebindingTime) { options.append(DHCPOption(.rebindingTime, uint32: UInt32(UInt64(time) * 7 / 8))) }
            }
            options.append(DHCPOption(.subnetMask, address: gateway.subnet.mask))
            if wants(.broadcastAddress) { options.append(DHCPOption(.broadcastAddress, address: gateway.subnet.broadcast)) }
            options.append(DHCPOption(.router, address: gateway.ipv4))
            options.append(DHCPOption(.domainNameServer, address: gateway.ipv4))
            if wants(.domainName), !gateway.domain.isEmpty { options.append(DHCPOption(.domainName, text: gateway.domain)) }
            if let name = lease?.hostname, request.hostName != nil || requested?.contains(.hostName) == true {
                options.append(DHCPOption(.hostName, text: name))
            }
            if wants(.interfaceMTU) { options.append(DHCPOption(.interfaceMTU, uint16: UInt16(clamping: max(gateway.mtu, 68)))) }
        }
        if let id = request.clientIdentifier { options.append(DHCPOption(.clientIdentifier, id)) }
        return options
    }

    /// Writes Ethernet (the request's VLAN tags kept), IPv4, UDP 67→68 and `message` into the reply buffer.
    private func emit(_ message: DHCPMessage, to ipDestination: IPv4Address, _ macDestination: MACAddress,
                      _ context: ReplyContext) -> Verdict {
        let ethernet = EthernetRepr(destination: macDestination, source: gateway.mac, outerTag: context.frame.outerTag,
                                    innerTag: context.frame.innerTag, etherType: .ipv4)
        let udpLength = UDPRepr.headerLength + message.emitLength
        let ipStart = ethernet.headerLength
        let udpStart = ipStart + IPv4Repr.headerLength
        let total = udpStart + udpLength
        let buffer = context.buffer
        guard buffer.count >= total else {
            Log.error("dhcp: reply of \(total) bytes does not fit a \(buffer.count)-byte buffer")
            return .consumed
        }
        ethernet.emit(into: buffer)
        message.emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[(udpStart + UDPRepr.headerLength)..<total]))
        let pseudoHeader = InternetChecksum.pseudoHeaderSum(source: gateway.ipv4, destination: ipDestination,
                                                            protocol: .udp, length: udpLength)
        UDPRepr(sourcePort: Self.serverPort, destinationPort: Self.clientPort)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[udpStart..<total]), pseudoHeaderSum: pseudoHeader)
        IPv4Repr(source: gateway.ipv4, destination: ipDestination, protocol: .udp, payloadLength: udpLength, timeToLive: 64)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[ipStart..<total]))
        return .reply(length: total)
    }

    // MARK: Constants and small types

    /// BOOTP ports (RFC 2131 §4.1).
    static let serverPort: UInt16 = 67
    static let clientPort: UInt16 = 68
    static let limitedBroadcast = IPv4Address(rawValue: 0xFFFF_FFFF)

    /// A host address of the gateway's subnet that is not the gateway itself.
    static func isHostAddress(_ ip: IPv4Address, of gateway: GatewayIdentity) -> Bool {
        gateway.subnet.contains(ip) && ip != gateway.subnet.network && ip != gateway.subnet.broadcast && ip != gateway.ipv4
    }

    private struct Offer {
        var ip: IPv4Address
        var until: Int64
    }

    /// What one reply is built from.
    private struct ReplyContext {
        var frame: EthernetFrame
        var request: DHCPMessage
        var mac: MACAddress
        var ipSource: IPv4Address
        var buffer: UnsafeMutableRawBufferPointer
        var port: DHCPPort?
    }
}

/// Who a lease belongs to: the client identifier when the client sends one, else its MAC (RFC 2131 §4.2).
enum ClientKey: Hashable {
    case identifier([UInt8])
    case mac(MACAddress)

    init(_ message: DHCPMessage, mac: MACAddress) {
        self = message.clientIdentifier.map { .identifier($0) } ?? .mac(mac)
    }

    /// FNV-1a (64-bit) of the key: the same in every run, unlike `Hasher`.
    var stableHash: UInt64 {
        var hash = FNV1a()
        switch self {
        case .identifier(let bytes): hash.combine(1); hash.combine(contentsOf: bytes)
        case .mac(let mac): hash.combine(0); hash.combine(contentsOf: mac.octets)
        }
        return hash.value
    }
}

extension Lease {
    /// The key this lease is found by.
    var client: ClientKey { clientID.map { .identifier($0) } ?? .mac(mac) }
}
