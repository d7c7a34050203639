// DHCP fairness: a port holds at most `leasesPerPort` leases and offers; renewals, reservations and port removal.
import TestSupport
import XCTest
import Proto
@testable import Switch

final class DHCPFairnessTests: XCTestCase {
    let now = DHCPNet.now
    let guest = DHCPPort(slot: 1, generation: 0)
    let hostile = DHCPPort(slot: 2, generation: 0)

    private func server(cap: Int = 4, reservations: [MACAddress: IPv4Address] = [:],
                        store: LeaseStore? = nil) -> DHCPServer {
        let server = DHCPServer(gateway: DHCPNet.identity(), range: DHCPNet.range, leaseTime: 3600,
                                reservations: reservations, store: store, leasesPerPort: cap)
        server.messagesPerSecondPerPort = .max   // these tests send everything in the same second
        return server
    }

    /// DISCOVER then REQUEST (SELECTING) through `port`; the ACKed address, or nil.
    private func lease(_ server: DHCPServer, _ client: DHCPClient, port: DHCPPort?, now: Int64? = nil) -> IPv4Address? {
        let time = now ?? self.now
        guard let offer = server.exchange(client.frame(.discover), now: time, port: port).message,
              offer.messageType == .offer else { return nil }
        let ack = server.exchange(client.frame(.request, requested: offer.yiaddr, serverID: DHCPNet.gateway),
                                  now: time, port: port).message
        return ack?.messageType == .ack ? ack?.yiaddr : nil
    }

    /// The starvation attempt of issue 10: 253 fresh MACs DISCOVER, then REQUEST, all on one port.
    func testOnePortCannotTakeThePool() throws {
        let server = server()
        let clients = (0..<253).map { DHCPClient(mac: DHCPNet.mac(1000 + $0)) }
        var offered: [IPv4Address?] = []
        for client in clients {
            let outcome = server.exchange(client.frame(.discover), now: now, port: hostile)
            offered.append(outcome.message?.yiaddr)
            if outcome.message == nil { XCTAssertEqual(outcome.verdict, .consumed, "a capped DISCOVER gets silence") }
        }
        XCTAssertEqual(offered.compactMap { $0 }.count, 4)
        XCTAssertEqual(server.counters.offers, 4)
        XCTAssertEqual(server.counters.capped, 249)
        // REQUESTs: the four with offers get ACKs; the others silence (no NAK, which would be broadcast).
        var acked = 0
        for (n, client) in clients.enumerated() {
            let requested = offered[n] ?? IPv4Address(192, 168, 107, UInt8(2 + n))
            let reply = server.exchange(client.frame(.request, requested: requested, serverID: DHCPNet.gateway),
                                        now: now + 1, port: hostile)
            if reply.message?.messageType == .ack { acked += 1 } else { XCTAssertEqual(reply.verdict, .consumed) }
        }
        XCTAssertEqual(acked, 4)
        XCTAssertEqual(server.counters.naks, 0)
        XCTAssertEqual(server.counters.capped, 249 + 249)
        XCTAssertEqual(server.heldCount(of: hostile, now: now + 1), 4)
        XCTAssertEqual(server.leases(now: now + 1).count, 4)
        // A newcomer on another port still gets an address.
        XCTAssertNotNil(lease(server, DHCPClient(mac: DHCPNet.mac(1)), port: guest, now: now + 2))
        XCTAssertEqual(server.heldCount(of: guest, now: now + 2), 1)
    }

    func testRenewingIsNeverRefused() throws {
        let server = server(cap: 2)
        let a = DHCPClient(mac: DHCPNet.mac(1)), b = DHCPClient(mac: DHCPNet.mac(2))
        let ipA = try XCTUnwrap(lease(server, a, port: guest))
        let ipB = try XCTUnwrap(lease(server, b, port: guest))
        XCTAssertNil(lease(server, DHCPClient(mac: DHCPNet.mac(3)), port: guest), "the port is full")
        // RENEWING (unicast, ciaddr), INIT-REBOOT (option 50) and a fresh DISCOVER of a holder all work.
        XCTAssertEqual(server.exchange(a.frame(.request, ciaddr: ipA), now: now + 1800, port: guest).message?.messageType, .ack)
        XCTAssertEqual(server.exchange(b.frame(.request, requested: ipB), now: now + 1800, port: guest).message?.messageType, .ack)
        XCTAssertEqual(server.exchange(a.frame(.discover), now: now + 1800, port: guest).message?.yiaddr, ipA)
        XCTAssertEqual(lease(server, a, port: guest, now: now + 1801), ipA)
        XCTAssertEqual(server.counters.capped, 1, "the newcomer's DISCOVER and nothing else")
    }

