// ARPResponder: answers ARP requests for the gateway's IPv4 address with the gateway MAC (RFC 826).
//
// It runs on the forwarding thread for every broadcast frame and every frame to the gateway MAC,
// so it decides "not mine" from the EtherType and the destination MAC before reading the packet,
// and it allocates nothing. Policy:
// - A request (broadcast or unicast to the gateway MAC) whose target is the gateway address is
//   answered with a reply to the requester's MAC (ar$sha), as RFC 826 says.
// - An ARP probe for the gateway address (sender address 0.0.0.0, RFC 5227 §2.1.1) is answered
//   too, as Linux answers probes for its own addresses: the prober learns that the address is
//   taken, which is the conflict RFC 5227 §2.1.1 wants it to see. Counted in `probesAnswered`.
// - Gratuitous ARP (sender address = target address, RFC 5227 §3), replies and requests for other
//   addresses are not mine: forwarding floods them. A packet from another MAC whose sender address
//   is the gateway's is counted in `conflicts` (a guest configured with the gateway address).
// - ARP frames that are not Ethernet/IPv4 ARP or are shorter than 42 bytes are consumed and
//   counted in `malformed`: no receiver can use them. VLAN-tagged frames are not mine (the
//   gateway lives on the untagged network).
import Proto

/// Answers ARP for the gateway's IPv4 address.
public struct ARPResponder: Sendable {
    /// What the responder has done since it was created.
    public struct Counters: Equatable, Sendable {
        /// Requests for the gateway address answered.
        public var requestsAnswered: UInt64 = 0
        /// RFC 5227 probes (sender 0.0.0.0) for the gateway address answered.
        public var probesAnswered: UInt64 = 0
        /// ARP packets from another MAC claiming the gateway address as their sender address.
        public var conflicts: UInt64 = 0
        /// ARP frames consumed because they were truncated or not Ethernet/IPv4 ARP.
        public var malformed: UInt64 = 0
        /// Requests for the gateway consumed without a reply (bad sender MAC, reply buffer too small).
        public var dropped: UInt64 = 0

        public init() {}
    }

    /// Bytes of the reply frame: Ethernet header and the 28-byte packet, unpadded.
    public static let replyLength = 14 + ARPRepr.length

    /// The gateway MAC the replies carry.
    public let mac: MACAddress
    /// The gateway's IPv4 address.
    public let address: IPv4Address
    /// Counters since creation.
    public private(set) var counters = Counters()

    /// A responder answering as `gateway`.
    public init(gateway: GatewayIdentity) {
        mac = gateway.mac
        address = gateway.ipv4
    }

    /// Answers `frame` when it is an ARP request for the gateway address, writing the reply frame
    /// at the start of `reply` (which must not overlap `frame`).
    public mutating func respond(to frame: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) -> Verdict {
        guard frame.count >= UntaggedField.headerLength,
              frame.be16(UntaggedField.etherType) == EtherType.arp.rawValue else { return .notMine }
        let destination = frame.macAddress(UntaggedField.destination)
        guard destination.isBroadcast || destination == mac else { return .notMine }
        guard let packet = ARPPacket(validating: frame.suffix(from: UntaggedField.headerLength)) else {
            counters.malformed += 1
            return .consumed
        }
        let senderMAC = packet.senderHardwareAddress, senderAddress = packet.senderProtocolAddress
        if senderAddress == address && senderMAC != mac { counters.conflicts += 1 }
        guard packet.operation == .request, packet.targetProtocolAddress == address, senderAddress != address,
              senderMAC != mac else { return .notMine }
        guard !senderMAC.isMulticast, !senderMAC.isZero, reply.count >= Self.replyLength else {
            counters.dropped += 1
            return .consumed
        }
        EthernetRepr(destination: senderMAC, source: mac, etherType: .arp).emit(into: reply)
        ARPRepr(operation: .reply, senderHardwareAddress: mac, senderProtocolAddress: address,
                targetHardwareAddress: senderMAC, targetProtocolAddress: senderAddress)
            .emit(into: reply.suffix(from: UntaggedField.headerLength))
        if senderAddress.rawValue == 0 { counters.probesAnswered += 1 } else { counters.requestsAnswered += 1 }
        return .reply(length: Self.replyLength)
    }
}
