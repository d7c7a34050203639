// Helpers for the DHCP server tests: the network of make_dhcp_golden.py, client frames, a recording store, scapy.
import Foundation
import TestSupport
import XCTest
import Proto
@testable import Switch

enum DHCPNet {
    static let gatewayMAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let gateway = IPv4Address(192, 168, 107, 1)
    static let subnet = IPv4Subnet(network: IPv4Address(192, 168, 107, 0), prefixLength: 24)
    static let range = IPv4Address(192, 168, 107, 2)...IPv4Address(192, 168, 107, 254)
    static let client = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    static let clientID: [UInt8] = [0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    static let leased = IPv4Address(192, 168, 107, 50)
    static let zero = IPv4Address(rawValue: 0)
    static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)
    /// The time every golden exchange happens at.
    static let now: Int64 = 1_700_000_000

    static func identity(subnet: IPv4Subnet = subnet, gateway: IPv4Address = gateway) -> GatewayIdentity {
        GatewayIdentity(mac: gatewayMAC, ipv4: gateway, subnet: subnet, ipv6Prefix: nil, mtu: 1500,
                        domain: "default.internal", routesBeyondHost: false)
    }

    static func server(range: ClosedRange<IPv4Address> = range, subnet: IPv4Subnet = subnet,
                       reservations: [MACAddress: IPv4Address] = [:], store: LeaseStore? = nil) -> DHCPServer {
        DHCPServer(gateway: identity(subnet: subnet), range: range, leaseTime: 3600, reservations: reservations, store: store)
    }

    /// The n-th test client's MAC, 52:54:00:00:xx:xx.
    static func mac(_ n: Int) -> MACAddress { MACAddress(rawValue: 0x5254_0000_0000 | UInt64(n)) }
}

/// A reply the server gave: its verdict and the bytes it wrote (empty unless `.reply`).
struct DHCPOutcome {
    var verdict: Verdict
    var frame: [UInt8]
    /// The DHCP message of the reply, parsed with Proto.
    var message: DHCPMessage? {
        frame.withUnsafeBytes { bytes in
            guard let ethernet = EthernetFrame(validating: bytes), let ip = IPv4Header(validating: ethernet.payload),
                  let udp = UDPHeader(validating: ip.payload) else { return nil }
            return DHCPMessage.parse(udp.payload)
        }
    }
    var ipDestination: IPv4Address? {
        frame.withUnsafeBytes { bytes in
            EthernetFrame(validating: bytes).flatMap { IPv4Header(validating: $0.payload) }?.destination
        }
    }
    var ethernetDestination: MACAddress? {
        frame.withUnsafeBytes { EthernetFrame(validating: $0)?.destination }
    }
}

extension DHCPServer {
    /// Feeds `frame` and returns what came back; the reply buffer is prefilled with 0xa5.
    func exchange(_ frame: [UInt8], now: Int64 = DHCPNet.now, replyCapacity: Int = 2048) -> DHCPOutcome {
        var reply = [UInt8](repeating: 0xA5, count: replyCapacity)
        let verdict = frame.withUnsafeBytes { request in
            reply.withUnsafeMutableBytes { respond(to: request, into: $0, now: now) }
        }
        if case .reply(let length) = verdict { return DHCPOutcome(verdict: verdict, frame: Array(reply.prefix(length))) }
        return DHCPOutcome(verdict: verdict, frame: [])
    }

    /// DISCOVER then REQUEST (SELECTING) for `client`; the ACKed address, or nil.
    func lease(_ client: DHCPClient, now: Int64 = DHCPNet.now) -> IPv4Address? {
        guard let offer = exchange(client.frame(.discover), now: now).message, offer.messageType == .offer else { return nil }
        let ack = exchange(client.frame(.request, requested: offer.yiaddr, serverID: DHCPNet.gateway), now: now).message
        guard let ack, ack.messageType == .ack else { return nil }
        return ack.yiaddr
    }
}

/// A test client that builds its own request frames with Proto (for scenarios beyond the goldens).
struct DHCPClient {
    var mac: MACAddress
    var clientID: [UInt8]?
    var hostName: String?
    var xid: UInt32 = 0x1111_2222

    init(mac: MACAddress, clientID: [UInt8]? = nil, hostName: String? = nil) {
        self.mac = mac; self.clientID = clientID; self.hostName = hostName
    }

    /// A request frame of `type`; broadcast to 255.255.255.255 unless `ciaddr` is set (then unicast to the gateway).
    func frame(_ type: DHCPMessageType, requested: IPv4Address? = nil, serverID: IPv4Address? = nil,
               ciaddr: IPv4Address = DHCPNet.zero, broadcastFlag: Bool = false, giaddr: IPv4Address = DHCPNet.zero) -> [UInt8] {
        var options = [DHCPOption(.messageType, [type.rawValue])]
        if let requested { options.append(DHCPOption(.requestedIPAddress, address: requested)) }
        if let serverID { options.append(DHCPOption(.serverIdentifier, address: serverID)) }
        if let clientID { options.append(DHCPOption(.clientIdentifier, clientID)) }
        if let hostName { options.append(DHCPOption(.hostName, text: hostName)) }
        options.append(DHCPOption(.parameterRequestList, [1, 3, 6, 15, 26, 51, 54]))
        let message = DHCPMessage(op: .request, xid: xid, flags: broadcastFlag ? 0x8000 : 0, ciaddr: ciaddr,
                                  giaddr: giaddr, chaddr: mac.octets, options: options)
        let unicast = ciaddr != DHCPNet.zero
        return Self.frame(message, source: mac, ipSource: ciaddr,
                          ipDestination: unicast ? DHCPNet.gateway : DHCPNet.broadcast,
                          macDestination: unicast ? DHCPNet.gatewayMAC : .broadcast)
    }

    /// Wraps `message` in UDP 68→67, IPv4 and Ethernet.
    static func frame(_ message: DHCPMessage, source: MACAddress, ipSource: IPv4Address, ipDestination: IPv4Address,
                      macDestination: MACAddress, sourcePort: UInt16 = 68) -> [UInt8] {
        let udpLength = 8 + message.emitLength
        var bytes = [UInt8](repeating: 0, count: 14 + 20 + udpLength)
        bytes.withUnsafeMutableBytes { buffer in
            EthernetRepr(destination: macDestination, source: source, etherType: .ipv4).emit(into: buffer)
            message.emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[42...]))
            UDPRepr(sourcePort: sourcePort, destinationPort: 67).emit(
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[34...]),
                pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(source: ipSource, destination: ipDestination,
                                                                  protocol: .udp, length: udpLength))
            IPv4Repr(source: ipSource, destination: ipDestination, protocol: .udp, payloadLength: udpLength)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[14...]))
        }
        return bytes
    }
}

/// A store in memory that counts saves.
final class MemoryLeaseStore: LeaseStore {
    var leases: [Lease] = []
    var saves = 0
    func load() -> [Lease] { leases }
    func save(_ leases: [Lease]) { self.leases = leases; saves += 1 }
}

/// A fresh temporary directory, removed by `cleanUp`.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchd-dhcp-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs ProtoTests/Golden/check_dhcp_replies.py (scapy) over reply frames and their expectations.
enum DHCPScapy {
    static let script = Scapy.script("ProtoTests/Golden/check_dhcp_replies.py")

    /// Writes the manifest and runs the checker once over every case.
    static func check(_ cases: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        try Scapy.check(script: script, manifest: try JSONSerialization.data(withJSONObject: cases, options: [.prettyPrinted]),
                        cases: cases.count, file: file, line: line)
    }
}

extension Array where Element == UInt8 {
    var hex: String { map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
}
