// NDPResponder: answers Neighbor Solicitations for the gateway's link-local and ULA addresses (RFC 4861 §7.2).
//
// It runs on the forwarding thread for every multicast frame and every frame to the gateway MAC:
// a frame is looked at only when it is untagged IPv6 to the gateway MAC or to the solicited-node
// group MAC of one of its addresses, carries ICMPv6 directly after the fixed header and has type
// 135; it is mine only when its Target Address is a gateway address. So a solicitation for a guest
// is never dropped here, even one that is malformed. Nothing is allocated. Policy:
// - A solicitation for a gateway address is validated as RFC 4861 §7.1.1 says (hop limit 255,
//   ICMPv6 checksum, code 0, at least 24 bytes, options with non-zero length, an unspecified
//   source only to the solicited-node group and without a link-layer option, a destination that
//   is the target or its solicited-node group); a failure consumes it and counts `malformed`.
// - A valid one from a unicast source gets a Neighbor Advertisement with R, S and O set (§7.2.4)
//   and the Target Link-Layer Address option, from the target address to the solicitor, sent to
//   the MAC in its Source Link-Layer Address option (else the frame's source MAC).
// - A duplicate address detection probe (source ::) for a gateway address means a guest wants the
//   gateway's address: it gets the defence RFC 4862 §5.4.3 expects, an unsolicited advertisement
//   (R and O, not S) to all-nodes (RFC 4861 §7.2.4), counted in `duplicateAddressProbesAnswered`.
// - ND messages behind IPv6 extension headers are not mine (no stack sends them; RFC 6980 forbids
//   fragmented ND outright). Nothing at all is mine when the network has no IPv6.
import Proto

/// Answers Neighbor Solicitations for the gateway's IPv6 addresses.
public struct NDPResponder: Sendable {
    /// What the responder has done since it was created.
    public struct Counters: Equatable, Sendable {
        /// Solicitations from a unicast source answered.
        public var solicitationsAnswered: UInt64 = 0
        /// Duplicate address detection probes (source ::) for a gateway address answered.
        public var duplicateAddressProbesAnswered: UInt64 = 0
        /// Solicitations for a gateway address consumed because they failed RFC 4861 §7.1.1.
        public var malformed: UInt64 = 0
        /// Valid solicitations consumed without an answer (reply buffer too small).
        public var dropped: UInt64 = 0

        public init() {}
    }

    /// Bytes of an advertisement frame: Ethernet, IPv6, 24-byte NA and the 8-byte link-layer option.
    public static let replyLength = 14 + 40 + 32

    /// The gateway MAC.
    public let mac: MACAddress
    /// The gateway's link-local address (modified EUI-64 of `mac`).
    public let linkLocal: IPv6Address
    /// The gateway's ULA address, prefix::1; nil when the network has no IPv6 (then nothing is mine).
    public let global: IPv6Address?
    /// Counters since creation.
    public private(set) var counters = Counters()

    private let linkLocalGroupMAC: MACAddress
    private let globalGroupMAC: MACAddress

    /// A responder answering as `gateway`.
    public init(gateway: GatewayIdentity) {
        mac = gateway.mac
        linkLocal = gateway.linkLocal
        global = gateway.ipv6Address
        linkLocalGroupMAC = linkLocal.solicitedNodeMulticast.multicastMAC
        globalGroupMAC = (global ?? linkLocal).solicitedNodeMulticast.multicastMAC
    }

    /// Answers `frame` when it is a Neighbor Solicitation for a gateway address, writing the
    /// advertisement at the start of `reply` (which must not overlap `frame`).
    public mutating func respond(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) -> Verdict {
        guard let global, frame.count > UntaggedField.ipv6Payload,
              frame.be16(UntaggedField.etherType) == EtherType.ipv6.rawValue else { return .notMine }
        let destinationMAC = frame.macAddress(UntaggedField.destination)
        guard destinationMAC == mac || destinationMAC == linkLocalGroupMAC || destinationMAC == globalGroupMAC,
              frame.byte(UntaggedField.ipv6NextHeader) == IPProtocol.icmpv6.rawValue,
              frame.byte(UntaggedField.ipv6Payload) == ICMPv6Type.neighborSolicitation.rawValue
        else { return .notMine }
        // The Target Address sits 8 bytes into the message; a message too short to hold it is a
        // truncated solicitation, and it came to a gateway MAC: drop it.
        let targetOffset = UntaggedField.ipv6Payload + 8
        guard frame.count >= targetOffset + 16 else { return malformed() }
        let target = frame.ipv6Address(targetOffset)
        guard target == linkLocal || target == global else { return .notMine }

        guard let ip = IPv6Header(validating: frame.suffix(from: UntaggedField.headerLength)),
              ip.hopLimit == 255,
              let message = ICMPv6Message(validating: ip.payload),
              message.isChecksumValid(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
                  source: ip.source, destination: ip.destination, protocol: .icmpv6, length: message.bytes.count)),
              let solicitation = NeighborRepr.parse(message)
        else { return malformed() }
        let source = ip.source, destination = ip.destination
        let toGroup = destination == target.solicitedNodeMulticast

        let replyDestination: IPv6Address, replyMAC: MACAddress, flags: NeighborAdvertisementFlags
        if source.isUnspecified {
            // RFC 4861 §7.1.1: a DAD probe goes to the solicited-node group and has no link-layer option.
            guard toGroup, solicitation.linkLayerAddress == nil else { return malformed() }
            replyDestination = .allNodes
            replyMAC = IPv6Address.allNodes.multicastMAC
            flags = [.router, .override]
        } else {
            let senderMAC = solicitation.linkLayerAddress ?? frame.macAddress(UntaggedField.source)
            guard toGroup || destination == target, !source.isMulticast, !senderMAC.isMulticast else { return malformed() }
            replyDestination = source
            replyMAC = senderMAC
            flags = [.router, .solicited, .override]
        }
        guard reply.count >= Self.replyLength else {
            counters.dropped += 1
            return .consumed
        }
        let advertisement = NeighborRepr(type: .neighborAdvertisement, flags: flags, targetAddress: target,
                                         linkLayerAddress: mac)
        EthernetRepr(destination: replyMAC, source: mac, etherType: .ipv6).emit(into: reply)
        IPv6Repr(source: target, destination: replyDestination, nextHeader: .icmpv6, payloadLength: advertisement.length,
                 hopLimit: 255).emit(into: reply.suffix(from: UntaggedField.headerLength))
        advertisement.emit(into: reply.suffix(from: UntaggedField.ipv6Payload), pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
            source: target, destination: replyDestination, protocol: .icmpv6, length: advertisement.length))
        if source.isUnspecified { counters.duplicateAddressProbesAnswered += 1 } else { counters.solicitationsAnswered += 1 }
        return .reply(length: Self.replyLength)
    }

    private mutating func malformed() -> Verdict {
        counters.malformed += 1
        return .consumed
    }
}
