// FileLeaseStore: the line format, atomic replacement, defensive reading, and a server restart that keeps every address.
import Foundation
import XCTest
import Proto
@testable import Switch

final class DHCPLeaseStoreTests: XCTestCase {
    var directory: URL!
    var path: String { directory.appendingPathComponent("leases").path }

    override func setUpWithError() throws { directory = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    let sample = [
        Lease(mac: DHCPNet.mac(1), ip: IPv4Address(192, 168, 107, 10), hostname: "alpha", expires: 1_700_003_600,
              clientID: [0x01, 0x52, 0x54, 0, 0, 0, 1]),
        Lease(mac: DHCPNet.mac(2), ip: IPv4Address(192, 168, 107, 11), hostname: nil, expires: 1_699_999_999, clientID: nil),
    ]

    func testRoundTripAndFormat() throws {
        let store = FileLeaseStore(path: path)
        XCTAssertEqual(store.load(), [], "no file yet")
        store.save(sample)
        XCTAssertEqual(store.load(), sample)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), """
            # switchd dhcp leases v1
            52:54:00:00:00:01 192.168.107.10 1700003600 01525400000001 alpha
            52:54:00:00:00:02 192.168.107.11 1699999999 - -

            """)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"), "renamed away")
        store.save([])
        XCTAssertEqual(store.load(), [])
    }

    func testCorruptFilesStartEmpty() throws {
        let store = FileLeaseStore(path: path)
        for text in [
            "garbage",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.10 1700003600 - alpha extra\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:0g 192.168.107.10 1700003600 - alpha\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.300 1700003600 - alpha\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.10 soon - alpha\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.10 1700003600 0 alpha\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.10 1700003600 - Not_A.Label\n",
            "# switchd dhcp leases v1\n52:54:00:00:00:01 192.168.107.10 1700003600 - alpha", // no newline: still fine
        ] {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            let loaded = store.load()
            if text.hasSuffix("alpha") {
                XCTAssertEqual(loaded.count, 1)
            } else {
                XCTAssertEqual(loaded, [], text)
            }
        }
        try Data([0x23, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(store.load(), [], "not UTF-8")
        // A server on a corrupt file starts empty and serves.
        try "nonsense\n".write(toFile: path, atomically: false, encoding: .utf8)
        let server = DHCPNet.server(store: store)
        XCTAssertNotNil(server.lease(DHCPClient(mac: DHCPNet.mac(1))))
        XCTAssertEqual(store.load().count, 1, "and the next save replaces the corrupt file")
    }

    func testUnwritableDirectoryDoesNotCrash() {
        let store = FileLeaseStore(path: directory.appendingPathComponent("missing/leases").path)
        store.save(sample)
        XCTAssertEqual(store.load(), [])
    }

    /// A restart is a new server on the same store: every client keeps its address, name and expiry.
    func testRestartKeepsEveryAddress() throws {
        let store = FileLeaseStore(path: path)
        let clients = (0..<20).map { n in
            DHCPClient(mac: DHCPNet.mac(n), clientID: n % 2 == 0 ? [0xFF, UInt8(n), 1, 2] : nil, hostName: "vm\(n)")
        }
        let before = DHCPNet.server(store: store)
        var addresses: [IPv4Address] = []
        for client in clients { addresses.append(try XCTUnwrap(before.lease(client))) }
        _ = before.exchange(clients[3].frame(.release, serverID: DHCPNet.gateway, ciaddr: addresses[3]), now: DHCPNet.now + 1)

        let after = DHCPNet.server(store: store)
        XCTAssertEqual(after.allLeases, before.allLeases)
        XCTAssertEqual(after.leases(now: DHCPNet.now + 1).count, 19)
        XCTAssertEqual(after.hostAddress(named: "vm7", now: DHCPNet.now + 1), addresses[7])
        // Clients that reboot and ask for their address get it; renewing ones too; new DISCOVERs get the same.
        for (n, client) in clients.enumerated() {
            let reply: DHCPMessage?
            switch n % 3 {
            case 0: reply = after.exchange(client.frame(.request, requested: addresses[n]), now: DHCPNet.now + 60).message
            case 1: reply = after.exchange(client.frame(.request, ciaddr: addresses[n]), now: DHCPNet.now + 60).message
            default: reply = after.exchange(client.frame(.discover), now: DHCPNet.now + 60).message
            }
            XCTAssertEqual(reply?.yiaddr, addresses[n], "client \(n)")
        }
        // A newcomer after the restart never gets one of them, even the released one.
        let newcomer = try XCTUnwrap(after.lease(DHCPClient(mac: DHCPNet.mac(500)), now: DHCPNet.now + 60))
        XCTAssertFalse(addresses.contains(newcomer))
    }

    /// Leases the configuration no longer allows are dropped on load.
    func testLoadDropsLeasesOutsideTheSubnetOrOnAnotherReservation() {
        let store = MemoryLeaseStore()
        store.leases = sample + [
            Lease(mac: DHCPNet.mac(3), ip: IPv4Address(10, 0, 0, 3), hostname: nil, expires: DHCPNet.now + 10, clientID: nil),
            Lease(mac: DHCPNet.mac(4), ip: IPv4Address(192, 168, 107, 40), hostname: nil, expires: DHCPNet.now + 10, clientID: nil),
            Lease(mac: DHCPNet.mac(5), ip: DHCPNet.gateway, hostname: nil, expires: DHCPNet.now + 10, clientID: nil),
        ]
        let server = DHCPNet.server(reservations: [DHCPNet.mac(9): IPv4Address(192, 168, 107, 40)], store: store)
        XCTAssertEqual(server.allLeases, sample)
    }
}
