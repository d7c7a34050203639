// DHCPServer against scapy's golden request/reply pairs (make_dhcp_golden.py), byte for byte, then checked by scapy.
import TestSupport
import XCTest
import Proto
@testable import Switch

final class DHCPServerGoldenTests: XCTestCase {
    /// Every message type through one server, in the order a client lives them.
    func testGoldenExchange() throws {
        let store = MemoryLeaseStore()
        let server = DHCPNet.server(store: store)
        let steps: [(String, [UInt8], [UInt8]?)] = [
            ("discover", DHCPGolden.discoverRequest, DHCPGolden.discoverReply),
            ("requestSelecting", DHCPGolden.requestSelectingRequest, DHCPGolden.requestSelectingReply),
            ("requestInitReboot", DHCPGolden.requestInitRebootRequest, DHCPGolden.requestInitRebootReply),
            ("requestRenewing", DHCPGolden.requestRenewingRequest, DHCPGolden.requestRenewingReply),
            ("requestRebinding", DHCPGolden.requestRebindingRequest, DHCPGolden.requestRebindingReply),
            ("requestForeign", DHCPGolden.requestForeignRequest, DHCPGolden.requestForeignReply),
            ("inform", DHCPGolden.informRequest, DHCPGolden.informReply),
            ("requestOtherServer", DHCPGolden.requestOtherServerRequest, nil),
            ("relayed", DHCPGolden.relayedRequest, nil),
        ]
        for (name, request, expected) in steps {
            let outcome = server.exchange(request)
            if let expected {
                XCTAssertEqual(outcome.verdict, .reply(length: expected.count), name)
                XCTAssertEqual(outcome.frame.hex, expected.hex, name)
            } else {
                XCTAssertEqual(outcome.verdict, .consumed, name)
            }
        }
        XCTAssertEqual(server.leases(now: DHCPNet.now),
                       [Lease(mac: DHCPNet.client, ip: DHCPNet.leased, hostname: "guest1", expires: DHCPNet.now + 3600,
                              clientID: DHCPNet.clientID)])
        XCTAssertEqual(server.hostAddress(named: "guest1"), DHCPNet.leased)
        XCTAssertEqual(server.hostName(for: DHCPNet.leased), "guest1")
        XCTAssertEqual(store.leases, server.leases(now: DHCPNet.now))

        // RELEASE 10 s later: the address is free, the record stays (same address next time).
        XCTAssertEqual(server.exchange(DHCPGolden.releaseRequest, now: DHCPNet.now + 10).verdict, .consumed)
        XCTAssertEqual(server.leases(now: DHCPNet.now + 10), [])
        XCTAssertNil(server.hostAddress(named: "guest1"))
        XCTAssertEqual(store.leases.map(\.expires), [DHCPNet.now + 10])
        XCTAssertEqual(server.exchange(DHCPGolden.discoverRequest, now: DHCPNet.now + 20).message?.yiaddr, DHCPNet.leased)

        // DECLINE: the address is quarantined and the record dropped; the next offer is another address.
        XCTAssertEqual(server.exchange(DHCPGolden.declineRequest, now: DHCPNet.now + 30).verdict, .consumed)
        XCTAssertEqual(store.leases, [])
        let next = try XCTUnwrap(server.exchange(DHCPGolden.discoverRequest, now: DHCPNet.now + 40).message)
        XCTAssertEqual(next.messageType, .offer)
        XCTAssertNotEqual(next.yiaddr, DHCPNet.leased)

        var expected = DHCPServer.Counters()
        (expected.offers, expected.acks, expected.naks, expected.releases, expected.declines, expected.informs) = (3, 4, 1, 1, 1, 1)
        (expected.relayed, expected.ignored) = (1, 1)
        XCTAssertEqual(server.counters, expected)
    }

    /// The replies that depend on no earlier exchange, each on a fresh server.
    func testGoldenFreshServer() {
        for (name, request, expected) in [
            ("discoverMinimal", DHCPGolden.discoverMinimalRequest, DHCPGolden.discoverMinimalReply),
            ("discoverNoListVLAN", DHCPGolden.discoverNoListVLANRequest, DHCPGolden.discoverNoListVLANReply),
            ("requestInitReboot", DHCPGolden.requestInitRebootRequest, DHCPGolden.requestInitRebootReply),
            ("requestForeign", DHCPGolden.requestForeignRequest, DHCPGolden.requestForeignReply),
            ("inform", DHCPGolden.informRequest, DHCPGolden.informReply),
        ] {
            let outcome = DHCPNet.server().exchange(request)
            XCTAssertEqual(outcome.frame.hex, expected.hex, name)
        }
        XCTAssertEqual(IPv4Address(DHCPGolden.addressByMAC), DHCPNet.server().exchange(DHCPGolden.discoverMinimalRequest).message?.yiaddr,
                       "the hash start agrees with the generator's FNV-1a")
    }

