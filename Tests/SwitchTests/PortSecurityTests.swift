// PortSecurity: what frames claim, the address bindings, and the guards' decisions, table-driven.
import XCTest
import Proto
@testable import Switch

/// Frames built byte by byte (checksums are not looked at by the guards).
private enum Craft {
    static let guestA = MACAddress("02:00:00:00:00:0a")!
    static let guestB = MACAddress("02:00:00:00:00:0b")!

    static func ethernet(_ source: MACAddress, _ type: UInt16, _ payload: [UInt8], tags: Int = 0) -> [UInt8] {
        var f = [UInt8](repeating: 0xFF, count: 6)
        withUnsafeBytes(of: source.rawValue.bigEndian) { f += $0[2..<8] }
        for _ in 0..<tags { f += [0x81, 0x00, 0x00, 0x05] }
        f += [UInt8(type >> 8), UInt8(type & 0xFF)]
        return f + payload
    }

    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func v6(_ a: IPv6Address) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        out.withUnsafeMutableBytes { a.store(to: $0.baseAddress!) }
        return out
    }

    static func ipv4(_ source: String, protocol p: UInt8 = 17, sourcePort: UInt16 = 68, destinationPort: UInt16 = 67,
                     from mac: MACAddress = guestA, tags: Int = 0) -> [UInt8] {
        let src = IPv4Address(source)!
        var ip: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, p, 0, 0] + be(src.rawValue) + be(0xFFFF_FFFF)
        ip += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF), 0, 8, 0, 0]
        return ethernet(mac, 0x0800, ip, tags: tags)
    }

    /// IPv6 with an ICMPv6 message of `type` (and a target address for NS/NA), optionally behind a
    /// destination options header.
    static func icmpv6(_ source: String, type: UInt8, target: String? = nil, options: Bool = false,
                       from mac: MACAddress = guestA) -> [UInt8] {
        var body: [UInt8] = [type, 0, 0, 0, 0, 0, 0, 0]
        if let target { body += v6(IPv6Address(target)!) }
        var next: UInt8 = 58
        var ext: [UInt8] = []
        if options {
            ext = [58, 0, 1, 4, 0, 0, 0, 0]
            next = 60
        }
        let payload = ext + body
        let ip: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(payload.count), next, 255] + v6(IPv6Address(source)!)
            + v6(IPv6Address("ff02::1")!)
        return ethernet(mac, 0x86DD, ip + payload)
    }

    static func udp6(_ source: String, sourcePort: UInt16, from mac: MACAddress = guestA) -> [UInt8] {
        let ip: [UInt8] = [0x60, 0, 0, 0, 0, 8, 17, 64] + v6(IPv6Address(source)!) + v6(IPv6Address("ff02::1:2")!)
        return ethernet(mac, 0x86DD, ip + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 2, 34, 0, 8, 0, 0])
    }

    static func arp(sender: String, senderMAC: MACAddress = guestA, from mac: MACAddress = guestA, reply: Bool = true) -> [UInt8] {
        var p: [UInt8] = [0, 1, 8, 0, 6, 4, 0, reply ? 2 : 1]
        withUnsafeBytes(of: senderMAC.rawValue.bigEndian) { p += $0[2..<8] }
        p += be(IPv4Address(sender)!.rawValue) + [UInt8](repeating: 0, count: 6) + be(IPv4Address("10.77.0.99")!.rawValue)
        return ethernet(mac, 0x0806, p)
    }
}

final class PortSecurityTests: XCTestCase {
    private func claims(_ frame: [UInt8]) -> FrameClaims {
        frame.withUnsafeBytes { FrameClaims.read($0) }
    }

    private var network: NetworkSpec {
        var spec = NetworkSpec(name: "lab", subnet: IPv4Subnet("10.77.0.0/24")!)
        spec.services.ipv6Prefix = IPv6Address("fd00:77::")!
        return spec
    }

