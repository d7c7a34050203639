// RouterAdvertiser: the gateway's Router Advertisements (RFC 4861 §6.2), solicited and periodic, for SLAAC and RDNSS.
//
// Solicitations arrive on the forwarding thread with every multicast frame, so a frame is looked
// at only when it is untagged IPv6 to 33:33:00:00:00:02 or the gateway MAC, ICMPv6 directly after
// the fixed header, type 133, to all-routers or a gateway address; then it is mine. Nothing is
// allocated: the advertisement is built once at init and emitted per reply. Time and randomness
// are passed in, so the schedule is testable. Policy:
// - A solicitation is validated as RFC 4861 §6.1.1 says (hop limit 255, checksum, code 0, options
//   of non-zero length, no link-layer option from ::); failures are consumed and counted.
// - It is answered at once (RFC 4861 §6.2.6 asks for a random delay of up to 0.5 s, which spreads
//   the answers of several routers; the switch is the only router on its link), unicast to the
//   solicitor (§6.2.6 allows it) at the MAC in its Source Link-Layer Address option, else the
//   frame's source MAC; from :: it goes to all-nodes, at most one every MIN_DELAY_BETWEEN_RAS
//   (3 s, §10); the extra ones are consumed and counted in `rateLimited`.
// - Unsolicited advertisements go to all-nodes at intervals drawn uniformly from
//   [MinRtrAdvInterval, MaxRtrAdvInterval] (§6.2.4; 66 to 200 s by default), the first
//   MAX_INITIAL_RTR_ADVERTISEMENTS (3) at most MAX_INITIAL_RTR_ADVERT_INTERVAL (16 s) apart.
// - Content: Cur Hop Limit 64, M and O clear, preference medium (RFC 4191 §2.2), Router Lifetime 0 unless the gateway routes beyond
//   the host (then AdvDefaultLifetime = 3 × MaxRtrAdvInterval, §6.2.1), Reachable Time and Retrans
//   Timer 0 (unspecified); options Source Link-Layer Address, MTU, Prefix Information for the /64
//   (L and A, valid 86400 s, preferred 14400 s) and RDNSS (RFC 8106) with the gateway's ULA
//   address and lifetime 3 × MaxRtrAdvInterval (RFC 8106 §5.1). Sent from the gateway's
//   link-local address (§4.2) with hop limit 255.
// - With no IPv6 prefix nothing is mine and nothing is sent.
import Proto

/// Sends the gateway's Router Advertisements.
public struct RouterAdvertiser: Sendable {
    /// What the advertiser has done since it was created.
    public struct Counters: Equatable, Sendable {
        /// Router Solicitations answered.
        public var solicitationsAnswered: UInt64 = 0
        /// Unsolicited advertisements built by `unsolicited(into:)`.
        public var unsolicitedSent: UInt64 = 0
        /// Solicitations consumed because they failed RFC 4861 §6.1.1.
        public var malformed: UInt64 = 0
        /// Solicitations from :: left unanswered because an all-nodes answer went out less than
        /// MIN_DELAY_BETWEEN_RAS ago.
        public var rateLimited: UInt64 = 0
        /// Solicitations consumed because the reply buffer was too small.
        public var dropped: UInt64 = 0

        public init() {}
    }

    /// MAX_INITIAL_RTR_ADVERTISEMENTS (RFC 4861 §10).
    public static let maxInitialAdvertisements = 3
    /// MAX_INITIAL_RTR_ADVERT_INTERVAL in seconds (RFC 4861 §10).
    public static let maxInitialInterval = 16.0
    /// MIN_DELAY_BETWEEN_RAS in seconds (RFC 4861 §10).
    public static let minDelayBetweenAdvertisements = 3.0
    /// AdvValidLifetime of the prefix in seconds (RFC 4861 §6.2.1 default: 30 days; one day here,
    /// so a renumbered network recovers sooner).
    public static let prefixValidLifetime: UInt32 = 86_400
    /// AdvPreferredLifetime of the prefix in seconds (four hours).
    public static let prefixPreferredLifetime: UInt32 = 14_400

    /// MaxRtrAdvInterval in seconds (RFC 4861 §6.2.1: 4...1800, default 600; 200 here).
    public let maxInterval: Double
    /// MinRtrAdvInterval in seconds: 0.33 × MaxRtrAdvInterval (the §6.2.1 default).
    public var minInterval: Double { 0.33 * maxInterval }
    /// The gateway MAC.
    public let mac: MACAddress
    /// The advertisement's source, the gateway's link-local address (RFC 4861 §4.2).
    public let linkLocal: IPv6Address
    /// The gateway's ULA address; nil when the network has no IPv6.
    public let global: IPv6Address?
    /// What every advertisement says; nil when the network has no IPv6.
    public let advertisement: RouterAdvertisementRepr?
    /// Counters since creation.
    public private(set) var counters = Counters()

    /// When the last all-nodes answer to a solicitation went out (seconds on the caller's clock).
    private var lastMulticastAnswer = -Double.infinity

    /// An advertiser for `gateway` with MaxRtrAdvInterval `maxInterval` seconds (clamped to 4...1800).
    public init(gateway: GatewayIdentity, maxInterval: Double = 200) {
        self.maxInterval = min(max(maxInterval, 4), 1800)
        mac = gateway.mac
        linkLocal = gateway.linkLocal
        global = gateway.ipv6Address
        if let prefix = gateway.ipv6Prefix, let global = gateway.ipv6Address {
            let lifetime = UInt32(3 * self.maxInterval)
            advertisement = RouterAdvertisementRepr(
                curHopLimit: 64, flags: [],
                routerLifetime: gateway.routesBeyondHost ? UInt16(3 * self.maxInterval) : 0,
                reachableTime: 0, retransTimer: 0, sourceLinkLayerAddress: gateway.mac,
                mtu: UInt32(clamping: gateway.mtu),
                prefixInformation: NDPPrefixInformation(prefixLength: 64, onLink: true, autonomous: true,
                                                        validLifetime: Self.prefixValidLifetime,
                                                        preferredLifetime: Self.prefixPreferredLifetime,
                                                        prefix: IPv6Address(high: prefix.high, low: 0)),
                recursiveDNSServer: NDPRecursiveDNSServer(lifetime: lifetime, address: global))
        } else {
            advertisement = nil
        }
    }

