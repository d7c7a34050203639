// Segmentation: cutting a GSO super-frame into wire-size frames for a port that cannot take it.
//
// The per-egress "mismatch datapath" of netmap's netmap_offloadings.c and OVS dp-packet-gso.c:
// validate the virtio-net header against the frame, then emit each segment with its own IPv4
// total length, id and header checksum (or IPv6 payload length), TCP sequence number and flags
// (FIN/PSH on the last segment only, CWR on the first only) or UDP length, and a full L4 checksum.
// docs/PROTOCOLS.md §1.7 has the algorithm and its sources.

/// How a GSO super-frame is cut; computed once, used for every segment.
public struct SegmentationPlan: Equatable, Sendable {
    /// Offset of the IP header (14, or 18 with one VLAN tag, 22 with two).
    public var l3Offset: Int
    /// Offset of the TCP/UDP header (csum_start, recomputed from the headers, not trusted).
    public var l4Offset: Int
    /// Bytes of all headers (Ethernet + IP + extension headers + TCP/UDP), copied into every segment.
    public var headerLength: Int
    /// Payload bytes per segment (the last may be shorter).
    public var segmentPayload: Int
    /// Number of segments.
    public var count: Int
    public var isIPv6: Bool
    public var isUDP: Bool

    public init(l3Offset: Int, l4Offset: Int, headerLength: Int, segmentPayload: Int, count: Int, isIPv6: Bool, isUDP: Bool) {
        self.l3Offset = l3Offset; self.l4Offset = l4Offset; self.headerLength = headerLength
        self.segmentPayload = segmentPayload; self.count = count; self.isIPv6 = isIPv6; self.isUDP = isUDP
    }

    /// Bytes of segment `i` on the wire.
    @inlinable
    public func segmentLength(_ i: Int, frameLength: Int) -> Int {
        let payload = frameLength - headerLength
        return headerLength + min(segmentPayload, payload - i * segmentPayload)
    }
}

/// Why a frame cannot be segmented; the caller drops it and counts the reason.
public enum SegmentationError: Error, Equatable, Sendable {
    /// Header fields that do not fit the frame or contradict it (gso_size 0, csum offsets outside
    /// the frame, headers past the end, gso type not matching the IP version or L4 protocol).
    case badHeader
    /// A gso type switchd does not segment (UFO, tunnels).
    case unsupported
    /// A UDP segment of gso_size bytes does not fit the egress MTU.
    case tooBig
}