    func testClaims() {
        XCTAssertEqual(claims(Craft.ipv4("10.77.0.5")).kind, .ipv4)
        XCTAssertEqual(claims(Craft.ipv4("10.77.0.5")).source, BoundAddress(IPv4Address("10.77.0.5")!))
        XCTAssertFalse(claims(Craft.ipv4("10.77.0.5")).dhcpServer)
        XCTAssertTrue(claims(Craft.ipv4("10.77.0.5", sourcePort: 67, destinationPort: 68)).dhcpServer)
        XCTAssertTrue(claims(Craft.ipv4("10.77.0.5", sourcePort: 67, destinationPort: 68, tags: 2)).dhcpServer, "behind two VLAN tags")
        XCTAssertFalse(claims(Craft.ipv4("10.77.0.5", protocol: 6, sourcePort: 67)).dhcpServer, "TCP from 67 is not DHCP")
        XCTAssertTrue(claims(Craft.icmpv6("fe80::1", type: 134)).routerMessage, "RA")
        XCTAssertTrue(claims(Craft.icmpv6("fe80::1", type: 134, options: true)).routerMessage, "RA behind destination options")
        XCTAssertTrue(claims(Craft.icmpv6("fe80::1", type: 137, target: "fe80::2")).routerMessage, "redirect")
        XCTAssertFalse(claims(Craft.icmpv6("fe80::1", type: 133)).routerMessage, "RS")
        XCTAssertEqual(claims(Craft.icmpv6("fe80::1", type: 136, target: "fd00:77::5")).advertised,
                       BoundAddress(IPv6Address("fd00:77::5")!))
        XCTAssertEqual(claims(Craft.icmpv6("::", type: 135, target: "fd00:77::5")).probed, BoundAddress(IPv6Address("fd00:77::5")!))
        XCTAssertNil(claims(Craft.icmpv6("fe80::1", type: 135, target: "fd00:77::5")).probed, "an NS from an address is no probe")
        XCTAssertTrue(claims(Craft.udp6("fe80::1", sourcePort: 547)).dhcpServer, "DHCPv6 server")
        XCTAssertFalse(claims(Craft.udp6("fe80::1", sourcePort: 546)).dhcpServer, "DHCPv6 client")
        let arp = claims(Craft.arp(sender: "10.77.0.5", senderMAC: Craft.guestB))
        XCTAssertEqual(arp.kind, .arp)
        XCTAssertEqual(arp.senderMAC, Craft.guestB.rawValue)
        XCTAssertEqual(arp.source, BoundAddress(IPv4Address("10.77.0.5")!))
        XCTAssertEqual(claims([0, 1, 2]).kind, .other, "a runt")
        // A truncated IPv6 header chain hides the upper layer: treated as a router message (RFC 7113).
        var truncated = Craft.icmpv6("fe80::1", type: 134, options: true)
        truncated.removeLast(10)
        truncated[14 + 5] = UInt8(truncated.count - 54)
        XCTAssertTrue(claims(truncated).routerMessage)
    }

    func testBindingsTakeFreeAddressesAndLapse() {
        var b = AddressBindings(capacity: 64, maxPorts: 8)
        defer { b.deallocate() }
        let a = BoundAddress(IPv4Address("10.77.0.5")!)
        XCTAssertNil(b.owner(of: a, now: 0))
        XCTAssertTrue(b.bind(a, to: 1, until: 10))
        XCTAssertEqual(b.owner(of: a, now: 9), 1)
        XCTAssertNil(b.owner(of: a, now: 10), "lapsed")
        XCTAssertTrue(b.bind(a, to: 2, until: 20), "the table itself lets a bind take over; the guard asks first")
        XCTAssertEqual(b.count(port: 1), 0)
        XCTAssertEqual(b.count(port: 2), 1)
        b.flush(port: 2)
        XCTAssertNil(b.owner(of: a, now: 11))
        XCTAssertEqual(b.count, 0)
        XCTAssertTrue(b.bind(a, to: AddressBindings.gateway, until: 0))
        XCTAssertEqual(b.owner(of: a, now: 1_000_000), AddressBindings.gateway, "the gateway's never lapse")
    }

    func testBindingLimitPerPort() {
        var b = AddressBindings(capacity: 256, maxPorts: 8)
        defer { b.deallocate() }
        for i in 0..<Int(AddressBindings.limitPerPort) {
            XCTAssertTrue(b.bind(BoundAddress(IPv6Address(high: 0xFD00_0077_0000_0000, low: UInt64(i + 1))), to: 3, until: 100))
        }
        XCTAssertFalse(b.bind(BoundAddress(IPv6Address(high: 0xFD00_0077_0000_0000, low: 999)), to: 3, until: 100))
        XCTAssertTrue(b.bind(BoundAddress(IPv6Address(high: 0xFD00_0077_0000_0000, low: 999)), to: 4, until: 100))
    }