    func testFreedSlotsCountAgain() throws {
        let server = server(cap: 1)
        let a = DHCPClient(mac: DHCPNet.mac(1)), b = DHCPClient(mac: DHCPNet.mac(2))
        // An offer nobody takes holds the slot only for offerHoldTime.
        XCTAssertEqual(server.exchange(a.frame(.discover), now: now, port: guest).message?.messageType, .offer)
        XCTAssertNil(server.exchange(b.frame(.discover), now: now + 1, port: guest).message)
        XCTAssertEqual(server.exchange(b.frame(.discover), now: now + server.offerHoldTime + 1, port: guest)
            .message?.messageType, .offer)
        // A RELEASE frees it at once.
        let t = now + 100
        let ipB = try XCTUnwrap(lease(server, b, port: guest, now: t))
        XCTAssertNil(lease(server, a, port: guest, now: t))
        _ = server.exchange(b.frame(.release, serverID: DHCPNet.gateway, ciaddr: ipB), now: t + 1, port: guest)
        XCTAssertNotNil(lease(server, a, port: guest, now: t + 2))
        // So does expiry.
        XCTAssertNil(lease(server, b, port: guest, now: t + 3))
        XCTAssertNotNil(lease(server, b, port: guest, now: t + 2 + 3600 + 1))
    }

    func testReservationsAreExempt() throws {
        let reserved = DHCPNet.mac(7)
        let server = server(cap: 1, reservations: [reserved: IPv4Address(192, 168, 107, 250)])
        XCTAssertNotNil(lease(server, DHCPClient(mac: DHCPNet.mac(1)), port: guest))
        XCTAssertEqual(lease(server, DHCPClient(mac: reserved), port: guest), IPv4Address(192, 168, 107, 250))
        XCTAssertEqual(server.heldCount(of: guest, now: now), 1, "the reservation does not count")
        XCTAssertEqual(server.counters.capped, 0)
    }

    func testWithoutAPortNothingIsCapped() {
        let server = server(cap: 1)
        for n in 0..<10 { XCTAssertNotNil(lease(server, DHCPClient(mac: DHCPNet.mac(n)), port: nil)) }
        XCTAssertEqual(server.counters.capped, 0)
    }

    /// A lease read back after a restart belongs to no port; the first port it renews through gets it.
    func testRestoredLeaseBindsToTheFirstPortThatRenewsIt() throws {
        let store = MemoryLeaseStore()
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let ip = try XCTUnwrap(lease(server(store: store), client, port: guest))
        let restarted = server(cap: 1, store: store)
        XCTAssertEqual(restarted.heldCount(of: guest, now: now), 0)
        XCTAssertNotNil(lease(restarted, DHCPClient(mac: DHCPNet.mac(2)), port: hostile))
        // The port is full, but renewing a lease of one's own is never refused.
        XCTAssertEqual(restarted.exchange(client.frame(.request, ciaddr: ip), now: now + 60, port: hostile)
            .message?.messageType, .ack)
        XCTAssertEqual(restarted.heldCount(of: hostile, now: now + 60), 2)
    }

    func testClientMovesWithItsPort() throws {
        let server = server(cap: 1)
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let ip = try XCTUnwrap(lease(server, client, port: guest))
        XCTAssertEqual(server.exchange(client.frame(.request, ciaddr: ip), now: now + 10, port: hostile).message?.messageType, .ack)
        XCTAssertEqual(server.heldCount(of: guest, now: now + 10), 0)
        XCTAssertEqual(server.heldCount(of: hostile, now: now + 10), 1)
    }

    /// A flood from one port is dropped unread past `messagesPerSecondPerPort`; other ports and
    /// the next second are unaffected.
    func testMessagesPerPortAreRateLimited() throws {
        let server = server(cap: 1000)
        server.messagesPerSecondPerPort = 10
        var answered = 0
        for n in 0..<30 where server.exchange(DHCPClient(mac: DHCPNet.mac(100 + n)).frame(.discover), now: now, port: hostile).message != nil {
            answered += 1
        }
        XCTAssertEqual(answered, 10)
        XCTAssertEqual(server.counters.rateLimited, 20)
        XCTAssertEqual(server.counters.malformed, 0, "dropped before parsing, not counted as anything else")
        XCTAssertNotNil(server.exchange(DHCPClient(mac: DHCPNet.mac(1)).frame(.discover), now: now, port: guest).message)
        XCTAssertNotNil(server.exchange(DHCPClient(mac: DHCPNet.mac(2)).frame(.discover), now: now + 1, port: hostile).message)
        // Not DHCP at all is still not the server's, whatever the rate.
        XCTAssertEqual(server.exchange([UInt8](repeating: 0, count: 60), now: now, port: hostile).verdict, .notMine)
    }