public enum Segmentation {
    /// Plans the cut of `frame` described by `header` (a GSO header: TCPv4, TCPv6 or UDP_L4) for an
    /// egress whose MTU (IP packet size) is `mtu`. TCP segments carry min(gso_size, mtu - IP and
    /// TCP headers) payload bytes; UDP segments exactly gso_size (else `.tooBig`).
    public static func plan(frame: UnsafeRawBufferPointer, header: VirtioNetHeader, mtu: Int) -> Result<SegmentationPlan, SegmentationError> {
        // Checks, in order: the gso type (TCPv4 1, TCPv6 4, UDP_L4 5, optionally | ECN 0x80; anything
        // else, UFO 3 included, is `.unsupported`); gso_size ≠ 0 and hdr_len within the frame; the
        // frame's headers (`FrameLayers.locate`: the IP length field must end exactly at the end of
        // the frame, or be 0 for a packet too long for it); the IP version and L4 protocol against the
        // gso type; csum_start/csum_offset either both 0 or naming exactly the TCP (16) / UDP (6)
        // checksum field. hdr_len is a hint (virtio 1.x §5.1.6) and is recomputed from the headers.
        let wantsUDP: Bool
        let wantsIPv6: Bool?
        switch header.gsoType & ~VirtioNetHeader.gsoECN {
        case VirtioNetHeader.gsoTCPv4: wantsUDP = false; wantsIPv6 = false
        case VirtioNetHeader.gsoTCPv6: wantsUDP = false; wantsIPv6 = true
        case VirtioNetHeader.gsoUDPL4: wantsUDP = true; wantsIPv6 = nil
        default: return .failure(.unsupported)
        }
        guard header.gsoSize != 0, Int(header.headerLength) <= frame.count else { return .failure(.badHeader) }

        let layers: FrameLayers
        switch FrameLayers.locate(frame) {
        case .transport(let found): layers = found
        case .unsupportedExtension: return .failure(.unsupported)
        case .malformed, .notIP, .otherTransport: return .failure(.badHeader)
        }
        guard layers.ipEnd == frame.count, layers.isUDP == wantsUDP,
              wantsIPv6 == nil || wantsIPv6 == layers.isIPv6 else { return .failure(.badHeader) }
        let start = Int(header.checksumStart), offset = Int(header.checksumOffset)
        guard (start == 0 && offset == 0)
                || (start == layers.l4Offset && offset == layers.checksumFieldOffset) else { return .failure(.badHeader) }

        // An IP packet of a segment must fit the MTU and its own length field.
        let ipHeaders = layers.headerLength - layers.l3Offset
        let room = layers.ipLengthLimit(mtu: mtu) - ipHeaders
        let payload = frame.count - layers.headerLength
        var segmentPayload = Int(header.gsoSize)
        if layers.isUDP {
            // USO cuts at exactly gso_size (the receiver sees datagram boundaries): never smaller.
            guard min(segmentPayload, payload) <= room else { return .failure(.tooBig) }
        } else {
            guard min(1, payload) <= room else { return .failure(.tooBig) }
            segmentPayload = max(1, min(segmentPayload, room))
        }
        // A frame with no payload, or one that fits, is a single complete frame.
        let count = payload == 0 ? 1 : (payload + segmentPayload - 1) / segmentPayload
        return .success(SegmentationPlan(l3Offset: layers.l3Offset, l4Offset: layers.l4Offset,
                                         headerLength: layers.headerLength, segmentPayload: segmentPayload,
                                         count: count, isIPv6: layers.isIPv6, isUDP: layers.isUDP))
    }