    /// The server's replies (not the golden ones) checked by scapy: types, addresses, options, checksums.
    func testRepliesCheckedByScapy() throws {
        let server = DHCPNet.server()
        let gateway = "192.168.107.1", leased = "192.168.107.50", clientID = "hex:" + DHCPNet.clientID.hex
        let leaseOptions: [String: Any] = [
            "server_id": gateway, "lease_time": 3600, "renewal_time": 1800, "rebinding_time": 3150,
            "subnet_mask": "255.255.255.0", "router": gateway, "name_server": gateway, "domain": "hex:" + Array("default.internal".utf8).hex,
            "interface-mtu": 1500, "broadcast_address": "192.168.107.255", "hostname": "hex:" + Array("guest1".utf8).hex,
            "client_id": clientID,
        ]
        func expect(_ type: String, ipDestination: String, ethDestination: String, yiaddr: String, ciaddr: String = "0.0.0.0",
                    flags: Int, options: [String: Any], absent: [String] = []) -> [String: Any] {
            ["type": type, "ip_src": gateway, "ip_dst": ipDestination, "eth_dst": ethDestination, "xid": 0x1234_ABCD,
             "yiaddr": yiaddr, "ciaddr": ciaddr, "flags": flags, "options": options, "absent": absent]
        }
        let client = "52:54:00:12:34:56", everyone = "ff:ff:ff:ff:ff:ff", bcast = "255.255.255.255"
        let cases: [(String, [UInt8], [String: Any])] = [
            ("offer", DHCPGolden.discoverRequest,
             expect("offer", ipDestination: bcast, ethDestination: everyone,
                    yiaddr: leased, flags: 0x8000, options: leaseOptions)),
            ("ack selecting", DHCPGolden.requestSelectingRequest,
             expect("ack", ipDestination: bcast, ethDestination: everyone, yiaddr: leased, flags: 0x8000, options: leaseOptions)),
            ("ack init-reboot", DHCPGolden.requestInitRebootRequest,
             expect("ack", ipDestination: leased, ethDestination: client, yiaddr: leased, flags: 0, options: leaseOptions)),
            ("ack renewing", DHCPGolden.requestRenewingRequest,
             expect("ack", ipDestination: leased, ethDestination: client, yiaddr: leased, ciaddr: leased, flags: 0,
                    options: leaseOptions)),
            ("ack rebinding", DHCPGolden.requestRebindingRequest,
             expect("ack", ipDestination: leased, ethDestination: client, yiaddr: leased, ciaddr: leased, flags: 0,
                    options: leaseOptions)),
            ("nak", DHCPGolden.requestForeignRequest,
             expect("nak", ipDestination: bcast, ethDestination: everyone, yiaddr: "0.0.0.0", flags: 0,
                    options: ["server_id": gateway, "client_id": clientID],
                    absent: ["lease_time", "router", "subnet_mask", "name_server"])),
            ("inform", DHCPGolden.informRequest,
             expect("ack", ipDestination: "192.168.107.77", ethDestination: client, yiaddr: "0.0.0.0",
                    ciaddr: "192.168.107.77", flags: 0,
                    options: ["server_id": gateway, "subnet_mask": "255.255.255.0", "router": gateway, "name_server": gateway,
                              "interface-mtu": 1500],
                    absent: ["lease_time", "renewal_time", "rebinding_time", "broadcast_address", "hostname"])),
            ("minimal offer", DHCPGolden.discoverMinimalRequest,
             expect("offer", ipDestination: DHCPGolden.addressByMAC, ethDestination: client, yiaddr: DHCPGolden.addressByMAC,
                    flags: 0, options: ["server_id": gateway, "lease_time": 3600, "subnet_mask": "255.255.255.0",
                                        "router": gateway, "name_server": gateway],
                    absent: ["renewal_time", "rebinding_time", "domain", "interface-mtu", "broadcast_address", "hostname",
                             "client_id"])),
        ]
        var manifest: [[String: Any]] = []
        for (name, request, expectation) in cases {
            let outcome = server.exchange(request)
            guard case .reply = outcome.verdict else { XCTFail("\(name): \(outcome.verdict)"); continue }
            manifest.append(["name": name, "frame": outcome.frame.hex, "expect": expectation])
        }
        try DHCPScapy.check(manifest)
    }
}