    func testRemovalKeepsProbeRunsReachable() {
        var b = AddressBindings(capacity: 16, maxPorts: 8)
        defer { b.deallocate() }
        let keys = (1...11).map { BoundAddress(IPv4Address(rawValue: 0x0A4D_0000 | UInt32($0))) }
        for (i, key) in keys.enumerated() { XCTAssertTrue(b.bind(key, to: UInt16(i % 3), until: 100)) }
        b.flush(port: 1)
        for (i, key) in keys.enumerated() {
            XCTAssertEqual(b.owner(of: key, now: 0), i % 3 == 1 ? nil : UInt16(i % 3), "key \(i)")
        }
        b.expire(now: 200)
        XCTAssertEqual(b.count, 0)
    }

    /// One row: a frame from port 1 with its MAC, the guards on, and the expected decision, with
    /// address 10.77.0.7 and fd00:77::7 already bound to port 2.
    func testDecisions() {
        let all = PortGuards(.all)
        let rows: [(String, [UInt8], PortGuards, DropReason?)] = [
            ("own new address", Craft.ipv4("10.77.0.5"), all, nil),
            ("DHCP client from 0.0.0.0", Craft.ipv4("0.0.0.0"), all, nil),
            ("IPv4 link-local", Craft.ipv4("169.254.3.4"), all, nil),
            ("another port's address", Craft.ipv4("10.77.0.7"), all, .spoofedIp),
            ("the gateway's address", Craft.ipv4("10.77.0.1"), all, .spoofedIp),
            ("outside the subnet", Craft.ipv4("192.168.1.5"), all, .spoofedIp),
            ("the subnet's broadcast address", Craft.ipv4("10.77.0.255"), all, .spoofedIp),
            ("outside the subnet, ip guard off", Craft.ipv4("192.168.1.5"), [.mac, .neighbor], nil),
            ("rogue DHCP server", Craft.ipv4("10.77.0.5", sourcePort: 67, destinationPort: 68), all, .rogueDhcp),
            ("rogue DHCP, guard off", Craft.ipv4("10.77.0.5", sourcePort: 67, destinationPort: 68), [.ip], nil),
            ("rogue DHCPv6 server", Craft.udp6("fe80::5", sourcePort: 547), all, .rogueDhcp),
            ("rogue RA", Craft.icmpv6("fe80::5", type: 134), all, .rogueRa),
            ("rogue RA, guard off", Craft.icmpv6("fe80::5", type: 134), [.ip], nil),
            ("RS", Craft.icmpv6("fe80::5", type: 133), all, nil),
            ("IPv6 in the prefix", Craft.icmpv6("fd00:77::5", type: 128), all, nil),
            ("IPv6 outside the prefix", Craft.icmpv6("2001:db8::5", type: 128), all, .spoofedIp),
            ("IPv6 of another port", Craft.icmpv6("fd00:77::7", type: 128), all, .spoofedIp),
            ("IPv6 gateway address", Craft.icmpv6("fd00:77::1", type: 128), all, .spoofedIp),
            ("NA for another port's address", Craft.icmpv6("fe80::5", type: 136, target: "fd00:77::7"), all, .spoofedNd),
            ("NA for the gateway", Craft.icmpv6("fe80::5", type: 136, target: "fd00:77::1"), all, .spoofedNd),
            ("NA for its own address", Craft.icmpv6("fe80::5", type: 136, target: "fd00:77::5"), all, nil),
            ("NA spoof, neighbor guard off", Craft.icmpv6("fe80::5", type: 136, target: "fd00:77::7"), [.ip], nil),
            ("DAD probe for a taken address", Craft.icmpv6("::", type: 135, target: "fd00:77::7"), all, nil),
            ("ARP for its own address", Craft.arp(sender: "10.77.0.5"), all, nil),
            ("ARP probe", Craft.arp(sender: "0.0.0.0"), all, nil),
            ("ARP claiming the gateway", Craft.arp(sender: "10.77.0.1"), all, .spoofedArp),
            ("ARP claiming another port's", Craft.arp(sender: "10.77.0.7"), all, .spoofedArp),
            ("ARP sender MAC not the source", Craft.arp(sender: "10.77.0.5", senderMAC: Craft.guestB), all, .spoofedArp),
            ("ARP claiming the gateway, guard off", Craft.arp(sender: "10.77.0.1"), [.ip], nil),
        ]
        for (name, frame, guards, expected) in rows {
            var guardian = SourceGuard(network: network, gatewayMAC: network.gatewayMAC, maxPorts: 8)
            defer { guardian.deallocate() }
            guardian.bindings.bind(BoundAddress(IPv4Address("10.77.0.7")!), to: 2, until: 1000)
            guardian.bindings.bind(BoundAddress(IPv6Address("fd00:77::7")!), to: 2, until: 1000)
            let decision = guardian.admit(claims(frame), sourceMAC: Craft.guestA.rawValue, guards: guards, port: 1, now: 10)
            XCTAssertEqual(decision, expected, name)
        }
    }