    /// Writes segment `index` of `frame` into `out` (at least `plan.segmentLength(index, frameLength:)`
    /// bytes) with complete headers and checksums; returns its length.
    public static func emitSegment(_ index: Int, of frame: UnsafeRawBufferPointer, plan: SegmentationPlan,
                                   into out: UnsafeMutableRawPointer) -> Int {
        // Returns 0, writing nothing, when `index` or `plan` do not fit `frame` (a plan made for
        // another frame); a plan from `plan(frame:header:mtu:)` for this frame always fits.
        let l3 = plan.l3Offset, l4 = plan.l4Offset, headerLength = plan.headerLength, size = plan.segmentPayload
        let l4HeaderLength = plan.isUDP ? UDPField.headerLength : TCPField.minimumLength
        // Ordered so that no subtraction can overflow, whatever the plan holds.
        guard let base = frame.baseAddress, index >= 0, index < plan.count, size >= 1,
              headerLength >= 0, headerLength <= frame.count,
              l4 >= 0, l4 <= headerLength - l4HeaderLength,
              l3 >= EthernetField.untaggedLength, l3 <= l4 - (plan.isIPv6 ? IPv6Field.length : IPv4Field.minimumLength),
              index <= (frame.count - headerLength) / size else { return 0 }
        let payloadStart = headerLength + index * size
        let payloadLength = min(size, frame.count - payloadStart)
        let length = headerLength + payloadLength

        out.copyMemory(from: base, byteCount: headerLength)
        (out + headerLength).copyMemory(from: base + payloadStart, byteCount: payloadLength)
        let segment = UnsafeMutableRawBufferPointer(start: out, count: length)
        let l4Length = length - l4
        let transport: IPProtocol = plan.isUDP ? .udp : .tcp

        // §1.7 step 2: the IP length fields, the IPv4 id and header checksum.
        let pseudoHeaderSum: UInt16
        if plan.isIPv6 {
            // Payload Length counts the extension headers too (RFC 8200 §3).
            segment.setBE16(UInt16(truncatingIfNeeded: length - l3 - IPv6Field.length), l3 + IPv6Field.payloadLength)
            let ip = IPv6Header(unchecked: segment.readOnly.slice(l3..<l4))
            pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                               protocol: transport, length: l4Length)
        } else {
            let ip = MutableIPv4Header(emptyPacket: segment.slice(l3..<l4))
            ip.totalLength = UInt16(truncatingIfNeeded: length - l3)
            ip.identification = ip.identification &+ UInt16(truncatingIfNeeded: index)
            ip.headerChecksum = 0
            // Over l3..<l4, the header length the plan was made with (RFC 791 §3.1).
            ip.headerChecksum = InternetChecksum.checksum(segment.readOnly.slice(l3..<l4))
            pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                               protocol: transport, length: l4Length)
        }

        // §1.7 steps 3 and 4: TCP sequence number and flags, or UDP length; a full checksum.
        if plan.isUDP {
            let udp = MutableUDPHeader(emptyDatagram: segment.suffix(from: l4))
            udp.length = UInt16(truncatingIfNeeded: l4Length)
            udp.fillChecksum(pseudoHeaderSum: pseudoHeaderSum)
        } else {
            let tcp = MutableTCPHeader(emptySegment: segment.suffix(from: l4))
            tcp.sequenceNumber = tcp.sequenceNumber &+ UInt32(truncatingIfNeeded: index &* size)
            var flags = tcp.flags
            // Linux tcp_gso_segment: FIN and PSH stay on the last segment, CWR on the first.
            if index != plan.count - 1 { flags.remove([.fin, .psh]) }
            if index != 0 { flags.remove(.cwr) }
            tcp.flags = flags
            tcp.fillChecksum(pseudoHeaderSum: pseudoHeaderSum)
        }
        return length
    }

    /// For a frame from a header-less offload peer (krunkit `offloading=on`, the offload sockets):
    /// the header that describes it. IPv4/IPv6 TCP or UDP frames get NEEDS_CSUM with csum_start and
    /// csum_offset, and their checksum field is rewritten to the pseudo-header sum (what the peer
    /// sent may be partial or complete, so it is recomputed from scratch); TCP frames longer than
    /// `mtu` + Ethernet header also get gso_type TCPv4/TCPv6, hdr_len and gso_size = mtu - IP and
    /// TCP headers. Other frames get `VirtioNetHeader.none`; a frame whose headers are truncated or
    /// inconsistent returns nil.
    public static func describeHeaderless(frame: UnsafeMutableRawBufferPointer, mtu: Int) -> VirtioNetHeader? {
        // "Other" includes IP fragments, protocols other than TCP and UDP, and IPv6 packets whose
        // pseudo-header cannot be known from the fixed header (a Routing header with Segments Left,
        // AH). UDP frames longer than the MTU keep gso none: a datagram cannot be cut, the caller
        // decides. Bytes after the IP packet are accepted only as the Ethernet padding of a
        // minimum-size frame (60 bytes plus tags), and are zeroed so that completing the checksum over
        // the rest of the frame is right. The gso ECN bit is set when the TCP header has CWR (as Linux
        // sets SKB_GSO_TCP_ECN). Nil as well when the headers alone exceed `mtu` for a frame that
        // needs cutting.
        let layers: FrameLayers
        switch FrameLayers.locate(frame.readOnly) {
        case .transport(let found): layers = found
        case .notIP, .otherTransport, .unsupportedExtension: return VirtioNetHeader.none
        case .malformed: return nil
        }
        guard layers.headerLength <= Int(UInt16.max) else { return nil }
        if layers.ipEnd != frame.count {
            guard frame.count <= minimumFrameLength + (layers.l3Offset - EthernetField.untaggedLength) else { return nil }
            frame.suffix(from: layers.ipEnd).initializeMemory(as: UInt8.self, repeating: 0)
        }
        let l4Length = layers.ipEnd - layers.l4Offset
        if layers.isUDP {
            guard Int(frame.readOnly.be16(layers.l4Offset + UDPField.length)) == l4Length else { return nil }
        }

        let transport: IPProtocol = layers.isUDP ? .udp : .tcp
        let pseudoHeaderSum: UInt16
        if layers.isIPv6 {
            let ip = IPv6Header(unchecked: frame.readOnly.slice(layers.l3Offset..<layers.l4Offset))
            pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                               protocol: transport, length: l4Length)
        } else {
            let ip = IPv4Header(unchecked: frame.readOnly.slice(layers.l3Offset..<layers.l4Offset))
            pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                               protocol: transport, length: l4Length)
        }
        frame.setBE16(pseudoHeaderSum, layers.l4Offset + layers.checksumFieldOffset)
        var header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                     checksumStart: UInt16(layers.l4Offset),
                                     checksumOffset: UInt16(layers.checksumFieldOffset))

        if !layers.isUDP && frame.count - layers.l3Offset > mtu {
            let segmentPayload = layers.ipLengthLimit(mtu: mtu) - (layers.headerLength - layers.l3Offset)
            guard segmentPayload >= 1 else { return nil }
            let cwr = TCPFlags(rawValue: frame.readOnly.byte(layers.l4Offset + TCPField.flags)).contains(.cwr)
            header.gsoType = (layers.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4)
                | (cwr ? VirtioNetHeader.gsoECN : 0)
            header.headerLength = UInt16(layers.headerLength)
            header.gsoSize = UInt16(min(segmentPayload, Int(UInt16.max)))
        }
        return header
    }

    /// The shortest Ethernet frame without FCS (IEEE 802.3 §4.4.2, minFrameSize 64 with FCS).
    static let minimumFrameLength = 60
}

