// DHCPServer behaviour: stable addresses, reservations, no sharing, quarantine, exhaustion, NAKs, names, malformed input.
import TestSupport
import XCTest
import Proto
@testable import Switch

final class DHCPServerTests: XCTestCase {
    let now = DHCPNet.now

    func testStableAddressPerClientIdentifier() throws {
        let server = DHCPNet.server()
        let id: [UInt8] = [0xFF, 1, 2, 3, 4, 5, 6, 7, 8]
        let first = try XCTUnwrap(server.lease(DHCPClient(mac: DHCPNet.mac(1), clientID: id)))
        // The same client id from another NIC (or a re-created one) is the same client.
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(2), clientID: id)), first)
        XCTAssertEqual(server.leases(now: now).count, 1)
        XCTAssertEqual(server.leases(now: now).first?.mac, DHCPNet.mac(2))
        // After expiry, nobody else took it: still the same.
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(3), clientID: id), now: now + 86_400), first)
        // A fresh server hashes the id to the same first choice.
        XCTAssertEqual(DHCPNet.server().lease(DHCPClient(mac: DHCPNet.mac(9), clientID: id)), first)
        // Another id on the first MAC is another client.
        XCTAssertNotEqual(server.lease(DHCPClient(mac: DHCPNet.mac(1), clientID: [0xFF, 9, 9])), first)
    }

    func testStableAddressPerMAC() throws {
        let server = DHCPNet.server()
        let client = DHCPClient(mac: DHCPNet.mac(42))
        let first = try XCTUnwrap(server.lease(client))
        XCTAssertTrue(DHCPNet.range.contains(first))
        XCTAssertEqual(server.lease(client), first)
        XCTAssertEqual(DHCPNet.server().lease(client), first, "independent of arrival order and process")
        let other = DHCPNet.server()
        for n in 100..<110 { _ = other.lease(DHCPClient(mac: DHCPNet.mac(n))) }
        if !other.leases(now: now).contains(where: { $0.ip == first }) {
            XCTAssertEqual(other.lease(client), first)
        }
    }

    func testReservationsWin() throws {
        let reservedMAC = DHCPNet.mac(7)
        let reserved = IPv4Address(192, 168, 107, 250)
        let server = DHCPNet.server(reservations: [reservedMAC: reserved])
        // Another client asking for the reserved address gets something else, and a NAK if it insists.
        let intruder = DHCPClient(mac: DHCPNet.mac(8))
        let offer = try XCTUnwrap(server.exchange(intruder.frame(.discover, requested: reserved)).message)
        XCTAssertNotEqual(offer.yiaddr, reserved)
        XCTAssertEqual(server.exchange(intruder.frame(.request, requested: reserved)).message?.messageType, .nak)
        // The reserved MAC gets its address whatever it asks for, with or without a client id.
        let owner = DHCPClient(mac: reservedMAC, clientID: [1, 2, 3])
        XCTAssertEqual(server.exchange(owner.frame(.discover, requested: DHCPNet.leased)).message?.yiaddr, reserved)
        XCTAssertEqual(server.lease(owner), reserved)
        XCTAssertEqual(server.exchange(owner.frame(.request, requested: DHCPNet.leased)).message?.messageType, .nak)
        // A reservation outside the range (but in the subnet) works too; one on the gateway is refused.
        let outside = DHCPNet.server(range: IPv4Address(192, 168, 107, 100)...IPv4Address(192, 168, 107, 110),
                                     reservations: [reservedMAC: IPv4Address(192, 168, 107, 20), DHCPNet.mac(9): DHCPNet.gateway])
        XCTAssertEqual(outside.lease(DHCPClient(mac: reservedMAC)), IPv4Address(192, 168, 107, 20))
        XCTAssertEqual(outside.reservations.count, 1)
        let nine = try XCTUnwrap(outside.lease(DHCPClient(mac: DHCPNet.mac(9))))
        XCTAssertNotEqual(nine, DHCPNet.gateway)
    }

    func testTwoClientsNeverShareAnAddress() throws {
        let server = DHCPNet.server()
        // Interleaved: all discover, then all request; offers are held so none collide.
        let clients = (0..<253).map { DHCPClient(mac: DHCPNet.mac($0), hostName: "host\($0)") }
        var offered: [IPv4Address] = []
        for client in clients {
            let offer = try XCTUnwrap(server.exchange(client.frame(.discover)).message)
            offered.append(offer.yiaddr)
        }
        XCTAssertEqual(Set(offered).count, clients.count)
        for (client, ip) in zip(clients, offered) {
            XCTAssertEqual(server.exchange(client.frame(.request, requested: ip, serverID: DHCPNet.gateway)).message?.messageType, .ack)
        }
        let leases = server.leases(now: now)
        XCTAssertEqual(leases.count, 253)
        XCTAssertEqual(Set(leases.map(\.ip)).count, 253)
        XCTAssertFalse(leases.contains { $0.ip == DHCPNet.gateway || !DHCPNet.range.contains($0.ip) })
        // A 254th client finds nothing.
        XCTAssertEqual(server.exchange(DHCPClient(mac: DHCPNet.mac(999)).frame(.discover)).verdict, .consumed)
        // Nobody can take another's live address by asking for it.
        let thief = DHCPClient(mac: DHCPNet.mac(0))
        XCTAssertEqual(server.exchange(thief.frame(.request, requested: offered[1])).message?.messageType, .nak)
        XCTAssertEqual(server.exchange(thief.frame(.request, ciaddr: offered[2])).message?.messageType, .nak)
    }

    func testDeclineQuarantinesTheAddress() throws {
        let server = DHCPNet.server(range: IPv4Address(192, 168, 107, 2)...IPv4Address(192, 168, 107, 4))
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let first = try XCTUnwrap(server.lease(client))
        XCTAssertEqual(server.exchange(client.frame(.decline, requested: first, serverID: DHCPNet.gateway), now: now + 1).verdict,
                       .consumed)
        XCTAssertEqual(server.counters.declines, 1)
        XCTAssertEqual(server.leases(now: now + 1), [])
        // Nobody gets it during the quarantine, even when the pool runs dry.
        var given: [IPv4Address] = []
        for n in 1...3 { if let ip = server.lease(DHCPClient(mac: DHCPNet.mac(n)), now: now + 2) { given.append(ip) } }
        XCTAssertEqual(given.count, 2)
        XCTAssertFalse(given.contains(first))
        XCTAssertEqual(server.exchange(DHCPClient(mac: DHCPNet.mac(50)).frame(.request, requested: first), now: now + 3)
            .message?.messageType, .nak)
        // After it, the address is offered again.
        let later = now + 2 + server.quarantineTime
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(3)), now: later), first)
    }

    func testExhaustionIsSilentAndLoggedOncePerEpisode() throws {
        // A /29: network .0, gateway .1, hosts .2-.6, broadcast .7.
        let subnet = IPv4Subnet(network: IPv4Address(192, 168, 107, 0), prefixLength: 29)
        let server = DHCPNet.server(range: IPv4Address(192, 168, 107, 1)...IPv4Address(192, 168, 107, 7), subnet: subnet)
        var leased: [IPv4Address] = []
        for n in 0..<5 { leased.append(try XCTUnwrap(server.lease(DHCPClient(mac: DHCPNet.mac(n))))) }
        XCTAssertEqual(leased.sorted(), (2...6).map { IPv4Address(192, 168, 107, UInt8($0)) },
                       "never the gateway, network or broadcast address")
        XCTAssertFalse(server.exhaustionLogged)
        let latecomer = DHCPClient(mac: DHCPNet.mac(99))
        XCTAssertEqual(server.exchange(latecomer.frame(.discover)).verdict, .consumed)
        XCTAssertEqual(server.exchange(latecomer.frame(.discover)).frame, [])
        XCTAssertEqual(server.counters.exhausted, 2)
        XCTAssertTrue(server.exhaustionLogged)
        // Clients with a lease still get theirs back while the pool is dry.
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(0))), leased[0])
        XCTAssertTrue(server.exhaustionLogged, "the episode goes on")
        // Expired leases are reused only after expiry, oldest first.
        for (n, ip) in leased.enumerated().dropFirst() {
            XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(n)), now: now + 100 + Int64(n)), ip, "renewed")
        }
        XCTAssertNil(server.lease(latecomer, now: now + 3599))
        XCTAssertEqual(server.lease(latecomer, now: now + 3600), leased[0], "client 0's lease expired first")
        XCTAssertFalse(server.exhaustionLogged)
        XCTAssertEqual(Set(server.leases(now: now + 3600).map(\.ip)).count, server.leases(now: now + 3600).count)
        // Client 0 comes back: its address is gone, and nothing is free until another lease expires.
        XCTAssertNil(server.lease(DHCPClient(mac: DHCPNet.mac(0)), now: now + 3600))
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(0)), now: now + 3701), leased[1])
    }

    func testNAKs() throws {
        let server = DHCPNet.server()
        let alice = DHCPClient(mac: DHCPNet.mac(1)), bob = DHCPClient(mac: DHCPNet.mac(2))
        let aliceIP = try XCTUnwrap(server.lease(alice))
        let bobIP = try XCTUnwrap(server.lease(bob))
        func type(_ frame: [UInt8]) -> DHCPMessageType? { server.exchange(frame).message?.messageType }
        XCTAssertEqual(type(alice.frame(.request, requested: IPv4Address(10, 0, 0, 5))), .nak, "another network")
        XCTAssertEqual(type(alice.frame(.request, requested: bobIP)), .nak, "bob's lease")
        XCTAssertEqual(type(alice.frame(.request, ciaddr: bobIP)), .nak, "renewing bob's lease")
        XCTAssertEqual(type(alice.frame(.request, requested: DHCPNet.gateway)), .nak, "the gateway")
        XCTAssertEqual(type(alice.frame(.request, requested: IPv4Address(192, 168, 107, 255))), .nak, "broadcast")
        XCTAssertEqual(type(alice.frame(.request, requested: IPv4Address(192, 168, 107, 123))), .nak, "not its address")
        XCTAssertEqual(type(alice.frame(.request, requested: aliceIP)), .ack)
        XCTAssertEqual(type(alice.frame(.request, ciaddr: aliceIP)), .ack)
        let nak = try XCTUnwrap(server.exchange(alice.frame(.request, requested: bobIP)))
        XCTAssertEqual(nak.ipDestination, DHCPNet.broadcast)
        XCTAssertEqual(nak.ethernetDestination, .broadcast)
        XCTAssertEqual(nak.message?.yiaddr, DHCPNet.zero)
        XCTAssertNil(nak.message?.leaseTime)
        XCTAssertEqual(server.counters.naks, 7)
        XCTAssertEqual(server.leases(now: now).map(\.ip).sorted(), [aliceIP, bobIP].sorted())
    }

    func testRequestForAnotherServerDropsTheOffer() throws {
        let server = DHCPNet.server()
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let offered = try XCTUnwrap(server.exchange(client.frame(.discover)).message?.yiaddr)
        XCTAssertEqual(server.exchange(client.frame(.request, requested: IPv4Address(192, 168, 107, 9),
                                                    serverID: IPv4Address(192, 168, 107, 254))).verdict, .consumed)
        XCTAssertEqual(server.counters.ignored, 1)
        XCTAssertEqual(server.leases(now: now), [])
        // The address is free again for another client asking for it.
        let other = DHCPClient(mac: DHCPNet.mac(2))
        XCTAssertEqual(server.exchange(other.frame(.discover, requested: offered)).message?.yiaddr, offered)
    }

    func testReplyAddressing() throws {
        let server = DHCPNet.server()
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let unicast = server.exchange(client.frame(.discover))
        let ip = try XCTUnwrap(unicast.message?.yiaddr)
        XCTAssertEqual(unicast.ipDestination, ip)
        XCTAssertEqual(unicast.ethernetDestination, client.mac)
        let broadcast = server.exchange(client.frame(.discover, broadcastFlag: true))
        XCTAssertEqual(broadcast.ipDestination, DHCPNet.broadcast)
        XCTAssertEqual(broadcast.ethernetDestination, .broadcast)
        XCTAssertEqual(broadcast.message?.broadcast, true)
        _ = server.lease(client)
        let renew = server.exchange(client.frame(.request, ciaddr: ip, broadcastFlag: true))
        XCTAssertEqual(renew.ipDestination, ip, "ciaddr wins over the broadcast flag (RFC 2131 §4.1)")
        XCTAssertEqual(renew.message?.ciaddr, ip)
    }

    func testHostNamesNewerLeaseWins() throws {
        let server = DHCPNet.server()
        let first = try XCTUnwrap(server.lease(DHCPClient(mac: DHCPNet.mac(1), hostName: "Web.example.org")))
        XCTAssertEqual(server.hostAddress(named: "web"), first)
        XCTAssertEqual(server.hostAddress(named: "WEB"), first)
        let second = try XCTUnwrap(server.lease(DHCPClient(mac: DHCPNet.mac(2), hostName: "web"), now: now + 5))
        XCTAssertEqual(server.hostAddress(named: "web"), second)
        XCTAssertNil(server.hostName(for: first))
        XCTAssertEqual(server.hostName(for: second), "web")
        // A renewal without option 12 keeps the name; with another name, it changes.
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(2)), now: now + 6), second)
        XCTAssertEqual(server.hostName(for: second), "web")
        XCTAssertEqual(server.lease(DHCPClient(mac: DHCPNet.mac(2), hostName: "db_1"), now: now + 7), second)
        XCTAssertEqual(server.hostAddress(named: "db-1"), second)
        XCTAssertNil(server.hostAddress(named: "web"))
        XCTAssertNil(server.hostAddress(named: "db-1", now: now + 7 + 3600), "expired leases do not resolve")
        for (raw, label) in [("My Laptop", "my-laptop"), ("-x-", "x"), ("...", nil), ("ünï", "n"), ("\u{0}x", nil),
                             (String(repeating: "a", count: 80), String(repeating: "a", count: 63))] as [(String, String?)] {
            XCTAssertEqual(DHCPServer.sanitizedHostName(Array(raw.utf8)), label, raw)
        }
    }

    func testSavesAfterEveryLeaseChange() throws {
        let store = MemoryLeaseStore()
        let server = DHCPNet.server(store: store)
        let client = DHCPClient(mac: DHCPNet.mac(1))
        XCTAssertEqual(server.exchange(client.frame(.discover)).message?.messageType, .offer)
        XCTAssertEqual(store.saves, 0, "an offer is not a lease")
        let ip = try XCTUnwrap(server.lease(client))
        XCTAssertEqual(store.saves, 1)
        _ = server.exchange(client.frame(.request, ciaddr: ip), now: now + 100)
        XCTAssertEqual(store.saves, 2)
        XCTAssertEqual(store.leases.first?.expires, now + 100 + 3600)
        _ = server.exchange(client.frame(.release, serverID: DHCPNet.gateway, ciaddr: ip), now: now + 200)
        XCTAssertEqual(store.saves, 3)
        _ = server.exchange(client.frame(.decline, requested: ip, serverID: DHCPNet.gateway), now: now + 300)
        XCTAssertEqual(store.saves, 4)
        XCTAssertEqual(store.leases, [])
        _ = server.exchange(client.frame(.inform, ciaddr: IPv4Address(192, 168, 107, 99)))
        XCTAssertEqual(store.saves, 4, "INFORM changes no lease")
    }

    func testNotMine() {
        let server = DHCPNet.server()
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let message = DHCPMessage(op: .request, xid: 1, chaddr: client.mac.octets, options: [DHCPOption(.messageType, [1])])
        func frame(to ip: IPv4Address, port: UInt16 = 68) -> [UInt8] {
            DHCPClient.frame(message, source: client.mac, ipSource: DHCPNet.zero, ipDestination: ip, macDestination: .broadcast,
                             sourcePort: port)
        }
        XCTAssertEqual(server.exchange(frame(to: IPv4Address(192, 168, 107, 2))).verdict, .notMine, "another host")
        XCTAssertEqual(server.exchange(frame(to: IPv4Address(192, 168, 107, 255))).verdict, .notMine, "subnet broadcast")
        XCTAssertEqual(server.exchange(frame(to: DHCPNet.broadcast, port: 1234)).verdict, .notMine, "not from a client port")
        var toClientPort = frame(to: DHCPNet.broadcast)
        toClientPort[37] = 68
        XCTAssertEqual(server.exchange(toClientPort).verdict, .notMine, "to port 68")
        var tcp = frame(to: DHCPNet.broadcast)
        tcp[23] = 6
        XCTAssertEqual(server.exchange(tcp).verdict, .notMine, "TCP")
        var arp = frame(to: DHCPNet.broadcast)
        arp[13] = 0x06
        XCTAssertEqual(server.exchange(arp).verdict, .notMine, "ARP")
        XCTAssertEqual(server.exchange([0, 1, 2]).verdict, .notMine)
        XCTAssertEqual(server.exchange(frame(to: DHCPNet.gateway)).message?.messageType, .offer, "unicast to the gateway")
        XCTAssertEqual(server.counters.malformed, 0)
    }

    func testMalformedIsConsumedAndCounted() throws {
        let server = DHCPNet.server()
        var expected = 0
        func check(_ frame: [UInt8], _ why: String, line: UInt = #line) {
            XCTAssertEqual(server.exchange(frame).verdict, .consumed, why, line: line)
            expected += 1
            XCTAssertEqual(server.counters.malformed, expected, why, line: line)
        }
        let golden = DHCPGolden.discoverRequest
        // Truncated anywhere after the UDP ports: ours, and malformed.
        for length in stride(from: 38, to: golden.count, by: 7) { check(Array(golden.prefix(length)), "truncated to \(length)") }
        // Option lengths that overrun, or that RFC 2132 forbids; the UDP checksum is fixed up each time.
        func withOptions(_ options: [UInt8]) -> [UInt8] {
            rewrap(Array(golden[42..<(42 + 240)]) + options)
        }
        check(withOptions([53, 1, 1, 12, 200, 0x61, 255]), "host name overruns")
        check(withOptions([53, 1, 1, 61]), "length octet missing")
        check(withOptions([53, 1, 1]), "no End")
        check(withOptions([53, 4, 1, 255]), "message type overruns")
        check(withOptions([53, 1, 1, 50, 3, 1, 2, 3, 255]), "requested address of 3 octets")
        check(withOptions([12, 3, 0x61, 0x62, 0x63, 255]), "no message type (BOOTP)")
        check(withOptions([53, 1, 2, 255]), "OFFER from a client")
        var badCookie = Array(golden[42..<(42 + 240)]) + [53, 1, 1, 255]
        badCookie[236] = 0
        check(rewrap(badCookie), "bad magic cookie")
        var reply = Array(golden[42...])
        reply[0] = 2
        check(rewrap(reply), "BOOTREPLY to port 67")
        var badChecksum = golden
        badChecksum[41] ^= 0x40
        check(badChecksum, "UDP checksum")
        var badIPChecksum = golden
        badIPChecksum[25] ^= 0x01
        check(badIPChecksum, "IP header checksum")
        var noMAC = Array(golden[42...])
        noMAC[2] = 16
        check(rewrap(noMAC), "hlen 16")
        XCTAssertEqual(server.leases(now: now), [])
        XCTAssertEqual(server.counters.offers, 0)
        XCTAssertEqual(server.exchange(golden).message?.messageType, .offer, "still serving")
    }

    /// Random mutations of every golden request: never a crash, replies always within the buffer and parseable.
    func testFuzzMutationsNeverCrash() {
        var random = SplitMix64(seed: 0x5EED)
        let server = DHCPNet.server(range: IPv4Address(192, 168, 107, 2)...IPv4Address(192, 168, 107, 20),
                                    reservations: [DHCPNet.client: IPv4Address(192, 168, 107, 30)], store: MemoryLeaseStore())
        var verdicts: [String: Int] = [:]
        for round in 0..<20_000 {
            let (_, original) = DHCPGolden.requests[round % DHCPGolden.requests.count]
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                guard !bytes.isEmpty else { break }
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.removeLast(Int.random(in: 0...min(64, bytes.count), using: &random))
                case 2: if bytes.count > 282 { bytes[Int.random(in: 282..<bytes.count, using: &random)] = UInt8.random(in: 0...9, using: &random) }
                default: bytes += (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                }
            }
            // Half of them with a repaired UDP checksum, so the DHCP parser sees the mutation.
            if round % 2 == 0, bytes.count > 42 { bytes = repairChecksums(bytes) }
            let outcome = server.exchange(bytes, now: now + Int64(round), replyCapacity: 600)
            switch outcome.verdict {
            case .notMine: verdicts["notMine", default: 0] += 1
            case .consumed: verdicts["consumed", default: 0] += 1
            case .reply(let length):
                verdicts["reply", default: 0] += 1
                XCTAssertLessThanOrEqual(length, 600)
                XCTAssertNotNil(outcome.message)
            }
        }
        XCTAssertGreaterThan(verdicts["reply", default: 0], 100, "\(verdicts)")
        XCTAssertGreaterThan(server.counters.malformed, 100, "\(verdicts)")
        let leases = server.leases(now: now + 20_000)
        XCTAssertEqual(Set(leases.map(\.ip)).count, leases.count)
    }

    func testTooSmallReplyBufferIsConsumed() {
        let server = DHCPNet.server()
        XCTAssertEqual(server.exchange(DHCPGolden.discoverRequest, replyCapacity: 300).verdict, .consumed)
    }

    // MARK: Helpers

    /// The golden DISCOVER's headers around another DHCP message, with lengths and checksums recomputed.
    private func rewrap(_ message: [UInt8]) -> [UInt8] {
        let golden = DHCPGolden.discoverRequest
        var frame = Array(golden[0..<42]) + message
        let udpLength = 8 + message.count
        frame[16] = UInt8((20 + udpLength) >> 8); frame[17] = UInt8((20 + udpLength) & 0xFF)
        frame[38] = UInt8(udpLength >> 8); frame[39] = UInt8(udpLength & 0xFF)
        return repairChecksums(frame)
    }

    /// Recomputes the IPv4 header and UDP checksums of an untagged frame, if its headers are whole.
    private func repairChecksums(_ frame: [UInt8]) -> [UInt8] {
        var frame = frame
        frame.withUnsafeMutableBytes { bytes in
            guard bytes.count >= 42, bytes[14] == 0x45 else { return }
            let packet = UnsafeMutableRawBufferPointer(rebasing: bytes[14...])
            guard let ip = MutableIPv4Header(validating: packet) else { return }
            ip.fillChecksum()
            guard let udp = MutableUDPHeader(validating: ip.payload) else { return }
            udp.fillChecksum(pseudoHeaderSum: ip.header.payloadPseudoHeaderSum)
        }
        return frame
    }
}

/// SplitMix64, so random tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
