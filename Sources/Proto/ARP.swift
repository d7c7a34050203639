// ARP for IPv4 over Ethernet (RFC 826): view, parsed value, emission.

/// An ARP operation code (RFC 826; IANA "ARP Parameters"); open, so unknown values round-trip.
@frozen
public struct ARPOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16

    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// ares_op$REQUEST (RFC 826).
    public static let request = ARPOperation(rawValue: 1)
    /// ares_op$REPLY (RFC 826).
    public static let reply = ARPOperation(rawValue: 2)
}

/// Field offsets of an Ethernet/IPv4 ARP packet (RFC 826, "Packet format").
@usableFromInline
enum ARPField {
    @usableFromInline static let hardwareType = 0
    @usableFromInline static let protocolType = 2
    @usableFromInline static let hardwareLength = 4
    @usableFromInline static let protocolLength = 5
    @usableFromInline static let operation = 6
    @usableFromInline static let senderHardwareAddress = 8
    @usableFromInline static let senderProtocolAddress = 14
    @usableFromInline static let targetHardwareAddress = 18
    @usableFromInline static let targetProtocolAddress = 24
    @usableFromInline static let length = 28
    /// ar$hrd for Ethernet (IANA hardware type 1).
    @usableFromInline static let ethernet: UInt16 = 1
}

/// A read-only view of an ARP packet for IPv4 over Ethernet (the only kind a switch meets).
@frozen
public struct ARPPacket {
    /// The 28 bytes of the packet (Ethernet padding excluded).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil when shorter than 28 bytes or not Ethernet (1) / IPv4 (0x0800)
    /// with lengths 6 and 4.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= ARPField.length,
              bytes.be16(ARPField.hardwareType) == ARPField.ethernet,
              bytes.be16(ARPField.protocolType) == EtherType.ipv4.rawValue,
              bytes.byte(ARPField.hardwareLength) == 6, bytes.byte(ARPField.protocolLength) == 4
        else { return nil }
        self.bytes = bytes.slice(0..<ARPField.length)
    }

    /// ar$hrd: hardware address space (1, Ethernet).
    @inlinable public var hardwareType: UInt16 { bytes.be16(ARPField.hardwareType) }
    /// ar$pro: protocol address space (0x0800, IPv4).
    @inlinable public var protocolType: EtherType { EtherType(rawValue: bytes.be16(ARPField.protocolType)) }
    /// ar$hln: hardware address length (6).
    @inlinable public var hardwareLength: UInt8 { bytes.byte(ARPField.hardwareLength) }
    /// ar$pln: protocol address length (4).
    @inlinable public var protocolLength: UInt8 { bytes.byte(ARPField.protocolLength) }
    /// ar$op.
    @inlinable public var operation: ARPOperation { ARPOperation(rawValue: bytes.be16(ARPField.operation)) }
    /// ar$sha.
    @inlinable public var senderHardwareAddress: MACAddress {
        MACAddress(loading: bytes.baseAddress! + ARPField.senderHardwareAddress)
    }
    /// ar$spa.
    @inlinable public var senderProtocolAddress: IPv4Address {
        IPv4Address(loading: bytes.baseAddress! + ARPField.senderProtocolAddress)
    }
    /// ar$tha.
    @inlinable public var targetHardwareAddress: MACAddress {
        MACAddress(loading: bytes.baseAddress! + ARPField.targetHardwareAddress)
    }
    /// ar$tpa.
    @inlinable public var targetProtocolAddress: IPv4Address {
        IPv4Address(loading: bytes.baseAddress! + ARPField.targetProtocolAddress)
    }
}