    func testFirstComeFirstServed() {
        var guardian = SourceGuard(network: network, gatewayMAC: network.gatewayMAC, maxPorts: 8)
        defer { guardian.deallocate() }
        let all = PortGuards(.all)
        let frame = Craft.ipv4("10.77.0.5")
        XCTAssertNil(guardian.admit(claims(frame), sourceMAC: 0, guards: all, port: 1, now: 10))
        XCTAssertEqual(guardian.admit(claims(frame), sourceMAC: 0, guards: all, port: 2, now: 11), .spoofedIp)
        // Unused for longer than the ageing time, it is free again.
        XCTAssertNil(guardian.admit(claims(frame), sourceMAC: 0, guards: all, port: 2, now: 10 + 300))
        // DHCP snooping: the server's ACK moves the address to the client's port.
        guardian.leased(IPv4Address("10.77.0.5")!, to: 1, leaseSeconds: 3600, now: 400)
        XCTAssertEqual(guardian.admit(claims(frame), sourceMAC: 0, guards: all, port: 2, now: 401), .spoofedIp)
        XCTAssertNil(guardian.admit(claims(frame), sourceMAC: 0, guards: all, port: 1, now: 3000), "bound for the lease")
        // A DAD probe binds a free address to the prober.
        XCTAssertNil(guardian.admit(claims(Craft.icmpv6("::", type: 135, target: "fd00:77::9")), sourceMAC: 0,
                                    guards: all, port: 3, now: 3000))
        XCTAssertEqual(guardian.bindings.owner(of: BoundAddress(IPv6Address("fd00:77::9")!), now: 3001), 3)
    }

    func testDefaultsPerKind() {
        var spec = network
        XCTAssertEqual(PortGuards.of(kind: .tap, info: PortInfo(id: "t", peer: "t"), network: spec), PortGuards(.all))
        XCTAssertEqual(PortGuards.of(kind: .stream, info: PortInfo(id: "s", peer: "s"), network: spec), PortGuards(.all))
        XCTAssertEqual(PortGuards.of(kind: .link, info: PortInfo(id: "l", peer: "l"), network: spec), [])
        XCTAssertEqual(PortGuards.of(kind: .tap, info: PortInfo(id: "u", peer: "u", isUplink: true), network: spec), [])
        XCTAssertEqual(PortGuards.of(kind: .link, info: PortInfo(id: "l", peer: "l", security: .all), network: spec), PortGuards(.all))
        spec.portSecurity = .none
        XCTAssertEqual(PortGuards.of(kind: .dgramPeer, info: PortInfo(id: "d", peer: "d"), network: spec), [])
        XCTAssertEqual(PortGuards(.all).names, ["mac", "ip", "neighbor", "dhcpServer", "routerAdvertisement"])
    }

    func testSnoopsDHCPAcks() {
        var bootp = [UInt8](repeating: 0, count: 240)
        bootp[0] = 2
        bootp[16...19] = [10, 77, 0, 42]
        bootp[28...33] = [2, 0, 0, 0, 0, 0x0a]
        bootp[236...239] = [0x63, 0x82, 0x53, 0x63]
        bootp += [53, 1, 5, 51, 4, 0, 0, 0x0e, 0x10, 255]
        let udp: [UInt8] = [0, 67, 0, 68, UInt8((8 + bootp.count) >> 8), UInt8((8 + bootp.count) & 0xFF), 0, 0]
        var ip: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0] + Craft.be(0x0A4D_0001) + Craft.be(0xFFFF_FFFF)
        ip[2] = UInt8((20 + 8 + bootp.count) >> 8)
        ip[3] = UInt8((20 + 8 + bootp.count) & 0xFF)
        let frame = Craft.ethernet(Craft.guestB, 0x0800, ip + udp + bootp)
        let lease = frame.withUnsafeBytes { acknowledgedLease(in: $0) }
        XCTAssertEqual(lease?.client, Craft.guestA)
        XCTAssertEqual(lease?.address, IPv4Address("10.77.0.42"))
        XCTAssertEqual(lease?.seconds, 3600)
        var offer = frame
        offer[14 + 20 + 8 + 242] = 2  // DHCPOFFER
        XCTAssertNil(offer.withUnsafeBytes { acknowledgedLease(in: $0) })
    }
}
