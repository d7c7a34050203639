// PortSecurity: the guards that keep one guest from taking the network from the others.
//
// Design (after libvirt's `clean-traffic` filter with DHCP snooping, and RFC 6620's first-come,
// first-served source address validation):
// - A port with the MAC guard sends only from MACs it learned. A MAC learned on another port moves
//   only when that entry is gone: the port was removed, or the MAC stayed silent for `macAgeing`.
//   A live guest's MAC never moves, so a hijack needs the victim to be silent for minutes, not
//   seconds; a guest that really moved (QEMU restarted on a new socket) is free as soon as its old
//   port is removed (EOF, failed send, or the 3-second dgram probe).
// - IPv4 and IPv6 source addresses are bound to ports in one table (IPv4 as ::ffff:a.b.c.d): an
//   address is bound to the first port that uses it, claims it (gratuitous ARP, an NA, DAD), or
//   is given it by our DHCP server (an ACK rebinds the address to the client's port, whoever had
//   it: the server is the authority). Bindings live as long as they are used, at least `macAgeing`
//   seconds after the last use, at least to the end of a DHCP lease, and go with their port. The
//   gateway's own addresses are bound for good to nobody. Sources outside the network (subnet,
//   IPv6 prefix, link-local) are refused; unspecified sources (DHCP, DAD) pass unbound.
// - DHCP server messages, router advertisements and redirects from guests are dropped.
// Every refusal is counted on the port that sent the frame, by reason (`DropReason`), and logged
// at most once per ten seconds per port. The classification (`FrameClaims`) is a pure function of
// the bytes and the decision (`SourceGuard.admit`) a function of the claims and the table, so
// both are tested without sockets. The forwarding path pays one header walk per frame on guarded
// ports and one table look-up per source address per second (the port caches the last one).
import Proto

/// The guards of a port as bits, for the forwarding path.
struct PortGuards: OptionSet, Equatable {
    let rawValue: UInt8
    static let mac = PortGuards(rawValue: 1)
    static let ip = PortGuards(rawValue: 2)
    static let neighbor = PortGuards(rawValue: 4)
    static let dhcpServer = PortGuards(rawValue: 8)
    static let routerAdvertisement = PortGuards(rawValue: 16)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ spec: PortSecuritySpec) {
        var guards = PortGuards()
        if spec.mac { guards.insert(.mac) }
        if spec.ip { guards.insert(.ip) }
        if spec.neighbor { guards.insert(.neighbor) }
        if spec.dhcpServer { guards.insert(.dhcpServer) }
        if spec.routerAdvertisement { guards.insert(.routerAdvertisement) }
        self = guards
    }

    /// The guards past the MAC check: they need the frame's headers.
    static let headerGuards: PortGuards = [.ip, .neighbor, .dhcpServer, .routerAdvertisement]

    /// The names of the guards that are on, as `status` lists them.
    var names: [String] {
        let spec = PortSecuritySpec(mac: contains(.mac), ip: contains(.ip), neighbor: contains(.neighbor),
                                    dhcpServer: contains(.dhcpServer), routerAdvertisement: contains(.routerAdvertisement))
        return spec.named.filter { $0.1 }.map { $0.0 }
    }

    /// The guards of a new port: its own setting if it has one, none for the uplink and `link`
    /// ports, else the network's default.
    static func of(kind: PortKind, info: PortInfo, network: NetworkSpec) -> PortGuards {
        if info.isUplink { return [] }
        if let own = info.security { return PortGuards(own) }
        return kind == .link ? [] : PortGuards(network.portSecurity)
    }
}

/// An IP address as a binding key: IPv6 as it is, IPv4 as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).
struct BoundAddress: Equatable {
    var high: UInt64
    var low: UInt64

    init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    init(_ address: IPv4Address) { high = 0; low = 0xFFFF_0000_0000 | UInt64(address.rawValue) }
    init(_ address: IPv6Address) { high = address.high; low = address.low }

    /// `::`, which is also the table's empty key: never bound.
    var isUnspecified: Bool { high == 0 && low == 0 }
    var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }
    var ipv4: IPv4Address { IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)) }
}

/// What a frame says about who sent it, read once from its headers.
struct FrameClaims: Equatable {
    enum Kind: Equatable { case other, ipv4, ipv6, arp }

