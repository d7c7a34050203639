// ShardTests: `switchd run --threads N` (Shards/): the SPSC ring, the shard-aware decision, MAC
// replication between shards by events, and buffer accounting across shards (pools back where they
// started after frames crossed).
import Glibc
import Proto
import XCTest
@testable import Switch
import SwitchSys

final class ShardRingTests: XCTestCase {
    func testEmptyFullOrderAndWrap() {
        let ring = ShardRing<UInt32>(capacity: 8, empty: 0)
        defer { ring.deallocate() }
        XCTAssertEqual(ring.capacity, 8)
        XCTAssertNil(ring.pop(), "a new ring is empty")
        XCTAssertEqual(ring.count, 0)
        XCTAssertEqual(ring.space, 8)
        for i in 0..<8 { XCTAssertTrue(ring.push(UInt32(i)), "push \(i)") }
        XCTAssertFalse(ring.push(99), "a full ring refuses")
        XCTAssertEqual(ring.count, 8)
        XCTAssertEqual(ring.space, 0)
        for i in 0..<8 { XCTAssertEqual(ring.pop(), UInt32(i), "in order") }
        XCTAssertNil(ring.pop(), "empty again")
        // Past the UInt16 index wrap: 70 000 entries through 8 slots, in order, never more than 8 held.
        var next: UInt32 = 0, expected: UInt32 = 0
        while expected < 70_000 {
            while ring.space > 0 && next < 70_000 { XCTAssertTrue(ring.push(next)); next += 1 }
            XCTAssertLessThanOrEqual(ring.count, 8)
            while let value = ring.pop() {
                XCTAssertEqual(value, expected)
                expected += 1
            }
        }
        XCTAssertEqual(ring.count, 0)
    }

    func testCapacityRoundsUpToAPowerOfTwo() {
        let ring = ShardRing<UInt32>(capacity: 600, empty: 0)
        defer { ring.deallocate() }
        XCTAssertEqual(ring.capacity, 1024)
    }

    func testTwoThreadsKeepOrder() throws {
        let ring = ShardRing<UInt32>(capacity: 64, empty: 0)
        defer { ring.deallocate() }
        let total: UInt32 = 200_000
        let producer = try PosixThread.start("ring producer") {
            var i: UInt32 = 0
            while i < total { if ring.push(i) { i += 1 } }
        }
        var expected: UInt32 = 0
        var wrong = 0
        while expected < total {
            if let value = ring.pop() {
                if value != expected { wrong += 1 }
                expected += 1
            }
        }
        PosixThread.join(producer)
        XCTAssertEqual(wrong, 0, "entries out of order or torn")
    }
}

