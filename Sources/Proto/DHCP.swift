// DHCPv4 messages (RFC 2131 §2) and their options (RFC 2132): validating parse and emission.
//
// DHCP is not on the per-frame hot path (a handful of messages per client per lease), so the
// parsed value owns its bytes in arrays; parse validates the fixed header, the magic cookie and
// every option length once, after which no accessor can fail.

/// The BOOTP `op` field (RFC 2131 §2); open, so unknown values round-trip.
@frozen
public struct DHCPOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// BOOTREQUEST, client to server.
    public static let request = DHCPOperation(rawValue: 1)
    /// BOOTREPLY, server to client.
    public static let reply = DHCPOperation(rawValue: 2)
}

/// The DHCP message type, option 53 (RFC 2132 §9.6); open, so unknown values round-trip.
@frozen
public struct DHCPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let discover = DHCPMessageType(rawValue: 1)
    public static let offer = DHCPMessageType(rawValue: 2)
    public static let request = DHCPMessageType(rawValue: 3)
    public static let decline = DHCPMessageType(rawValue: 4)
    public static let ack = DHCPMessageType(rawValue: 5)
    public static let nak = DHCPMessageType(rawValue: 6)
    public static let release = DHCPMessageType(rawValue: 7)
    public static let inform = DHCPMessageType(rawValue: 8)

    public var description: String {
        let names = ["DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"]
        return (1...8).contains(rawValue) ? names[Int(rawValue) - 1] : "type \(rawValue)"
    }
}

/// A DHCP option code (RFC 2132); open, so unknown options round-trip.
@frozen
public struct DHCPOptionCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Pad (RFC 2132 §3.1): one octet, no length.
    public static let pad = DHCPOptionCode(rawValue: 0)
    /// Subnet Mask (§3.3).
    public static let subnetMask = DHCPOptionCode(rawValue: 1)
    /// Router (§3.5): a list of addresses.
    public static let router = DHCPOptionCode(rawValue: 3)
    /// Domain Name Server (§3.8): a list of addresses.
    public static let domainNameServer = DHCPOptionCode(rawValue: 6)
    /// Host Name (§3.14).
    public static let hostName = DHCPOptionCode(rawValue: 12)
    /// Domain Name (§3.17).
    public static let domainName = DHCPOptionCode(rawValue: 15)
    /// Interface MTU (§5.1).
    public static let interfaceMTU = DHCPOptionCode(rawValue: 26)
    /// Broadcast Address (§5.3).
    public static let broadcastAddress = DHCPOptionCode(rawValue: 28)
    /// Requested IP Address (§9.1).
    public static let requestedIPAddress = DHCPOptionCode(rawValue: 50)
    /// IP Address Lease Time (§9.2), seconds.
    public static let leaseTime = DHCPOptionCode(rawValue: 51)
    /// Option Overload (§9.3); not supported: `sname` and `file` are never read as options.
    public static let overload = DHCPOptionCode(rawValue: 52)
    /// DHCP Message Type (§9.6).
    public static let messageType = DHCPOptionCode(rawValue: 53)
    /// Server Identifier (§9.7).
    public static let serverIdentifier = DHCPOptionCode(rawValue: 54)
    /// Parameter Request List (§9.8).
    public static let parameterRequestList = DHCPOptionCode(rawValue: 55)
    /// Message (§9.9): an error text.
    public static let message = DHCPOptionCode(rawValue: 56)
    /// Maximum DHCP Message Size (§9.10).
    public static let maximumMessageSize = DHCPOptionCode(rawValue: 57)
    /// Renewal (T1) Time Value (§9.11), seconds.
    public static let renewalTime = DHCPOptionCode(rawValue: 58)
    /// Rebinding (T2) Time Value (§9.12), seconds.
    public static let rebindingTime = DHCPOptionCode(rawValue: 59)
    /// Client-identifier (§9.14): a type octet and at least one more.
    public static let clientIdentifier = DHCPOptionCode(rawValue: 61)
    /// End (§3.2): one octet, no length.
    public static let end = DHCPOptionCode(rawValue: 255)
}

/// One option: its code and its data (after RFC 3396 concatenation of repeated codes).
public struct DHCPOption: Hashable, Sendable {
    public var code: DHCPOptionCode
    public var data: [UInt8]

    /// An option from its code and data (data may exceed 255 bytes: `emit` splits it, RFC 3396).
    public init(_ code: DHCPOptionCode, _ data: [UInt8]) {
        self.code = code
        self.data = data
    }

    /// An option holding one IPv4 address.
    public init(_ code: DHCPOptionCode, address: IPv4Address) {
        self.init(code, Self.bytes(address.rawValue))
    }

    /// An option holding a 32-bit number (times in seconds).
    public init(_ code: DHCPOptionCode, uint32 value: UInt32) {
        self.init(code, Self.bytes(value))
    }

