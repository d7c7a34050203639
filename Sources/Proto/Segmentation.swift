// Segmentation: cutting a GSO super-frame into wire-size frames for a port that cannot take it.
//
// The per-egress "mismatch datapath" of netmap's netmap_offloadings.c and OVS dp-packet-gso.c:
// validate the virtio-net header against the frame, then emit each segment with its own IPv4
// total length, id and header checksum (or IPv6 payload length), TCP sequence number and flags
// (FIN/PSH on the last segment only, CWR on the first only) or UDP length, and a full L4 checksum.
// PROTOCOLS.md §1.7 has the algorithm and its sources.

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
        fatalError("unimplemented")
    }

    /// Writes segment `index` of `frame` into `out` (at least `plan.segmentLength(index, frameLength:)`
    /// bytes) with complete headers and checksums; returns its length.
    public static func emitSegment(_ index: Int, of frame: UnsafeRawBufferPointer, plan: SegmentationPlan,
                                   into out: UnsafeMutableRawPointer) -> Int {
        fatalError("unimplemented")
    }

    /// For a frame from a header-less offload peer (krunkit `offloading=on`, the offload sockets):
    /// the header that describes it. IPv4/IPv6 TCP or UDP frames get NEEDS_CSUM with csum_start and
    /// csum_offset, and their checksum field is rewritten to the pseudo-header sum (what the peer
    /// sent may be partial or complete, so it is recomputed from scratch); TCP frames longer than
    /// `mtu` + Ethernet header also get gso_type TCPv4/TCPv6, hdr_len and gso_size = mtu - IP and
    /// TCP headers. Other frames get `VirtioNetHeader.none`; a frame whose headers are truncated or
    /// inconsistent returns nil.
    public static func describeHeaderless(frame: UnsafeMutableRawBufferPointer, mtu: Int) -> VirtioNetHeader? {
        fatalError("unimplemented")
    }
}
