// VXLAN (RFC 7348): the 8-byte header, the decapsulation check, and the flow hash that picks the
// outer UDP source port.
//
// Wire (RFC 7348 §5): outer IP | UDP (destination 4789) | flags (I bit 0x08), 24 reserved bits,
// VNI (24 bits), 8 reserved bits | the inner Ethernet frame without FCS. The outer UDP source port
// is a hash of the inner flow so that underlay ECMP and RSS spread tunnels (§5, "Source Port"); the
// receiver accepts any source port. IPv4 UDP checksum 0 is allowed (RFC 7348 §5) and is what
// Linux's vxlan sends by default (`udpcsum` off), so a receiver must accept it.

/// Field offsets of the VXLAN header (RFC 7348 §5, "VXLAN Header").
@usableFromInline
enum VXLANField {
    @usableFromInline static let flags = 0
    /// The VNI's three bytes, then one reserved byte: read as a 32-bit word, shifted right by 8.
    @usableFromInline static let vniWord = 4
    @usableFromInline static let headerLength = 8
}

/// A read-only view of a VXLAN header: the first 8 bytes of a VXLAN UDP payload.
@frozen
public struct VXLANHeader {
    /// Size of the header.
    public static let length = VXLANField.headerLength
    /// The I flag (RFC 7348 §5): set for a valid VNI. The other seven flag bits are reserved.
    public static let vniFlag: UInt8 = 0x08
    /// The IANA port for VXLAN (RFC 7348 §5). Linux's `vxlan` defaults to 8472 unless given `dstport 4789`.
    public static let ianaPort: UInt16 = 4789
    /// The largest VNI (24 bits).
    public static let maxVNI: UInt32 = 0xFF_FFFF
    /// Bytes a VXLAN-encapsulated frame adds to the inner IP packet: inner Ethernet 14 + VXLAN 8 +
    /// UDP 8 + outer IPv4 20 (RFC 7348 §4; no outer VLAN tag).
    public static let overheadIPv4 = 50
    /// The same over IPv6: outer IPv6 header 40.
    public static let overheadIPv6 = 70

    /// The header's 8 bytes.
    public let bytes: UnsafeRawBufferPointer

    /// A view of the first 8 bytes of `payload`, or nil when it is shorter.
    @inlinable
    public init?(validating payload: UnsafeRawBufferPointer) {
        guard payload.count >= VXLANField.headerLength else { return nil }
        bytes = payload.slice(0..<VXLANField.headerLength)
    }

    /// Flags (the I bit and seven reserved bits).
    @inlinable public var flags: UInt8 { bytes.byte(VXLANField.flags) }
    /// True when the I flag is set, so the VNI is valid.
    @inlinable public var hasVNI: Bool { flags & Self.vniFlag != 0 }
    /// VXLAN Network Identifier (24 bits).
    @inlinable public var vni: UInt32 { bytes.be32(VXLANField.vniWord) >> 8 }
}

/// Why a VXLAN datagram was not taken (counted per reason by the receiver).
public enum VXLANRefusal: Error, Equatable, Sendable {
    /// Shorter than the VXLAN header plus an inner Ethernet header.
    case short
    /// The I flag is clear: no valid VNI (RFC 7348 §5).
    case noVNIFlag
    /// Another network's VNI.
    case wrongVNI
}

/// The VXLAN encapsulation of one network: its VNI and UDP port.
@frozen
public struct VXLANEncapsulation: Equatable, Sendable {
    public let vni: UInt32
    /// The UDP destination port (4789 unless configured).
    public let port: UInt16

    /// `vni` is truncated to 24 bits.
    @inlinable
    public init(vni: UInt32, port: UInt16 = VXLANHeader.ianaPort) {
        self.vni = vni & VXLANHeader.maxVNI
        self.port = port
    }