/// Where the layers of an Ethernet/IP/TCP-or-UDP frame start, found and validated once.
struct FrameLayers {
    /// Offset of the IP header.
    var l3Offset: Int
    /// Offset of the TCP/UDP header.
    var l4Offset: Int
    /// Offset of the first payload byte (after the TCP header with options, or the UDP header).
    var headerLength: Int
    /// Offset just past the IP packet as its length field says (the frame's end for a 0 field).
    var ipEnd: Int
    var isIPv6: Bool
    var isUDP: Bool

    /// Offset of the checksum field within the L4 header (RFC 9293 §3.1, RFC 768).
    var checksumFieldOffset: Int { isUDP ? UDPField.checksum : TCPField.checksum }

    /// The largest IP packet the length field can describe: Total Length 65535 (RFC 791), or
    /// 40 + Payload Length 65535 (RFC 8200).
    var maximumIPLength: Int { isIPv6 ? IPv6Field.length + 0xFFFF : 0xFFFF }

    /// The longest IP packet a segment may be: the MTU, within what the length field can say
    /// (and at least 0, whatever `mtu` holds).
    func ipLengthLimit(mtu: Int) -> Int { max(0, min(mtu, maximumIPLength)) }

    /// What `locate` found.
    enum Located {
        case transport(FrameLayers)
        /// Neither IPv4 nor IPv6.
        case notIP
        /// An IP fragment, or a protocol other than TCP and UDP.
        case otherTransport
        /// IPv6 with a Routing header that has Segments Left (the pseudo-header destination is
        /// the final one, RFC 8200 §8.1) or an Authentication Header (which covers the payload).
        case unsupportedExtension
        /// Truncated or contradictory headers.
        case malformed
    }