    var kind = Kind.other
    /// The IP source address, or the ARP sender protocol address.
    var source = BoundAddress(high: 0, low: 0)
    /// ARP: the sender hardware address.
    var senderMAC: UInt64 = 0
    /// The address a neighbor advertisement claims (its target), if the frame is one.
    var advertised: BoundAddress? = nil
    /// The address a duplicate address detection probe asks for (an NS from ::), if it is one.
    var probed: BoundAddress? = nil
    /// A DHCP (UDP from port 67) or DHCPv6 (UDP from port 547) server message.
    var dhcpServer = false
    /// A router advertisement or redirect, or an IPv6 header chain that cannot be seen through
    /// (RFC 7113 §3: a guard that cannot find the upper layer must not let it pass).
    var routerMessage = false

    /// Reads the claims of an Ethernet frame (up to two VLAN tags); `.other` for anything that is
    /// neither IP nor ARP, or too short to be either.
    static func read(_ frame: UnsafeRawBufferPointer) -> FrameClaims {
        var claims = FrameClaims()
        guard let ethernet = EthernetFrame(validating: frame) else { return claims }
        let payload = ethernet.payload
        switch ethernet.etherType {
        case .ipv4:
            guard let ip = IPv4Header(validating: payload) else { return claims }
            claims.kind = .ipv4
            claims.source = BoundAddress(ip.source)
            if ip.protocol == .udp && ip.fragmentOffset == 0 {
                let l4 = ip.headerLength
                if payload.count >= l4 + 2 && payload.be16(l4) == 67 { claims.dhcpServer = true }
            }
        case .ipv6:
            guard let ip = IPv6Header(validating: payload) else { return claims }
            claims.kind = .ipv6
            claims.source = BoundAddress(ip.source)
            guard let upper = ip.upperLayer() else {
                claims.routerMessage = true
                return claims
            }
            guard upper.hasUpperLayerHeader else { return claims }  // a later fragment: no header to read
            let l4 = upper.offset
            switch upper.protocol {
            case .udp:
                guard payload.count >= l4 + 2 else { claims.routerMessage = true; return claims }
                if payload.be16(l4) == 547 { claims.dhcpServer = true }
            case .icmpv6:
                guard payload.count >= l4 + 1 else { claims.routerMessage = true; return claims }
                let type = ICMPv6Type(rawValue: payload.byte(l4))
                if type == .routerAdvertisement || type == .redirect {
                    claims.routerMessage = true
                } else if (type == .neighborAdvertisement || type == .neighborSolicitation) && payload.count >= l4 + 24 {
                    // RFC 4861 §4.3-4.4: the target address sits at bytes 8..<24 of both messages.
                    let target = BoundAddress(payload.ipv6Address(l4 + 8))
                    if type == .neighborAdvertisement {
                        claims.advertised = target
                    } else if claims.source.isUnspecified {
                        claims.probed = target
                    }
                }
            default: break
            }
        case .arp:
            guard let arp = ARPPacket(validating: payload) else { return claims }
            claims.kind = .arp
            claims.source = BoundAddress(arp.senderProtocolAddress)
            claims.senderMAC = arp.senderHardwareAddress.rawValue
        default: break
        }
        return claims
    }
}

/// The address → port bindings of one network: open addressing over a fixed array (linear
/// probing, backward-shift deletion, as `MACTable`), so checking and binding never allocate.
struct AddressBindings {
    struct Entry {
        var key: BoundAddress
        var port: UInt16
        /// Loop time (seconds) after which the binding lapses; ignored for the gateway's.
        var expires: UInt32
    }

    /// The owner of the gateway's own addresses: no port.
    static let gateway = UInt16.max
    /// Addresses one port may hold at once (IPv4 and IPv6 together, link-local and temporary
    /// addresses included).
    static let limitPerPort: Int32 = 32

    private let entries: UnsafeMutablePointer<Entry>
    private let mask: Int
    private(set) var count = 0
    private let perPort: UnsafeMutablePointer<Int32>

    init(capacity: Int = 8192, maxPorts: Int) {
        var size = 16
        while size < capacity { size <<= 1 }
        entries = .allocate(capacity: size)
        entries.initialize(repeating: Entry(key: BoundAddress(high: 0, low: 0), port: 0, expires: 0), count: size)
        mask = size - 1
        perPort = .allocate(capacity: maxPorts)
        perPort.initialize(repeating: 0, count: maxPorts)
    }

    /// Frees the storage; the table must not be used afterwards.
    func deallocate() {
        entries.deallocate()
        perPort.deallocate()
    }