    /// An option holding a 16-bit number.
    public init(_ code: DHCPOptionCode, uint16 value: UInt16) {
        self.init(code, [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }

    /// An option holding text (host name, domain name, message).
    public init(_ code: DHCPOptionCode, text: String) {
        self.init(code, Array(text.utf8))
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}

/// Field offsets and sizes of the DHCP message (RFC 2131 §2, Figure 1).
enum DHCPField {
    static let op = 0
    static let htype = 1
    static let hlen = 2
    static let hops = 3
    static let xid = 4
    static let secs = 8
    static let flags = 10
    static let ciaddr = 12
    static let yiaddr = 16
    static let siaddr = 20
    static let giaddr = 24
    static let chaddr = 28
    static let chaddrLength = 16
    static let sname = 44
    static let snameLength = 64
    static let file = 108
    static let fileLength = 128
    /// The magic cookie 99.130.83.99 (RFC 2131 §3, RFC 2132 §2).
    static let cookie = 236
    static let cookieValue: UInt32 = 0x6382_5363
    static let options = 240
    /// The BROADCAST bit of `flags` (RFC 2131 §2, Figure 2).
    static let broadcastFlag: UInt16 = 0x8000
    /// Smallest BOOTP message a relay must accept (RFC 1542 §2.1); replies are padded to it.
    static let minimumEmitLength = 300
}

/// A parsed DHCPv4 message: the fixed BOOTP header (RFC 2131 §2) and its options in order.
public struct DHCPMessage: Hashable, Sendable {
    /// Message op code.
    public var op: DHCPOperation
    /// Hardware address type (1: Ethernet, RFC 1700).
    public var htype: UInt8
    /// Hardware address length (6 for Ethernet).
    public var hlen: UInt8
    /// Relay hops.
    public var hops: UInt8
    /// Transaction ID chosen by the client.
    public var xid: UInt32
    /// Seconds since the client began acquiring or renewing.
    public var secs: UInt16
    /// Flags; only the BROADCAST bit is defined.
    public var flags: UInt16
    /// Client IP address (set in BOUND, RENEW and REBIND states, and in INFORM).
    public var ciaddr: IPv4Address
    /// "Your" (client) IP address.
    public var yiaddr: IPv4Address
    /// Next server address.
    public var siaddr: IPv4Address
    /// Relay agent address.
    public var giaddr: IPv4Address
    /// Client hardware address, 16 octets.
    public var chaddr: [UInt8]
    /// Server host name, 64 octets (never read as options: overload is not supported).
    public var sname: [UInt8]
    /// Boot file name, 128 octets (never read as options: overload is not supported).
    public var file: [UInt8]
    /// The options, pad and end excluded, in order of first appearance; repeated codes are
    /// concatenated into one (RFC 3396 §7).
    public var options: [DHCPOption]

    /// A message from its fields; `chaddr`, `sname` and `file` are zero-padded or cut to size.
    public init(op: DHCPOperation, htype: UInt8 = 1, hlen: UInt8 = 6, hops: UInt8 = 0, xid: UInt32, secs: UInt16 = 0,
                flags: UInt16 = 0, ciaddr: IPv4Address = IPv4Address(rawValue: 0),
                yiaddr: IPv4Address = IPv4Address(rawValue: 0), siaddr: IPv4Address = IPv4Address(rawValue: 0),
                giaddr: IPv4Address = IPv4Address(rawValue: 0), chaddr: [UInt8], sname: [UInt8] = [],
                file: [UInt8] = [], options: [DHCPOption]) {
        self.op = op; self.htype = htype; self.hlen = hlen; self.hops = hops; self.xid = xid; self.secs = secs
        self.flags = flags; self.ciaddr = ciaddr; self.yiaddr = yiaddr; self.siaddr = siaddr; self.giaddr = giaddr
        self.chaddr = Self.sized(chaddr, DHCPField.chaddrLength)
        self.sname = Self.sized(sname, DHCPField.snameLength)
        self.file = Self.sized(file, DHCPField.fileLength)
        self.options = options
    }

    private static func sized(_ bytes: [UInt8], _ count: Int) -> [UInt8] {
        Array(bytes.prefix(count)) + [UInt8](repeating: 0, count: max(0, count - bytes.count))
    }

    // MARK: Parse

    /// Parses and validates a DHCP message (the UDP payload). Nil when the fixed header or the
    /// magic cookie is truncated or wrong, when an option's length overruns the packet, when the
    /// options do not finish with End, or when an option of RFC 2132 has a length its section forbids.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> DHCPMessage? {
        guard bytes.count >= DHCPField.options, bytes.be32(DHCPField.cookie) == DHCPField.cookieValue else { return nil }
        var options: [DHCPOption] = []
        var offset = DHCPField.options
        var ended = false
        while offset < bytes.count {
            let code = DHCPOptionCode(rawValue: bytes.byte(offset))
            if code == .pad { offset += 1; continue }
            if code == .end { ended = true; break }
            guard offset + 2 <= bytes.count else { return nil }
            let length = Int(bytes.byte(offset + 1))
            let start = offset + 2
            guard start + length <= bytes.count else { return nil }
            let data = Array(bytes.slice(start..<start + length))
            if let index = options.firstIndex(where: { $0.code == code }) {
                options[index].data += data
            } else {
                options.append(DHCPOption(code, data))
            }
            offset = start + length
        }
        guard ended else { return nil }
        for option in options where !isValid(option) { return nil }
        return DHCPMessage(
            op: DHCPOperation(rawValue: bytes.byte(DHCPField.op)), htype: bytes.byte(DHCPField.htype),
            hlen: bytes.byte(DHCPField.hlen), hops: bytes.byte(DHCPField.hops), xid: bytes.be32(DHCPField.xid),
            secs: bytes.be16(DHCPField.secs), flags: bytes.be16(DHCPField.flags),
            ciaddr: IPv4Address(rawValue: bytes.be32(DHCPField.ciaddr)),
            yiaddr: IPv4Address(rawValue: bytes.be32(DHCPField.yiaddr)),
            siaddr: IPv4Address(rawValue: bytes.be32(DHCPField.siaddr)),
            giaddr: IPv4Address(rawValue: bytes.be32(DHCPField.giaddr)),
            chaddr: Array(bytes.slice(DHCPField.chaddr..<DHCPField.chaddr + DHCPField.chaddrLength)),
            sname: Array(bytes.slice(DHCPField.sname..<DHCPField.sname + DHCPField.snameLength)),
            file: Array(bytes.slice(DHCPField.file..<DHCPField.file + DHCPField.fileLength)),
            options: options)
    }

    /// Whether an option's length (after concatenation) is one RFC 2132 allows for its code.
    static func isValid(_ option: DHCPOption) -> Bool {
        let count = option.data.count
        switch option.code {
        case .subnetMask, .broadcastAddress, .requestedIPAddress, .leaseTime, .serverIdentifier,
             .renewalTime, .rebindingTime:
            return count == 4                                  // §3.3, §5.3, §9.1, §9.2, §9.7, §9.11, §9.12
        case .router, .domainNameServer:
            return count >= 4 && count % 4 == 0                // §3.5, §3.8
        case .hostName, .domainName, .message, .parameterRequestList:
            return count >= 1                                  // §3.14, §3.17, §9.9, §9.8
        case .interfaceMTU:
            return count == 2 && UInt16(option.data[0]) << 8 | UInt16(option.data[1]) >= 68     // §5.1: ≥ 68
        case .maximumMessageSize:
            return count == 2 && UInt16(option.data[0]) << 8 | UInt16(option.data[1]) >= 576  // §9.10: ≥ 576
        case .overload, .messageType:
            return count == 1                                  // §9.3, §9.6
        case .clientIdentifier:
            return count >= 2                                  // §9.14
        default:
            return true
        }
    }

    // MARK: Typed access

    /// The data of the option `code`, nil when absent.
    public func option(_ code: DHCPOptionCode) -> [UInt8]? {
        options.first(where: { $0.code == code })?.data
    }

    /// Option 53; nil when absent (a plain BOOTP message).
    public var messageType: DHCPMessageType? { option(.messageType).map { DHCPMessageType(rawValue: $0[0]) } }
    /// Option 50.
    public var requestedIPAddress: IPv4Address? { address(.requestedIPAddress) }
    /// Option 54.
    public var serverIdentifier: IPv4Address? { address(.serverIdentifier) }
    /// Option 1.
    public var subnetMask: IPv4Address? { address(.subnetMask) }
    /// Option 28.
    public var broadcastAddress: IPv4Address? { address(.broadcastAddress) }
    /// Option 3, every router listed.
    public var routers: [IPv4Address] { addresses(.router) }
    /// Option 6, every server listed.
    public var domainNameServers: [IPv4Address] { addresses(.domainNameServer) }
    /// Option 51, seconds.
    public var leaseTime: UInt32? { option(.leaseTime).map(Self.uint32) }
    /// Option 58, seconds.
    public var renewalTime: UInt32? { option(.renewalTime).map(Self.uint32) }
    /// Option 59, seconds.
    public var rebindingTime: UInt32? { option(.rebindingTime).map(Self.uint32) }
    /// Option 26.
    public var interfaceMTU: UInt16? { option(.interfaceMTU).map { UInt16($0[0]) << 8 | UInt16($0[1]) } }
    /// Option 57.
    public var maximumMessageSize: UInt16? { option(.maximumMessageSize).map { UInt16($0[0]) << 8 | UInt16($0[1]) } }
    /// Option 55: the codes the client asks for.
    public var parameterRequestList: [DHCPOptionCode]? {
        option(.parameterRequestList).map { $0.map(DHCPOptionCode.init(rawValue:)) }
    }
    /// Option 61, type octet included.
    public var clientIdentifier: [UInt8]? { option(.clientIdentifier) }
    /// Option 12, as sent (not necessarily UTF-8 or a valid label).
    public var hostName: [UInt8]? { option(.hostName) }
    /// Option 15 as text.
    public var domainName: String? { option(.domainName).map { String(decoding: $0, as: UTF8.self) } }
    /// Option 56 as text.
    public var message: String? { option(.message).map { String(decoding: $0, as: UTF8.self) } }

    /// The BROADCAST flag (RFC 2131 §4.1): the client cannot receive unicast before it is configured.
    public var broadcast: Bool {
        get { flags & DHCPField.broadcastFlag != 0 }
        set { flags = newValue ? flags | DHCPField.broadcastFlag : flags & ~DHCPField.broadcastFlag }
    }

    /// The client's Ethernet address: `chaddr` when `htype` is 1 and `hlen` 6, else nil.
    public var clientMAC: MACAddress? {
        guard htype == 1, hlen == 6 else { return nil }
        return MACAddress(chaddr[0], chaddr[1], chaddr[2], chaddr[3], chaddr[4], chaddr[5])
    }

    private func address(_ code: DHCPOptionCode) -> IPv4Address? {
        option(code).map { IPv4Address(rawValue: Self.uint32($0)) }
    }

    private func addresses(_ code: DHCPOptionCode) -> [IPv4Address] {
        guard let data = option(code) else { return [] }
        return stride(from: 0, to: data.count - 3, by: 4).map { IPv4Address(rawValue: Self.uint32(Array(data[$0..<$0 + 4]))) }
    }

    private static func uint32(_ data: [UInt8]) -> UInt32 {
        UInt32(data[0]) << 24 | UInt32(data[1]) << 16 | UInt32(data[2]) << 8 | UInt32(data[3])
    }

    // MARK: Emit

    /// Bytes `emit` writes: header, cookie, options (split into 255-byte pieces), End, and pad
    /// octets up to the 300 bytes of a minimal BOOTP message (RFC 1542 §2.1).
    public var emitLength: Int {
        var length = DHCPField.options + 1
        for option in options {
            let pieces = max(1, (option.data.count + 254) / 255)
            length += option.data.count + 2 * pieces
        }
        return max(length, DHCPField.minimumEmitLength)
    }

    /// Writes the message at the start of `buffer` (at least `emitLength` bytes) and returns its length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = emitLength
        precondition(buffer.count >= length)
        buffer.setByte(op.rawValue, DHCPField.op)
        buffer.setByte(htype, DHCPField.htype)
        buffer.setByte(hlen, DHCPField.hlen)
        buffer.setByte(hops, DHCPField.hops)
        buffer.setBE32(xid, DHCPField.xid)
        buffer.setBE16(secs, DHCPField.secs)
        buffer.setBE16(flags, DHCPField.flags)
        buffer.setBE32(ciaddr.rawValue, DHCPField.ciaddr)
        buffer.setBE32(yiaddr.rawValue, DHCPField.yiaddr)
        buffer.setBE32(siaddr.rawValue, DHCPField.siaddr)
        buffer.setBE32(giaddr.rawValue, DHCPField.giaddr)
        Self.copy(chaddr, DHCPField.chaddrLength, into: buffer, at: DHCPField.chaddr)
        Self.copy(sname, DHCPField.snameLength, into: buffer, at: DHCPField.sname)
        Self.copy(file, DHCPField.fileLength, into: buffer, at: DHCPField.file)
        buffer.setBE32(DHCPField.cookieValue, DHCPField.cookie)
        var offset = DHCPField.options
        for option in options {
            var rest = option.data[...]
            repeat {                                         // RFC 3396 §7: long options split in order
                let piece = rest.prefix(255)
                buffer.setByte(option.code.rawValue, offset)
                buffer.setByte(UInt8(piece.count), offset + 1)
                for (index, byte) in piece.enumerated() { buffer.setByte(byte, offset + 2 + index) }
                offset += 2 + piece.count
                rest = rest.dropFirst(piece.count)
            } while !rest.isEmpty
        }
        buffer.setByte(DHCPOptionCode.end.rawValue, offset)
        offset += 1
        while offset < length { buffer.setByte(0, offset); offset += 1 }
        return length
    }

    private static func copy(_ bytes: [UInt8], _ count: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        for index in 0..<count { buffer.setByte(index < bytes.count ? bytes[index] : 0, offset + index) }
    }
}