    /// Walks Ethernet (up to two tags), IPv4 or IPv6 (hop-by-hop and destination options
    /// headers; RFC 8200 §4) and the TCP or UDP header. The IP length field may be shorter than
    /// the frame (the caller decides about trailing bytes) but not longer; a field of 0 stands
    /// for a packet longer than it can say (Linux BIG TCP) and is taken only then.
    static func locate(_ frame: UnsafeRawBufferPointer) -> Located {
        guard let ethernet = EthernetFrame(validating: frame) else { return .malformed }
        let l3 = ethernet.headerLength
        let available = frame.count - l3
        let ipLength: Int, l4: Int, transport: IPProtocol, isIPv6: Bool
        switch ethernet.etherType {
        case .ipv4:
            guard available >= IPv4Field.minimumLength else { return .malformed }
            let ip = IPv4Header(unchecked: frame.suffix(from: l3))
            let ipHeaderLength = ip.headerLength
            guard ip.version == 4, ipHeaderLength >= IPv4Field.minimumLength, ipHeaderLength <= available else {
                return .malformed
            }
            let declared = Int(ip.totalLength)
            if declared == 0 && available > 0xFFFF {
                ipLength = available
            } else {
                guard declared >= ipHeaderLength, declared <= available else { return .malformed }
                ipLength = declared
            }
            if ip.isFragment { return .otherTransport }
            l4 = l3 + ipHeaderLength
            transport = ip.protocol
            isIPv6 = false
        case .ipv6:
            guard available >= IPv6Field.length else { return .malformed }
            let fixed = IPv6Header(unchecked: frame.suffix(from: l3))
            guard fixed.version == 6 else { return .malformed }
            let declared = Int(fixed.payloadLength)
            if declared == 0 && available - IPv6Field.length > 0xFFFF {
                ipLength = available
            } else {
                guard IPv6Field.length + declared <= available else { return .malformed }
                ipLength = IPv6Field.length + declared
            }
            let ip = IPv6Header(unchecked: frame.slice(l3..<l3 + ipLength))
            var next = ip.nextHeader
            var offset = IPv6Field.length
            var routed = false
            // The same walk as IPv6Header.upperLayer(), which does not say which headers it passed.
            walk: for index in 0...IPv6Field.maximumExtensionHeaders {
                switch next {
                case .hopByHop, .ipv6DestinationOptions, .ipv6Route:
                    guard next != .hopByHop || index == 0, index < IPv6Field.maximumExtensionHeaders,
                          offset + 8 <= ipLength else { return .malformed }
                    let length = (Int(ip.bytes.byte(offset + 1)) + 1) * 8
                    guard offset + length <= ipLength else { return .malformed }
                    // Segments Left, RFC 8200 §4.4.
                    if next == .ipv6Route && ip.bytes.byte(offset + 3) != 0 { routed = true }
                    next = IPProtocol(rawValue: ip.bytes.byte(offset))
                    offset += length
                case .authenticationHeader:
                    return .unsupportedExtension
                default:
                    break walk
                }
            }
            guard next == .tcp || next == .udp else { return .otherTransport }
            if routed { return .unsupportedExtension }
            l4 = l3 + offset
            transport = next
            isIPv6 = true
        default:
            return .notIP
        }

        let ipEnd = l3 + ipLength
        let headerLength: Int
        switch transport {
        case .tcp:
            guard l4 + TCPField.minimumLength <= ipEnd else { return .malformed }
            let tcpHeaderLength = Int(frame.byte(l4 + TCPField.dataOffset) >> 4) * 4
            guard tcpHeaderLength >= TCPField.minimumLength, l4 + tcpHeaderLength <= ipEnd else { return .malformed }
            headerLength = l4 + tcpHeaderLength
        case .udp:
            guard l4 + UDPField.headerLength <= ipEnd else { return .malformed }
            headerLength = l4 + UDPField.headerLength
        default:
            return .otherTransport
        }
        return .transport(FrameLayers(l3Offset: l3, l4Offset: l4, headerLength: headerLength, ipEnd: ipEnd,
                                      isIPv6: isIPv6, isUDP: transport == .udp))
    }
}
