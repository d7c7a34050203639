// GatewayFrames: reading the UDP/TCP a guest sends to the gateway, and writing the gateway's answers.
//
// Used by the services that speak IP from the gateway's addresses (DNS in `isolated` mode, the
// TCP reset for port 53): parse an untagged IPv4/IPv6 frame into endpoints, and emit Ethernet +
// IP + UDP (or TCP) frames with correct lengths and checksums.
import Proto

/// A guest's end of a UDP or TCP conversation with the gateway.
public struct GuestEndpoint: Hashable, Sendable {
    public var mac: MACAddress
    public var address: IPAddress
    public var port: UInt16
    public init(mac: MACAddress, address: IPAddress, port: UInt16) { self.mac = mac; self.address = address; self.port = port }
}

/// A transport segment found in a frame: who sent it, to which address and port, with what.
public struct InboundSegment {
    public var source: GuestEndpoint
    public var destination: IPAddress
    public var destinationPort: UInt16
    public var `protocol`: IPProtocol
    /// The UDP payload, or the TCP segment (header included) for TCP.
    public var payload: UnsafeRawBufferPointer
}

public enum GatewayFrames {
    /// The UDP datagram or TCP segment in an untagged IPv4 or IPv6 frame (no fragments, checksum
    /// not checked here); nil for anything else.
    public static func segment(in frame: UnsafeRawBufferPointer) -> InboundSegment? {
        guard let ethernet = EthernetFrame(validating: frame), ethernet.headerLength == 14 else { return nil }
        let mac = MACAddress(loading: frame.baseAddress! + 6)
        let l3 = ethernet.payload
        let source: IPAddress, destination: IPAddress, proto: IPProtocol, l4: UnsafeRawBufferPointer
        switch ethernet.etherType {
        case .ipv4:
            guard let ip = IPv4Header(validating: l3), !ip.isFragment else { return nil }
            source = .v4(ip.source); destination = .v4(ip.destination); proto = ip.protocol; l4 = ip.payload
        case .ipv6:
            guard let ip = IPv6Header(validating: l3), let upper = ip.upperLayer(), upper.fragment == nil else { return nil }
            source = .v6(ip.source); destination = .v6(ip.destination); proto = upper.protocol
            l4 = UnsafeRawBufferPointer(rebasing: ip.bytes[(ip.bytes.startIndex + upper.offset)...])
        default:
            return nil
        }
        switch proto {
        case .udp:
            guard let udp = UDPHeader(validating: l4) else { return nil }
            return InboundSegment(source: GuestEndpoint(mac: mac, address: source, port: udp.sourcePort),
                                  destination: destination, destinationPort: udp.destinationPort, protocol: .udp,
                                  payload: udp.payload)
        case .tcp:
            guard let tcp = TCPHeader(validating: l4) else { return nil }
            return InboundSegment(source: GuestEndpoint(mac: mac, address: source, port: tcp.sourcePort),
                                  destination: destination, destinationPort: tcp.destinationPort, protocol: .tcp,
                                  payload: l4)
        default:
            return nil
        }
    }

    /// Writes Ethernet + IP + UDP + `payload` from the gateway (`mac`, `address`, `port`) to
    /// `guest`; returns the frame length, or nil when it does not fit `out` or the address
    /// families differ.
    public static func udp(from mac: MACAddress, _ address: IPAddress, port: UInt16, to guest: GuestEndpoint,
                           payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        let l4Length = UDPRepr.headerLength + payload.count
        guard let (l3, sum) = ip(from: mac, address, to: guest, protocol: .udp, l4Length: l4Length, into: out) else { return nil }
        let l4 = UnsafeMutableRawBufferPointer(rebasing: out[l3..<(l3 + l4Length)])
        UnsafeMutableRawBufferPointer(rebasing: l4[UDPRepr.headerLength...]).copyMemory(from: payload)
        UDPRepr(sourcePort: port, destinationPort: guest.port).emit(into: l4, pseudoHeaderSum: sum)
        return l3 + l4Length
    }

    /// For a TCP segment to the gateway that opens a connection (SYN without ACK), writes the RST
    /// that refuses it (RFC 9293 §3.10.7.1: ACK = SEQ + segment length); nil for other segments.
    public static func reset(refusing segment: InboundSegment, from mac: MACAddress,
                             into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard segment.protocol == .tcp, let tcp = TCPHeader(validating: segment.payload),
              tcp.flags.contains(.syn), !tcp.flags.contains(.ack), !tcp.flags.contains(.rst) else { return nil }
        let length = 20  // a TCP header without options
        guard let (l3, sum) = ip(from: mac, segment.destination, to: segment.source, protocol: .tcp,
                                 l4Length: length, into: out) else { return nil }
        let seen = UInt32(truncatingIfNeeded: tcp.payload.count + 1)  // SYN counts as one
        TCPRepr(sourcePort: segment.destinationPort, destinationPort: segment.source.port, sequenceNumber: 0,
                acknowledgmentNumber: tcp.sequenceNumber &+ seen, flags: [.rst, .ack], window: 0)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[l3..<(l3 + length)]), pseudoHeaderSum: sum)
        return l3 + length
    }

    /// Writes the Ethernet and IP headers; returns the L4 offset and the pseudo-header sum.
    private static func ip(from mac: MACAddress, _ address: IPAddress, to guest: GuestEndpoint, protocol proto: IPProtocol,
                           l4Length: Int, into out: UnsafeMutableRawBufferPointer) -> (Int, UInt16)? {
        switch (address, guest.address) {
        case (.v4(let source), .v4(let destination)):
            let l3 = 14 + IPv4Repr.headerLength
            guard l3 + l4Length <= out.count, IPv4Repr.headerLength + l4Length <= 0xFFFF else { return nil }
            EthernetRepr(destination: guest.mac, source: mac, etherType: .ipv4).emit(into: out)
            IPv4Repr(source: source, destination: destination, protocol: proto, payloadLength: l4Length)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[14...]))
            return (l3, InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: proto,
                                                         length: l4Length))
        case (.v6(let source), .v6(let destination)):
            let l3 = 14 + IPv6Repr.headerLength
            guard l3 + l4Length <= out.count, l4Length <= 0xFFFF else { return nil }
            EthernetRepr(destination: guest.mac, source: mac, etherType: .ipv6).emit(into: out)
            IPv6Repr(source: source, destination: destination, nextHeader: proto, payloadLength: l4Length)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[14...]))
            return (l3, InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: proto,
                                                         length: l4Length))
        default:
            return nil
        }
    }
}
