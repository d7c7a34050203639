// VirtioNetHeader: the 12-byte virtio_net_hdr_v1 that TAP and AF_PACKET ports carry before each frame.
//
// Fields are little-endian (virtio 1.x §5.1.6; include/uapi/linux/virtio_net.h). Defined once here
// and round-trip tested, so no port reads them in host or network order by mistake.

/// Offload metadata of one frame: checksum to complete and segmentation to do.
@frozen
public struct VirtioNetHeader: Hashable, Sendable {
    /// Size on the wire of the `virtio_net_hdr_v1` form switchd uses everywhere.
    public static let size = 12

    /// `flags` bits.
    public static let needsChecksum: UInt8 = 1   // VIRTIO_NET_HDR_F_NEEDS_CSUM
    public static let dataValid: UInt8 = 2       // VIRTIO_NET_HDR_F_DATA_VALID

    /// `gsoType` values.
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoUDPL4: UInt8 = 5
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    public var numBuffers: UInt16

    /// A header that asks for nothing: complete checksums, no segmentation.
    public static let none = VirtioNetHeader()

    @inlinable
    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, numBuffers: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.numBuffers = numBuffers
    }

    /// Reads the 12 bytes at `p` (no alignment needed).
    @inlinable
    public init(loading p: UnsafeRawPointer) {
        flags = p.load(fromByteOffset: 0, as: UInt8.self)
        gsoType = p.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        gsoSize = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        numBuffers = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
    }

    /// Writes the 12 bytes at `p`.
    @inlinable
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
        p.storeBytes(of: numBuffers.littleEndian, toByteOffset: 10, as: UInt16.self)
    }

    /// True when the frame is a GSO super-frame.
    @inlinable public var isGSO: Bool { gsoType & ~Self.gsoECN != Self.gsoNone }
}

extension VirtioNetHeader {
    /// The header at the start of `bytes`, or nil when shorter than 12 bytes.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size, let base = bytes.baseAddress else { return nil }
        self.init(loading: base)
    }

    /// Writes the 12 bytes at the start of `buffer` (at least 12 bytes).
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.size)
        store(to: buffer.baseAddress!)
    }
}
