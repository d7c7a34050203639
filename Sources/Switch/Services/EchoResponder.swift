// EchoResponder: the virtual gateway's ICMP and ICMPv6 echo replies (RFC 792, RFC 4443 §4.2), `isolated` mode only.
//
// It runs on the forwarding thread for every frame to the gateway MAC; a frame is mine only when
// it is untagged IPv4 or IPv6 to a gateway address carrying an echo request, which is decided from
// a few bytes before anything is validated. Nothing is allocated. Policy:
// - An echo request to the gateway IPv4 address, or to its link-local or ULA IPv6 address, is
//   answered from that address with the same identifier, sequence number and data; IPv4 replies
//   have TTL 64, identification 0 and DF (an atomic datagram, RFC 6864 §4.1); IPv6 replies have
//   hop limit 64 and no extension headers. IPv4 options (Record Route…) are not reflected.
// - A request that is truncated, has a bad IPv4 header or ICMP checksum, or comes from a multicast,
//   broadcast or unspecified source (RFC 1122 §3.2.2.6; RFC 4443 §4.2) is consumed and counted
//   in `malformed`; a fragment (nothing is reassembled) or a request whose reply does not fit the
//   reply buffer is consumed and counted in `dropped`.
// - Other ICMP types and other protocols to the gateway are not mine, and so is an IPv6 frame cut
//   before its ICMPv6 type (it could be anything; a cut Neighbor Solicitation is the NDP responder's). With `isolated` false (the
//   host stack owns the gateway address) nothing is mine.
import Proto

/// Answers ICMP echo requests to the gateway's addresses.
public struct EchoResponder: Sendable {
    /// What the responder has done since it was created.
    public struct Counters: Equatable, Sendable {
        /// ICMPv4 echo requests answered.
        public var ipv4Answered: UInt64 = 0
        /// ICMPv6 echo requests answered.
        public var ipv6Answered: UInt64 = 0
        /// Echo requests to the gateway consumed because they were truncated, had a bad checksum
        /// or an invalid source.
        public var malformed: UInt64 = 0
        /// Echo requests consumed without a reply: fragments, or replies larger than the buffer.
        public var dropped: UInt64 = 0

        public init() {}
    }

    /// True while the switch owns the gateway addresses (`isolated` mode); when false, nothing is mine.
    public var isolated: Bool
    /// The gateway MAC.
    public let mac: MACAddress
    /// The gateway's IPv4 address.
    public let ipv4: IPv4Address
    /// The gateway's IPv4 subnet (its broadcast address is not a valid source).
    public let subnet: IPv4Subnet
    /// The gateway's link-local address.
    public let linkLocal: IPv6Address
    /// The gateway's ULA address; nil when the network has no IPv6 (then IPv6 is never mine).
    public let global: IPv6Address?
    /// Counters since creation.
    public private(set) var counters = Counters()

    /// Reply TTL / hop limit.
    static let replyHopLimit: UInt8 = 64

    /// A responder answering as `gateway`, active when `isolated`.
    public init(gateway: GatewayIdentity, isolated: Bool = true) {
        self.isolated = isolated
        mac = gateway.mac
        ipv4 = gateway.ipv4
        subnet = gateway.subnet
        linkLocal = gateway.linkLocal
        global = gateway.ipv6Address
    }

    /// Answers `frame` when it is an echo request to a gateway address, writing the reply frame at
    /// the start of `reply` (which must not overlap `frame`).
    public mutating func respond(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) -> Verdict {
        guard isolated, frame.count >= UntaggedField.headerLength,
              frame.macAddress(UntaggedField.destination) == mac else { return .notMine }
        switch frame.be16(UntaggedField.etherType) {
        case EtherType.ipv4.rawValue: return respondIPv4(to: frame, into: reply)
        case EtherType.ipv6.rawValue: return respondIPv6(to: frame, into: reply)
        default: return .notMine
        }
    }