/// A mutable view of an Ethernet/IPv4 ARP packet.
@frozen
public struct MutableARPPacket {
    /// The 28 bytes of the packet.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of an existing packet, validated as `ARPPacket(validating:)` does.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard ARPPacket(validating: bytes.readOnly) != nil else { return nil }
        self.bytes = bytes.slice(0..<ARPField.length)
    }

    /// A view for building a packet in `bytes` (at least 28), whose contents are not read.
    @inlinable
    public init(emptyPacket bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= ARPField.length)
        self.bytes = bytes.slice(0..<ARPField.length)
    }

    /// The read-only view of the same packet.
    @inlinable public var packet: ARPPacket { ARPPacket(unchecked: bytes.readOnly) }

    /// ar$hrd.
    @inlinable public var hardwareType: UInt16 {
        get { packet.hardwareType }
        nonmutating set { bytes.setBE16(newValue, ARPField.hardwareType) }
    }
    /// ar$pro.
    @inlinable public var protocolType: EtherType {
        get { packet.protocolType }
        nonmutating set { bytes.setBE16(newValue.rawValue, ARPField.protocolType) }
    }
    /// ar$hln.
    @inlinable public var hardwareLength: UInt8 {
        get { packet.hardwareLength }
        nonmutating set { bytes.setByte(newValue, ARPField.hardwareLength) }
    }
    /// ar$pln.
    @inlinable public var protocolLength: UInt8 {
        get { packet.protocolLength }
        nonmutating set { bytes.setByte(newValue, ARPField.protocolLength) }
    }
    /// ar$op.
    @inlinable public var operation: ARPOperation {
        get { packet.operation }
        nonmutating set { bytes.setBE16(newValue.rawValue, ARPField.operation) }
    }
    /// ar$sha.
    @inlinable public var senderHardwareAddress: MACAddress {
        get { packet.senderHardwareAddress }
        nonmutating set { newValue.store(to: bytes.baseAddress! + ARPField.senderHardwareAddress) }
    }
    /// ar$spa.
    @inlinable public var senderProtocolAddress: IPv4Address {
        get { packet.senderProtocolAddress }
        nonmutating set { newValue.store(to: bytes.baseAddress! + ARPField.senderProtocolAddress) }
    }
    /// ar$tha.
    @inlinable public var targetHardwareAddress: MACAddress {
        get { packet.targetHardwareAddress }
        nonmutating set { newValue.store(to: bytes.baseAddress! + ARPField.targetHardwareAddress) }
    }
    /// ar$tpa.
    @inlinable public var targetProtocolAddress: IPv4Address {
        get { packet.targetProtocolAddress }
        nonmutating set { newValue.store(to: bytes.baseAddress! + ARPField.targetProtocolAddress) }
    }
}

extension ARPPacket {
    /// A view of bytes already known to be a valid packet.
    @inlinable init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}

/// A parsed Ethernet/IPv4 ARP packet.
@frozen
public struct ARPRepr: Hashable, Sendable {
    /// Operation.
    public var operation: ARPOperation
    /// Sender hardware address.
    public var senderHardwareAddress: MACAddress
    /// Sender protocol address.
    public var senderProtocolAddress: IPv4Address
    /// Target hardware address.
    public var targetHardwareAddress: MACAddress
    /// Target protocol address.
    public var targetProtocolAddress: IPv4Address

    /// Bytes `emit` writes.
    public static let length = ARPField.length

    /// A packet from its fields.
    @inlinable
    public init(operation: ARPOperation, senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
                targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    /// The fields of a validated packet.
    @inlinable
    public static func parse(_ packet: ARPPacket) -> ARPRepr {
        ARPRepr(operation: packet.operation, senderHardwareAddress: packet.senderHardwareAddress,
                senderProtocolAddress: packet.senderProtocolAddress,
                targetHardwareAddress: packet.targetHardwareAddress,
                targetProtocolAddress: packet.targetProtocolAddress)
    }

    /// Writes the 28-byte packet at the start of `buffer`.
    @inlinable
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        let packet = MutableARPPacket(emptyPacket: buffer)
        packet.hardwareType = ARPField.ethernet
        packet.protocolType = .ipv4
        packet.hardwareLength = 6
        packet.protocolLength = 4
        packet.operation = operation
        packet.senderHardwareAddress = senderHardwareAddress
        packet.senderProtocolAddress = senderProtocolAddress
        packet.targetHardwareAddress = targetHardwareAddress
        packet.targetProtocolAddress = targetProtocolAddress
    }
}