    @inline(__always)
    private func home(_ key: BoundAddress) -> Int {
        Int(truncatingIfNeeded: ((key.high ^ key.low.byteSwapped) &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
    }

    private func find(_ key: BoundAddress) -> Int? {
        var i = home(key)
        while true {
            if entries[i].key == key { return i }
            if entries[i].key.isUnspecified { return nil }
            i = (i + 1) & mask
        }
    }

    @inline(__always)
    private static func lapsed(_ entry: Entry, now: UInt32) -> Bool {
        entry.port != gateway && Int32(bitPattern: entry.expires &- now) <= 0
    }

    /// The port `key` is bound to (`gateway` for the gateway's addresses); nil when unbound or lapsed.
    func owner(of key: BoundAddress, now: UInt32) -> UInt16? {
        guard let i = find(key), !Self.lapsed(entries[i], now: now) else { return nil }
        return entries[i].port
    }

    /// Binds `key` to `port` until at least `until`, taking it from whoever held it. False (and no
    /// change) when `port` already holds `limitPerPort` other addresses or the table is full.
    @discardableResult
    mutating func bind(_ key: BoundAddress, to port: UInt16, until: UInt32) -> Bool {
        guard !key.isUnspecified else { return false }
        if let i = find(key) {
            let old = entries[i].port
            if old == port {
                if Int32(bitPattern: until &- entries[i].expires) > 0 { entries[i].expires = until }
                return true
            }
            guard port == Self.gateway || perPort[Int(port)] < Self.limitPerPort else { return false }
            if old != Self.gateway { perPort[Int(old)] -= 1 }
            if port != Self.gateway { perPort[Int(port)] += 1 }
            entries[i] = Entry(key: key, port: port, expires: until)
            return true
        }
        guard port == Self.gateway || perPort[Int(port)] < Self.limitPerPort else { return false }
        guard count < (mask + 1) * 3 / 4 else { return false }
        var i = home(key)
        while !entries[i].key.isUnspecified { i = (i + 1) & mask }
        entries[i] = Entry(key: key, port: port, expires: until)
        if port != Self.gateway { perPort[Int(port)] += 1 }
        count += 1
        return true
    }

    /// Removes the entry at bucket `index` and shifts the rest of its probe run back.
    private mutating func remove(at index: Int) {
        if entries[index].port != Self.gateway { perPort[Int(entries[index].port)] -= 1 }
        count -= 1
        var hole = index
        var i = (index + 1) & mask
        while !entries[i].key.isUnspecified {
            let h = home(entries[i].key)
            // Move entry i into the hole unless its home lies in the cyclic range (hole, i].
            if hole <= i ? (h <= hole || h > i) : (h <= hole && h > i) {
                entries[hole] = entries[i]
                hole = i
            }
            i = (i + 1) & mask
        }
        entries[hole].key = BoundAddress(high: 0, low: 0)
    }

    /// Removes every binding of `port` (the port went away).
    mutating func flush(port: UInt16) {
        removeAll { $0.port == port }
    }

    /// Removes every binding that has lapsed.
    mutating func expire(now: UInt32) {
        removeAll { Self.lapsed($0, now: now) }
    }

    private mutating func removeAll(where matches: (Entry) -> Bool) {
        var i = 0
        while i <= mask {
            if !entries[i].key.isUnspecified && matches(entries[i]) {
                remove(at: i)  // a later entry may have shifted into i: look at it again
            } else {
                i += 1
            }
        }
    }

    /// Addresses bound to `port`.
    func count(port: UInt16) -> Int { Int(perPort[Int(port)]) }
}

/// Port security of one network: its addressing and its bindings.
struct SourceGuard {
    var bindings: AddressBindings
    let subnet: IPv4Subnet
    /// The network's IPv6 /64 (high half), nil without IPv6.
    let prefix: UInt64?
    /// Seconds a binding outlives its last use.
    let ageing: UInt32

    init(network: NetworkSpec, gatewayMAC: MACAddress, maxPorts: Int) {
        bindings = AddressBindings(maxPorts: maxPorts)
        subnet = network.subnet
        prefix = network.ipv6Prefix?.high
        ageing = UInt32(max(1, network.macAgeing))
        var identity = network.gatewayIdentity
        identity.mac = gatewayMAC
        bindings.bind(BoundAddress(identity.ipv4), to: AddressBindings.gateway, until: 0)
        bindings.bind(BoundAddress(identity.linkLocal), to: AddressBindings.gateway, until: 0)
        if let global = identity.ipv6Address { bindings.bind(BoundAddress(global), to: AddressBindings.gateway, until: 0) }
    }

    func deallocate() { bindings.deallocate() }

    /// Whether a port on this network may use `address` at all: the subnet's hosts (not its
    /// network or broadcast address) or IPv4 link-local (RFC 3927); the /64 or fe80::/64.
    func belongs(_ address: BoundAddress) -> Bool {
        if address.isIPv4 {
            let v4 = address.ipv4
            if v4.rawValue >> 16 == 0xA9FE { return true }  // 169.254.0.0/16
            return subnet.contains(v4) && v4 != subnet.network && v4 != subnet.broadcast
        }
        if address.high == 0xFE80_0000_0000_0000 { return true }
        return prefix == address.high && address.low != 0
    }

    /// Binds `address` to `port` if nobody else holds it; the reason to refuse otherwise.
    private mutating func claim(_ address: BoundAddress, port: UInt16, now: UInt32, refuse reason: DropReason) -> DropReason? {
        guard belongs(address) else { return reason }
        if let owner = bindings.owner(of: address, now: now), owner != port { return reason }
        return bindings.bind(address, to: port, until: now &+ ageing) ? nil : reason
    }

    /// Whether the frame with `claims`, from source MAC `sourceMAC` on `port` with `guards`, may be
    /// forwarded: nil, or the reason it is dropped. Binds what the frame rightly claims.
    mutating func admit(_ claims: FrameClaims, sourceMAC: UInt64, guards: PortGuards, port: UInt16,
                        now: UInt32) -> DropReason? {
        switch claims.kind {
        case .other:
            return nil
        case .arp:
            guard guards.contains(.neighbor) else { return nil }
            guard claims.senderMAC == sourceMAC else { return .spoofedArp }
            if claims.source.low == 0xFFFF_0000_0000 { return nil }  // an ARP probe (RFC 5227): sender 0.0.0.0
            return claim(claims.source, port: port, now: now, refuse: .spoofedArp)
        case .ipv4, .ipv6:
            if claims.dhcpServer && guards.contains(.dhcpServer) { return .rogueDhcp }
            if claims.routerMessage && guards.contains(.routerAdvertisement) { return .rogueRa }
            if guards.contains(.neighbor) {
                if let target = claims.advertised, let refused = claim(target, port: port, now: now, refuse: .spoofedNd) {
                    return refused
                }
                // A DAD probe binds its address if it is free and ours to take (RFC 6620 §2.3);
                // a probe for a taken address goes on, so its owner can defend it.
                if let target = claims.probed, belongs(target), bindings.owner(of: target, now: now) == nil {
                    bindings.bind(target, to: port, until: now &+ ageing)
                }
            }
            guard guards.contains(.ip), !claims.source.isUnspecified, claims.source.low != 0xFFFF_0000_0000 else { return nil }
            return claim(claims.source, port: port, now: now, refuse: .spoofedIp)
        }
    }

    /// DHCP snooping: the services acknowledged `address` to the client whose port is `port`, for
    /// `leaseSeconds`. The server is the authority: the address moves to that port.
    mutating func leased(_ address: IPv4Address, to port: UInt16, leaseSeconds: UInt32, now: UInt32) {
        bindings.bind(BoundAddress(address), to: port, until: now &+ max(ageing, min(leaseSeconds, 1 << 30)))
    }
}

/// Reads a DHCPACK the services are sending (RFC 2131 §2, §9.6): the client's hardware address,
/// the address it was given and the lease time; nil for any other frame.
func acknowledgedLease(in frame: UnsafeRawBufferPointer) -> (client: MACAddress, address: IPv4Address, seconds: UInt32)? {
    guard let ethernet = EthernetFrame(validating: frame), ethernet.etherType == .ipv4,
          let ip = IPv4Header(validating: ethernet.payload), ip.protocol == .udp, !ip.isFragment else { return nil }
    let udp = ethernet.payload.suffix(from: ip.headerLength)
    guard udp.count >= 8 + 240, udp.be16(0) == 67 else { return nil }
    let bootp = udp.suffix(from: 8)
    guard bootp.byte(0) == 2, bootp.be16(236) == 0x6382 && bootp.be16(238) == 0x5363 else { return nil }  // BOOTREPLY, magic cookie
    var acknowledged = false
    var seconds: UInt32 = 0
    var i = 240
    while i < bootp.count {
        let code = bootp.byte(i)
        if code == 255 { break }
        if code == 0 { i += 1; continue }
        guard i + 1 < bootp.count else { break }
        let length = Int(bootp.byte(i + 1))
        guard i + 2 + length <= bootp.count else { break }
        if code == 53 && length == 1 { acknowledged = bootp.byte(i + 2) == 5 }
        if code == 51 && length == 4 { seconds = UInt32(bootp.be16(i + 2)) << 16 | UInt32(bootp.be16(i + 4)) }
        i += 2 + length
    }
    guard acknowledged else { return nil }
    return (bootp.macAddress(28), bootp.ipv4Address(16), seconds)
}