    private mutating func respondIPv4(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) -> Verdict {
        guard frame.count >= UntaggedField.ipv4Destination + 4,
              frame.byte(UntaggedField.ipv4Protocol) == IPProtocol.icmp.rawValue,
              frame.ipv4Address(UntaggedField.ipv4Destination) == ipv4 else { return .notMine }
        guard let ip = IPv4Header(validating: frame.suffix(from: UntaggedField.headerLength)), ip.isChecksumValid
        else { return count(malformed: true) }
        guard !ip.isFragment else { return count(malformed: false) }
        guard let request = ICMPv4Message(validating: ip.payload) else { return count(malformed: true) }
        guard request.type == .echoRequest else { return .notMine }
        let source = ip.source
        guard request.isChecksumValid, source.rawValue != 0, source.rawValue >> 28 < 0xE, source != subnet.broadcast,
              !frame.macAddress(UntaggedField.source).isMulticast else { return count(malformed: true) }
        let ipStart = UntaggedField.headerLength, icmpStart = ipStart + IPv4Repr.headerLength
        let length = icmpStart + request.bytes.count
        guard reply.count >= length else { return count(malformed: false) }

        EthernetRepr(destination: frame.macAddress(UntaggedField.source), source: mac, etherType: .ipv4).emit(into: reply)
        IPv4Repr(source: ipv4, destination: source, protocol: .icmp, payloadLength: request.bytes.count,
                 timeToLive: Self.replyHopLimit, identification: 0, dontFragment: true)
            .emit(into: reply.slice(ipStart..<length))
        let message = reply.slice(icmpStart..<length)
        message.copyMemory(from: request.bytes)
        guard let echo = MutableICMPv4Message(validating: message) else { return count(malformed: true) }
        echo.type = .echoReply
        echo.code = 0
        echo.fillChecksum()
        counters.ipv4Answered += 1
        return .reply(length: length)
    }

    private mutating func respondIPv6(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) -> Verdict {
        guard let global, frame.count >= UntaggedField.ipv6Payload else { return .notMine }
        let destination = frame.ipv6Address(UntaggedField.ipv6Destination)
        guard destination == linkLocal || destination == global else { return .notMine }
        // ICMPv6 right after the fixed header is the usual case: look at the type before judging
        // the rest, so a broken Neighbor Solicitation stays the NDP responder's.
        let direct = frame.byte(UntaggedField.ipv6NextHeader) == IPProtocol.icmpv6.rawValue
        if direct {
            guard frame.count > UntaggedField.ipv6Payload,
                  frame.byte(UntaggedField.ipv6Payload) == ICMPv6Type.echoRequest.rawValue else { return .notMine }
        }
        guard let ip = IPv6Header(validating: frame.suffix(from: UntaggedField.headerLength)),
              let upper = ip.upperLayer() else { return direct ? count(malformed: true) : .notMine }
        guard upper.protocol == .icmpv6 else { return .notMine }
        guard upper.fragment == nil else { return count(malformed: false) }
        guard let request = ICMPv6Message(validating: ip.bytes.suffix(from: upper.offset)) else { return count(malformed: true) }
        guard request.type == .echoRequest else { return .notMine }
        let source = ip.source
        guard request.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                  source: source, destination: destination, protocol: .icmpv6, length: request.bytes.count)),
              !source.isUnspecified, !source.isMulticast,
              !frame.macAddress(UntaggedField.source).isMulticast else { return count(malformed: true) }
        let icmpStart = UntaggedField.ipv6Payload, length = icmpStart + request.bytes.count
        guard reply.count >= length else { return count(malformed: false) }

        EthernetRepr(destination: frame.macAddress(UntaggedField.source), source: mac, etherType: .ipv6).emit(into: reply)
        IPv6Repr(source: destination, destination: source, nextHeader: .icmpv6, payloadLength: request.bytes.count,
                 hopLimit: Self.replyHopLimit).emit(into: reply.suffix(from: UntaggedField.headerLength))
        let message = reply.slice(icmpStart..<length)
        message.copyMemory(from: request.bytes)
        guard let echo = MutableICMPv6Message(validating: message) else { return count(malformed: true) }
        echo.type = .echoReply
        echo.code = 0
        echo.fillChecksum(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
            source: destination, destination: source, protocol: .icmpv6, length: request.bytes.count))
        counters.ipv6Answered += 1
        return .reply(length: length)
    }

    /// Consumes a request for the gateway that gets no reply, counting why.
    private mutating func count(malformed: Bool) -> Verdict {
        if malformed { counters.malformed += 1 } else { counters.dropped += 1 }
        return .consumed
    }
}