    /// Quarantining by DECLINE would starve the pool past any cap: only the address's own client may.
    func testOnlyTheHolderCanDecline() throws {
        let server = server()
        let thief = DHCPClient(mac: DHCPNet.mac(66))
        for last in 2...254 {
            _ = server.exchange(thief.frame(.decline, requested: IPv4Address(192, 168, 107, UInt8(last)), serverID: DHCPNet.gateway),
                                now: now, port: hostile)
        }
        XCTAssertEqual(server.counters.declines, 0)
        XCTAssertEqual(server.counters.ignored, 253)
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let ip = try XCTUnwrap(lease(server, client, port: guest, now: now + 1), "nothing was quarantined")
        _ = server.exchange(thief.frame(.decline, requested: ip, serverID: DHCPNet.gateway), now: now + 2, port: hostile)
        XCTAssertEqual(server.leases(now: now + 2).map(\.ip), [ip], "another client's lease stays")
        _ = server.exchange(client.frame(.decline, requested: ip, serverID: DHCPNet.gateway), now: now + 3, port: guest)
        XCTAssertEqual(server.counters.declines, 1, "the holder's DECLINE counts")
        XCTAssertEqual(server.leases(now: now + 3), [])
    }

    func testPortRemovalKeepsLeasesByDefault() throws {
        let store = MemoryLeaseStore()
        let server = server(cap: 1, store: store)
        let client = DHCPClient(mac: DHCPNet.mac(1))
        let ip = try XCTUnwrap(lease(server, client, port: guest))
        let saves = store.saves
        XCTAssertEqual(server.portRemoved(guest, release: false, now: now + 5), 0)
        XCTAssertEqual(server.leases(now: now + 5).map(\.ip), [ip], "the lease runs on")
        XCTAssertEqual(store.saves, saves, "nothing changed, nothing saved")
        // The slot comes back as another port (new generation): it starts empty, and the old client
        // renewing through it is welcome.
        let reused = DHCPPort(slot: guest.slot, generation: guest.generation &+ 1)
        XCTAssertEqual(server.heldCount(of: reused, now: now + 5), 0)
        XCTAssertEqual(server.exchange(client.frame(.request, ciaddr: ip), now: now + 6, port: reused).message?.messageType, .ack)
    }

    func testPortRemovalReleasesWhenConfigured() throws {
        let store = MemoryLeaseStore()
        let server = server(cap: 2, store: store)
        let a = DHCPClient(mac: DHCPNet.mac(1)), b = DHCPClient(mac: DHCPNet.mac(2)), other = DHCPClient(mac: DHCPNet.mac(3))
        let ipA = try XCTUnwrap(lease(server, a, port: guest))
        XCTAssertEqual(server.exchange(b.frame(.discover), now: now, port: guest).message?.messageType, .offer)
        let ipOther = try XCTUnwrap(lease(server, other, port: hostile))
        XCTAssertEqual(server.portRemoved(guest, release: true, now: now + 5), 1)
        XCTAssertEqual(server.leases(now: now + 5).map(\.ip), [ipOther], "only the other port's lease is left")
        XCTAssertEqual(store.leases.first { $0.ip == ipA }?.expires, now + 5, "saved as released")
        // The record stays the client's stable address: it gets it back on its next port.
        XCTAssertEqual(lease(server, a, port: DHCPPort(slot: 3, generation: 0), now: now + 10), ipA)
        XCTAssertEqual(server.portRemoved(guest, release: true, now: now + 11), 0, "twice is harmless")
    }
}

extension DHCPServer {
    /// `exchange` through a port.
    func exchange(_ frame: [UInt8], now: Int64, port: DHCPPort?) -> DHCPOutcome {
        var reply = [UInt8](repeating: 0xA5, count: 2048)
        let verdict = frame.withUnsafeBytes { request in
            reply.withUnsafeMutableBytes { respond(to: request, into: $0, now: now, port: port) }
        }
        if case .reply(let length) = verdict { return DHCPOutcome(verdict: verdict, frame: Array(reply.prefix(length))) }
        return DHCPOutcome(verdict: verdict, frame: [])
    }
}