    /// Bytes of an advertisement frame (0 without IPv6).
    public var replyLength: Int { advertisement.map { UntaggedField.ipv6Payload + $0.length } ?? 0 }

    /// Answers `frame` when it is a Router Solicitation to all-routers or a gateway address, writing
    /// the advertisement at the start of `reply` (which must not overlap `frame`). `now` is in
    /// seconds on any monotonic clock; it only rate-limits answers to all-nodes.
    public mutating func respond(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer,
                                 now: Double) -> Verdict {
        guard let advertisement, frame.count > UntaggedField.ipv6Payload,
              frame.be16(UntaggedField.etherType) == EtherType.ipv6.rawValue else { return .notMine }
        let destinationMAC = frame.macAddress(UntaggedField.destination)
        guard destinationMAC == IPv6Address.allRouters.multicastMAC || destinationMAC == mac,
              frame.byte(UntaggedField.ipv6NextHeader) == IPProtocol.icmpv6.rawValue,
              frame.byte(UntaggedField.ipv6Payload) == ICMPv6Type.routerSolicitation.rawValue
        else { return .notMine }
        let destination = frame.ipv6Address(UntaggedField.ipv6Destination)
        guard destination == .allRouters || destination == linkLocal || destination == global else { return .notMine }

        guard let ip = IPv6Header(validating: frame.suffix(from: UntaggedField.headerLength)), ip.hopLimit == 255,
              let message = ICMPv6Message(validating: ip.payload),
              message.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                  source: ip.source, destination: destination, protocol: .icmpv6, length: message.bytes.count)),
              let solicitation = RouterSolicitationRepr.parse(message)
        else { return malformed() }
        let source = ip.source
        let replyDestination: IPv6Address, replyMAC: MACAddress
        if source.isUnspecified {
            // RFC 4861 §6.1.1: no Source Link-Layer Address option from the unspecified address.
            guard solicitation.sourceLinkLayerAddress == nil else { return malformed() }
            guard now - lastMulticastAnswer >= Self.minDelayBetweenAdvertisements else {
                counters.rateLimited += 1
                return .consumed
            }
            replyDestination = .allNodes
            replyMAC = IPv6Address.allNodes.multicastMAC
        } else {
            let senderMAC = solicitation.sourceLinkLayerAddress ?? frame.macAddress(UntaggedField.source)
            guard !source.isMulticast, !senderMAC.isMulticast else { return malformed() }
            replyDestination = source
            replyMAC = senderMAC
        }
        guard reply.count >= replyLength else {
            counters.dropped += 1
            return .consumed
        }
        if source.isUnspecified { lastMulticastAnswer = now }
        counters.solicitationsAnswered += 1
        return .reply(length: emit(advertisement, to: replyDestination, at: replyMAC, into: reply))
    }

    /// Writes an unsolicited advertisement to all-nodes at the start of `reply` and returns its
    /// length; 0 (nothing written) when the network has no IPv6 or `reply` is too small.
    public mutating func unsolicited(into reply: UnsafeMutableRawBufferPointer) -> Int {
        guard let advertisement, reply.count >= replyLength else { return 0 }
        counters.unsolicitedSent += 1
        return emit(advertisement, to: .allNodes, at: IPv6Address.allNodes.multicastMAC, into: reply)
    }

    /// When the next unsolicited advertisement is due, in seconds on the clock of `now`, given
    /// `random` uniform in [0, 1): now plus an interval uniform in [MinRtrAdvInterval,
    /// MaxRtrAdvInterval], at most MAX_INITIAL_RTR_ADVERT_INTERVAL while fewer than
    /// MAX_INITIAL_RTR_ADVERTISEMENTS have been sent (RFC 4861 §6.2.4). Call it at start, then
    /// after each `unsolicited(into:)`.
    public func nextUnsolicited(after now: Double, random: Double) -> Double {
        let unit = min(max(random, 0), 1)
        var interval = minInterval + unit * (maxInterval - minInterval)
        if counters.unsolicitedSent < UInt64(Self.maxInitialAdvertisements) {
            interval = min(interval, Self.maxInitialInterval)
        }
        return now + interval
    }

    private func emit(_ advertisement: RouterAdvertisementRepr, to destination: IPv6Address, at destinationMAC: MACAddress,
                      into reply: UnsafeMutableRawBufferPointer) -> Int {
        EthernetRepr(destination: destinationMAC, source: mac, etherType: .ipv6).emit(into: reply)
        IPv6Repr(source: linkLocal, destination: destination, nextHeader: .icmpv6, payloadLength: advertisement.length,
                 hopLimit: 255).emit(into: reply.suffix(from: UntaggedField.headerLength))
        advertisement.emit(into: reply.suffix(from: UntaggedField.ipv6Payload), pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
            source: linkLocal, destination: destination, protocol: .icmpv6, length: advertisement.length))
        return UntaggedField.ipv6Payload + advertisement.length
    }

    private mutating func malformed() -> Verdict {
        counters.malformed += 1
        return .consumed
    }
}