    /// Writes only the VXLAN header (flags 0x08, reserved bits zero, the VNI) into the 8 bytes at `header`.
    @inlinable @inline(__always)
    public func emitHeader(into header: UnsafeMutableRawPointer) {
        header.storeBytes(of: (UInt32(VXLANHeader.vniFlag) << 24).bigEndian, toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: (vni << 8).bigEndian, toByteOffset: VXLANField.vniWord, as: UInt32.self)
    }

    /// Where the inner frame of a received VXLAN payload (the UDP data) starts, or why the payload
    /// is refused. Reserved bits are ignored on receipt (RFC 7348 §5).
    @inlinable @inline(__always)
    public func innerFrameOffset(payload: UnsafeRawBufferPointer) -> Result<Int, VXLANRefusal> {
        guard payload.count >= VXLANField.headerLength + EthernetField.untaggedLength,
              let header = VXLANHeader(validating: payload) else { return .failure(.short) }
        guard header.hasVNI else { return .failure(.noVNIFlag) }
        guard header.vni == vni else { return .failure(.wrongVNI) }
        return .success(VXLANField.headerLength)
    }
}

/// The flow hash of an inner frame: FNV-1a over its MAC addresses and EtherType and, for IPv4
/// and IPv6, the addresses, the protocol and (TCP, UDP, SCTP, not a later fragment) the ports. The
/// same flow always hashes the same, in every run and on every host (FNV1a.swift).
public enum VXLANFlow {
    /// The hash; frames too short for a field hash what they have (never reads past `frame`).
    @inlinable
    public static func hash(frame: UnsafeRawBufferPointer) -> UInt64 {
        var h = FNV1a()
        guard frame.count >= EthernetField.untaggedLength else {
            h.combine(contentsOf: frame)
            return h.value
        }
        h.combine(contentsOf: frame.slice(0..<12))
        var typeOffset = EthernetField.typeOrTPID
        var type = frame.be16(typeOffset)
        // Step over up to two VLAN tags (802.1ad, 802.1Q): the tags go into the hash with the type.
        var tags = 0
        while EtherType(rawValue: type).isVLANTag && tags < 2 && frame.count >= typeOffset + 8 {
            h.combine(contentsOf: frame.slice(typeOffset + 2..<typeOffset + 4))
            typeOffset += 4
            type = frame.be16(typeOffset)
            tags += 1
        }
        h.combine(UInt8(truncatingIfNeeded: type >> 8))
        h.combine(UInt8(truncatingIfNeeded: type))
        let ip = frame.suffix(from: typeOffset + 2)
        var transport: Int? = nil
        var proto: UInt8 = 0
        switch type {
        case EtherType.ipv4.rawValue:
            // RFC 791: IHL in 32-bit words; fragment offset and MF in bytes 6-7.
            guard ip.count >= 20, ip.byte(0) >> 4 == 4 else { return h.value }
            let headerLength = Int(ip.byte(0) & 0x0F) * 4
            proto = ip.byte(9)
            h.combine(contentsOf: ip.slice(12..<20))
            h.combine(proto)
            let fragmentOffset = ip.be16(6) & 0x1FFF
            if fragmentOffset == 0 && headerLength >= 20 { transport = headerLength }
        case EtherType.ipv6.rawValue:
            // RFC 8200 §3: the next header of the fixed header (extension headers are not walked:
            // their flows hash without ports, which is still stable per flow).
            guard ip.count >= 40, ip.byte(0) >> 4 == 6 else { return h.value }
            proto = ip.byte(6)
            h.combine(contentsOf: ip.slice(8..<40))
            h.combine(proto)
            transport = 40
        default:
            return h.value
        }
        // TCP 6, UDP 17, SCTP 132: source and destination ports are the first four bytes.
        if let offset = transport, proto == 6 || proto == 17 || proto == 132, ip.count >= offset + 4 {
            h.combine(contentsOf: ip.slice(offset..<offset + 4))
        }
        return h.value
    }
}