final class ShardDecisionTests: XCTestCase {
    private static let now: UInt32 = 1000
    private static let trunk: UInt16 = 7  // the trunk to shard 0, on shard 1
    private func mac(_ n: UInt64) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | n) }
    private let gateway = MACAddress(rawValue: 0x5A94_EF00_0001)
    private let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)

    func testDecisionOnAShardPastTheFirst() {
        var table = MACTable(capacity: 64, maxPorts: 8, limitPerPort: 64, ageing: 300)
        let ports = UnsafeMutablePointer<PortState>.allocate(capacity: 8)
        defer { table.deallocate(); ports.deallocate() }
        ports.initialize(repeating: PortState(), count: 8)
        for slot in [1, 2, 7] { ports[slot].phase = .active }
        ports[7].kind = .shard
        _ = table.learn(mac(2), port: 2, generation: 0, now: Self.now)
        _ = table.learn(mac(70), port: Self.trunk, generation: 0, now: Self.now)  // a station of shard 0
        let policy = ForwardingPolicy(gatewayMAC: gateway.rawValue, hasServices: false, uplink: ForwardingLoop.noUplink,
                                      remoteGateway: Self.trunk)
        let rows: [(String, MACAddress, UInt16, Bool, Decision)] = [
            ("the gateway is on shard 0", gateway, 1, false, .unicast(Self.trunk)),
            ("a super-frame to the gateway too (the uplink is there)", gateway, 1, true, .unicast(Self.trunk)),
            ("a gateway frame from shard 0 is not ours", gateway, Self.trunk, false, .discard),
            ("broadcast floods (shard 0 offers it to the services)", broadcast, 1, false, .flood),
            ("a station of this shard", mac(2), 1, false, .unicast(2)),
            ("a station of shard 0, learned by event", mac(70), 1, false, .unicast(Self.trunk)),
            ("from shard 0 to a station here", mac(2), Self.trunk, false, .unicast(2)),
            ("unknown unicast floods", mac(99), 1, false, .flood),
        ]
        for (name, destination, ingress, superFrame, expected) in rows {
            let decision = policy.decide(destination: destination, ingress: ingress, superFrame: superFrame,
                                         servicesDeclined: false, table: table, ports: UnsafePointer(ports), now: Self.now)
            XCTAssertEqual(decision, expected, name)
        }
    }

    func testTrunksAreExemptFromTheMACLimit() {
        var table = MACTable(capacity: 256, maxPorts: 8, limitPerPort: 4, ageing: 300)
        defer { table.deallocate() }
        table.unlimitedBelow = 1  // slot 0 is the trunk
        for n in 0..<10 { XCTAssertEqual(table.learn(mac(UInt64(n)), port: 0, generation: 0, now: 1), .learned) }
        for n in 10..<14 { XCTAssertEqual(table.learn(mac(UInt64(n)), port: 1, generation: 0, now: 1), .learned) }
        XCTAssertEqual(table.learn(mac(20), port: 1, generation: 0, now: 1), .limitReached)
    }
}

/// Two shards with four attached dgram ports: a, c on shard 1 and b, d on shard 0 (round-robin from shard 1).
final class ShardLoopTests: XCTestCase {
    private var dir = ""
    private var dataplane: Dataplane!
    private var fds: [Int32] = []  // a, b, c, d
    private var receive = [UInt8](repeating: 0, count: 70_000)

    private func mac(_ i: Int) -> MACAddress { MACAddress(rawValue: 0x0200_0000_00a0 | UInt64(i)) }

    override func setUpWithError() throws {
        dir = "/tmp/switchd-shards-\(getpid())"
        mkdir(dir, 0o755)
        let spec = NetworkSpec(name: "shards", subnet: IPv4Subnet("10.98.0.0/24")!, queueFrames: 1024)
        dataplane = try Dataplane(runDir: dir, network: spec, threads: 2)
        try dataplane.start()
        for name in ["a", "b", "c", "d"] {
            let fd = try dataplane.attach(network: "shards", kind: .dgram, offload: false, peer: "attach:\(name)").clientFD
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            fds.append(fd)
        }
    }

    override func tearDown() {
        dataplane?.shutdown()
        dataplane = nil
        for fd in fds { close(fd) }
        fds = []
        _ = Program.run(["rm", "-rf", dir])
    }

    /// IPv4/UDP from 10.98.0.X (X: the MAC's last octet) so port security passes it.
    private func frame(from source: MACAddress, to destination: MACAddress, length: Int = 60) -> [UInt8] {
        udpTestFrame(from: source, to: destination, length: length, network: 98)
    }

