// ForwardingDecisionTests: the forwarding policy (Bridge.swift) as a table, without sockets or a loop.
import XCTest
import Proto
@testable import Switch

final class ForwardingDecisionTests: XCTestCase {
    private static let now: UInt32 = 1000
    private static let ageing = 300
    private static let uplink: UInt16 = 6

    private func mac(_ n: UInt64) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | n) }
    private let gateway = MACAddress(rawValue: 0x5A94_EF00_0001)
    private let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    private let ipv6Multicast = MACAddress(rawValue: 0x3333_0000_0001)

    private var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: ForwardingDecisionTests.ageing)
    private var ports = UnsafeMutablePointer<PortState>.allocate(capacity: 8)

    override func setUp() {
        ports.initialize(repeating: PortState(), count: 8)
        for slot in [1, 2, 3, 4, 6] { ports[slot].phase = .active }
        ports[4].generation = 1  // slot 4 was freed and re-used since mac(4) was learned on it
        ports[5].phase = .closing  // slot 5 is being removed
        let now = Self.now
        _ = table.learn(mac(1), port: 1, generation: 0, now: now)
        _ = table.learn(mac(2), port: 2, generation: 0, now: now - 10)
        _ = table.learn(mac(3), port: 3, generation: 0, now: now - UInt32(Self.ageing))  // aged out
        _ = table.learn(mac(4), port: 4, generation: 0, now: now)
        _ = table.learn(mac(5), port: 5, generation: 0, now: now)
        _ = table.learn(mac(66), port: Self.uplink, generation: 0, now: now)
    }

    override func tearDown() {
        table.deallocate()
        ports.deallocate()
    }

    /// The policies of the three kinds of network.
    private var noServices: ForwardingPolicy { ForwardingPolicy() }
    private var isolated: ForwardingPolicy {
        ForwardingPolicy(gatewayMAC: gateway.rawValue, hasServices: true, uplink: ForwardingLoop.noUplink)
    }
    private var host: ForwardingPolicy {
        ForwardingPolicy(gatewayMAC: gateway.rawValue, hasServices: true, uplink: Self.uplink)
    }

    private struct Row {
        var name: String
        var policy: ForwardingPolicy
        var destination: MACAddress
        var ingress: UInt16 = 1
        var superFrame = false
        var servicesDeclined = false
        var expected: Decision
    }

    func testDecisionTable() {
        let rows: [Row] = [
            Row(name: "unknown unicast floods", policy: noServices, destination: mac(99), expected: .flood),
            Row(name: "learned destination goes to its port", policy: noServices, destination: mac(2), expected: .unicast(2)),
            Row(name: "learned destination from another port", policy: noServices, destination: mac(1), ingress: 2,
                expected: .unicast(1)),
            Row(name: "hairpin: destination on the ingress port", policy: noServices, destination: mac(1), ingress: 1,
                expected: .drop(.hairpin)),
            Row(name: "broadcast floods", policy: noServices, destination: broadcast, expected: .flood),
            Row(name: "multicast floods", policy: noServices, destination: ipv6Multicast, expected: .flood),
            Row(name: "aged entry floods", policy: noServices, destination: mac(3), expected: .flood),
            Row(name: "stale generation (slot re-used) floods", policy: noServices, destination: mac(4), expected: .flood),
            Row(name: "port being removed floods", policy: noServices, destination: mac(5), expected: .flood),
            Row(name: "gateway MAC without services is any MAC", policy: noServices, destination: gateway, expected: .flood),
            // With services.
            Row(name: "gateway MAC goes to the services", policy: isolated, destination: gateway, expected: .services),
            Row(name: "broadcast goes to the services", policy: isolated, destination: broadcast, expected: .services),
            Row(name: "multicast goes to the services", policy: host, destination: ipv6Multicast, expected: .services),
            Row(name: "broadcast the services declined floods", policy: isolated, destination: broadcast,
                servicesDeclined: true, expected: .flood),
            Row(name: "gateway frame declined, isolated: nobody else is the gateway", policy: isolated,
                destination: gateway, servicesDeclined: true, expected: .discard),
            Row(name: "gateway frame declined, host: the uplink", policy: host, destination: gateway,
                servicesDeclined: true, expected: .unicast(Self.uplink)),
            Row(name: "gateway super-frame skips the services, host: the uplink", policy: host, destination: gateway,
                superFrame: true, expected: .unicast(Self.uplink)),
            Row(name: "gateway super-frame skips the services, isolated: discarded", policy: isolated,
                destination: gateway, superFrame: true, expected: .discard),
            Row(name: "multicast super-frame skips the services and floods", policy: host, destination: ipv6Multicast,
                superFrame: true, expected: .flood),
            Row(name: "the uplink's own frames skip the services", policy: host, destination: broadcast,
                ingress: Self.uplink, expected: .flood),
            Row(name: "the uplink's frame to the gateway MAC is forwarded as any", policy: host, destination: gateway,
                ingress: Self.uplink, expected: .flood),
            Row(name: "unicast to a guest does not involve the services", policy: host, destination: mac(2),
                expected: .unicast(2)),
            Row(name: "to a MAC behind the uplink", policy: host, destination: mac(66), expected: .unicast(Self.uplink)),
        ]
        for row in rows {
            let decision = row.policy.decide(destination: row.destination, ingress: row.ingress, superFrame: row.superFrame,
                                             servicesDeclined: row.servicesDeclined, table: table,
                                             ports: UnsafePointer(ports), now: Self.now)
            XCTAssertEqual(decision, row.expected, row.name)
        }
    }

    func testSourceChecks() {
        XCTAssertEqual(ForwardingPolicy.refusedSource(broadcast), .badSource, "broadcast source")
        XCTAssertEqual(ForwardingPolicy.refusedSource(ipv6Multicast), .badSource, "multicast source")
        XCTAssertEqual(ForwardingPolicy.refusedSource(MACAddress(rawValue: 0)), .badSource, "zero source")
        XCTAssertNil(ForwardingPolicy.refusedSource(mac(1)), "unicast source")
    }
}
