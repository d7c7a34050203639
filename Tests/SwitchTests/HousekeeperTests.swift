// Housekeeper: lease saves run on its thread, coalesce in a burst, end with the latest snapshot, and flush on stop;
// periodic jobs (the resolv.conf check) run there too and hand their results over in a Mailbox.
import Foundation
import SwitchSys
import Glibc
import XCTest
import Proto
@testable import Switch
import SwitchSys

/// A store that records which thread saved and can be slow, like a disk with fsync.
final class SlowRecordingStore: LeaseStore, @unchecked Sendable {
    private let lock = NSLock()
    private var saved: [[Lease]] = []
    private var threads: Set<Int32> = []
    let delay: useconds_t

    init(delay: useconds_t) { self.delay = delay }

    func load() -> [Lease] { [] }
    func save(_ leases: [Lease]) {
        usleep(delay)
        lock.lock(); defer { lock.unlock() }
        saved.append(leases)
        threads.insert(PosixThread.currentID())
    }

    var saves: [[Lease]] { lock.lock(); defer { lock.unlock() }; return saved }
    var savingThreads: Set<Int32> { lock.lock(); defer { lock.unlock() }; return threads }
}

final class HousekeeperTests: XCTestCase {
    func testSavesRunOffTheCallingThreadAndCoalesce() throws {
        let housekeeper = Housekeeper()
        let slow = SlowRecordingStore(delay: 20_000)   // 20 ms per save
        let store = BackgroundLeaseStore(file: slow, housekeeper: housekeeper)
        try housekeeper.start()
        defer { housekeeper.stop() }
        let server = DHCPNet.server(store: store)
        // A burst: 200 clients lease (200 saves asked for) far faster than 200 × 20 ms.
        let started = DispatchTime.now()
        for n in 0..<200 { XCTAssertNotNil(server.lease(DHCPClient(mac: DHCPNet.mac(n)))) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        housekeeper.waitUntilIdle()
        let saves = slow.saves
        print("200 leases in \(elapsed) s; \(saves.count) saves written")
        XCTAssertFalse(slow.savingThreads.contains(PosixThread.currentID()), "no save ran on the thread that served DHCP")
        XCTAssertEqual(slow.savingThreads.count, 1)
        XCTAssertLessThan(saves.count, 200, "saves coalesce")
        XCTAssertGreaterThanOrEqual(saves.count, 1)
        XCTAssertEqual(saves.last, server.allLeases, "the last write is the latest snapshot")
    }

    func testBurstEndsWithTheCorrectFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("leases").path
        let housekeeper = Housekeeper()
        let store = BackgroundLeaseStore(file: FileLeaseStore(path: path), housekeeper: housekeeper)
        try housekeeper.start()
        let server = DHCPNet.server(store: store)
        for n in 0..<100 {
            let client = DHCPClient(mac: DHCPNet.mac(n))
            let ip = try XCTUnwrap(server.lease(client))
            if n % 3 == 0 { _ = server.exchange(client.frame(.release, serverID: DHCPNet.gateway, ciaddr: ip), now: DHCPNet.now + 1) }
        }
        housekeeper.waitUntilIdle()
        XCTAssertEqual(FileLeaseStore(path: path).load(), server.allLeases)
        XCTAssertLessThanOrEqual(housekeeper.completed, 134)
        housekeeper.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    /// What SIGTERM relies on: `stop` writes the snapshot still pending, with or without the thread.
    func testStopFlushesThePendingSnapshot() throws {
        for started in [true, false] {
            let slow = SlowRecordingStore(delay: 50_000)
            let housekeeper = Housekeeper()
            let store = BackgroundLeaseStore(file: slow, housekeeper: housekeeper)
            if started { try housekeeper.start() }
            let server = DHCPNet.server(store: store)
            for n in 0..<5 { _ = server.lease(DHCPClient(mac: DHCPNet.mac(n))) }
            housekeeper.stop()
            XCTAssertEqual(slow.saves.last, server.allLeases, "started: \(started)")
            XCTAssertEqual(slow.saves.last?.count, 5)
            housekeeper.stop()  // idempotent
        }
    }

    /// What NetworkServices wires up for resolv.conf: a stat every interval on the housekeeper, a
    /// changed list posted once, taken by the loop without blocking.
    func testResolvConfIsCheckedOnTheHousekeeperAndHandedOver() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("resolv.conf").path
        try "nameserver 192.0.2.1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let source = ResolvConfSource(path: path)
        let mailbox = Mailbox(initial: source.currentUpstreams())
        let housekeeper = Housekeeper()
        let threads = SlowRecordingStore(delay: 0)
        housekeeper.every(seconds: 1) {
            mailbox.post(source.currentUpstreams())
            threads.save([])
        }
        try housekeeper.start()
        defer { housekeeper.stop() }
        usleep(1_300_000)
        XCTAssertNil(mailbox.take(), "unchanged: nothing posted")
        try "nameserver 192.0.2.2\nnameserver 192.0.2.3\n".write(toFile: path, atomically: true, encoding: .utf8)
        var taken: [UpstreamAddress]?
        for _ in 0..<40 where taken == nil {
            usleep(100_000)
            taken = mailbox.take()
        }
        XCTAssertEqual(taken, [.ipv4(IPv4Address(192, 0, 2, 2)), .ipv4(IPv4Address(192, 0, 2, 3))])
        XCTAssertNil(mailbox.take(), "taken once")
        XCTAssertGreaterThanOrEqual(threads.saves.count, 2)
        XCTAssertFalse(threads.savingThreads.contains(PosixThread.currentID()))
    }

    /// The whole path: a Dataplane with a state directory serves a lease and is shut down at once;
    /// the file holds the lease, written by the housekeeping thread.
    func testDataplaneShutdownSavesTheLeases() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path, state = directory.appendingPathComponent("state").path
        mkdir(run, 0o755)
        mkdir(state, 0o755)
        let spec = NetworkSpec(name: "hk", subnet: IPv4Subnet("192.168.107.0/24")!)
        let dataplane = try Dataplane(runDir: run, stateDir: state, network: spec)
        try dataplane.start()
        let (ours, theirs) = try Socket.connectedPair(Int32(SOCK_DGRAM.rawValue))
        defer { close(theirs) }
        let command = LoopCommand(.attach(fd: ours, kind: .dgram, offload: false, peer: "test"))
        XCTAssertTrue(dataplane.runOnLoop(command, runHere: false))
        _ = try command.portID.get()
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(theirs, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let client = DHCPClient(mac: DHCPNet.mac(5))
        func ask(_ frame: [UInt8]) -> DHCPMessage? {
            _ = frame.withUnsafeBytes { send(theirs, $0.baseAddress, $0.count, 0) }
            var reply = [UInt8](repeating: 0, count: 2048)
            while true {
                let n = reply.withUnsafeMutableBytes { recv(theirs, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return nil }
                let outcome = DHCPOutcome(verdict: .reply(length: n), frame: Array(reply.prefix(n)))
                if let message = outcome.message, message.op == .reply { return message }   // skip RAs
            }
        }
        let offer = try XCTUnwrap(ask(client.frame(.discover)))
        let ack = try XCTUnwrap(ask(client.frame(.request, requested: offer.yiaddr, serverID: IPv4Address(192, 168, 107, 1))))
        XCTAssertEqual(ack.messageType, .ack)
        dataplane.shutdown()
        let leases = FileLeaseStore(path: "\(state)/hk/leases").load()
        XCTAssertEqual(leases.map(\.ip), [ack.yiaddr])
        XCTAssertEqual(leases.map(\.mac), [client.mac])
    }
}