    private func send(_ port: Int, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fds[port], $0.baseAddress, $0.count, 0) }
    }

    /// One datagram (-1 after the 2 s timeout, or at once without `wait`).
    private func receiveOne(_ port: Int, wait: Bool = true) -> Int {
        retryingEINTR { receive.withUnsafeMutableBytes { recv(fds[port], $0.baseAddress, $0.count, wait ? 0 : Int32(MSG_DONTWAIT)) } }
    }

    func testPortsArePlacedRoundRobinAndAllListed() {
        XCTAssertEqual(dataplane.status().first?.ports.map(\.peer), ["attach:b", "attach:d", "attach:a", "attach:c"],
                       "shard 0's ports first, then shard 1's")
        XCTAssertEqual(dataplane.clientPortCount(), 4, "the trunks are not ports")
        XCTAssertEqual(dataplane.forwardingThreadIDs.count, 2)
    }

    func testLearningCrossesShardsByEvent() {
        let a = 0, b = 1, c = 2, d = 3
        // c announces itself with a broadcast: every port gets it.
        send(c, frame(from: mac(c), to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF)))
        for port in [a, b, d] { XCTAssertEqual(receiveOne(port), 60, "port \(port) gets c's broadcast") }
        // a talks to c, on its own shard: no frame crosses, but shard 0 hears of a by an event.
        send(a, frame(from: mac(a), to: mac(c)))
        XCTAssertEqual(receiveOne(c), 60, "c gets a's frame")
        _ = dataplane.status()  // shard 0 drains its ring in the turn that answers this, or an earlier one
        _ = dataplane.status()
        // b (shard 0) to a: shard 0 knows a is behind its trunk, so d on shard 0 does not get a flood.
        send(b, frame(from: mac(b), to: mac(a)))
        XCTAssertEqual(receiveOne(a), 60, "a gets b's frame")
        XCTAssertEqual(receiveOne(d, wait: false), -1, "d got a flood: shard 0 did not learn a from shard 1's event")
        XCTAssertEqual(receiveOne(c, wait: false), -1, "c got a flood: shard 1 did not know a")
        let fdb = (try? dataplane.fdb(network: "shards")) ?? []
        XCTAssertEqual(Set(fdb.map(\.port)), Set(["dgram-1", "dgram-2", "dgram-4"]),
                       "fdb lists the ports' own MACs, not the trunks' copies")
    }

    func testAnAddressBoundOnAnotherShardIsRefused() {
        let a = 0, b = 1, c = 2, d = 3
        // a (shard 1) uses its address: bound there, announced to shard 0.
        send(a, frame(from: mac(a), to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF)))
        for port in [b, c, d] { XCTAssertEqual(receiveOne(port), 60, "port \(port) gets a's broadcast") }
        _ = dataplane.status()
        _ = dataplane.status()
        // b (shard 0) sends from a's address with its own MAC.
        var spoofed = frame(from: mac(b), to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF))
        spoofed[14 + 15] = UInt8(truncatingIfNeeded: mac(a).rawValue)
        send(b, spoofed)
        _ = dataplane.status()
        let portB = dataplane.status().first?.ports.first { $0.peer == "attach:b" }
        XCTAssertEqual(portB?.drops["spoofedIp"], 1, "b may not use the address a holds on the other shard")
        XCTAssertEqual(receiveOne(d, wait: false), -1, "the spoofed frame was forwarded")
    }

    func testBuffersComeBackAfterFramesCross() {
        let a = 0, b = 1
        send(a, frame(from: mac(a), to: mac(b)))
        send(b, frame(from: mac(b), to: mac(a)))
        _ = receiveOne(a)
        for port in [1, 2, 3] where port != b { _ = receiveOne(port) }  // a's first frame flooded
        _ = receiveOne(b)
        let before = dataplane.buffersInUse
        XCTAssertEqual(before.count, 2)
        var sent = 0, received = 0
        let total = 5000
        while received < total {
            while sent < total && sent - received < 16 {
                send(a, frame(from: mac(a), to: mac(b), length: 1514))
                send(b, frame(from: mac(b), to: mac(a), length: 1514))
                sent += 1
            }
            XCTAssertEqual(receiveOne(b), 1514, "frame \(received) a -> b")
            XCTAssertEqual(receiveOne(a), 1514, "frame \(received) b -> a")
            received += 1
        }
        XCTAssertEqual(dataplane.buffersInUse, before, "every shard's pool is back where it started")
        let status = dataplane.status().first
        XCTAssertNil(status?.drops["crossShard"], "no frame lost between the shards")
        let portA = status?.ports.first { $0.peer == "attach:a" }, portB = status?.ports.first { $0.peer == "attach:b" }
        XCTAssertGreaterThanOrEqual(portA?.rx.packets ?? 0, UInt64(total))
        XCTAssertEqual(portA?.rx.packets, portB?.tx.packets, "b got every frame a sent")
    }
}
