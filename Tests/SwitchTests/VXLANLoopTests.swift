// VXLANLoopTests: a network with a VXLAN tunnel over loopback. Test sockets play the remote VTEPs
// (127.0.0.2, 127.0.0.3) and a `switchd attach` dgram port plays a local guest: decapsulation,
// encapsulation (header, VNI, a source port per flow), UDP GSO for a super-frame's segments,
// learning per VTEP, split horizon,
// counted drops for garbage, another VNI and unknown senders, inner checksums completed, and no
// allocation per frame (release builds).
import CMallocCounter
import Glibc
import Proto
import XCTest
@testable import Switch
import SwitchSys

final class VXLANLoopTests: XCTestCase, VXLANHarness {
    func testDecapsulateEncapsulateAndDrops() throws {
        let w = try world()
        defer { dismantle(w) }
        let vtep = w.vteps[0]
        // A broadcast from behind the VTEP reaches the guest, inner frame only.
        let broadcast = frame(from: macRemote, to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF))
        sendToTunnel(vtep, vxlan(42, broadcast))
        XCTAssertEqual(receive(w.guest)?.bytes, broadcast)
        // The guest answers the learned MAC: one datagram to the VTEP, VXLAN header then the frame.
        let reply = frame(from: macGuest, to: macRemote)
        _ = reply.withUnsafeBytes { send(w.guest, $0.baseAddress, $0.count, 0) }
        let got = try XCTUnwrap(receive(vtep), "the VTEP got the guest's frame")
        XCTAssertEqual(Array(got.bytes.prefix(8)), [0x08, 0, 0, 0, 0, 0, 42, 0])
        XCTAssertEqual(Array(got.bytes.dropFirst(8)), reply)
        XCTAssertEqual(got.sender?.address, .v4(IPv4Address(127, 0, 0, 1)))
        let status = try XCTUnwrap(w.dataplane.status().first)
        let vxlanPort = try XCTUnwrap(status.ports.first { $0.kind == "vxlan" })
        XCTAssertEqual(vxlanPort.id, "vxlan-127.0.0.2")
        XCTAssertEqual(vxlanPort.macs, [macRemote.description])
        XCTAssertEqual(vxlanPort.security, [], "a VTEP carries a whole site: no port security")

        // Outer source ports: one per flow (the send socket its hash picks), several flows apart.
        var ports: [UInt16: Set<UInt16>] = [:]
        for flow in 0..<16 {
            for _ in 0..<2 {
                let bytes = frame(from: macGuest, to: macRemote, sourcePort: UInt16(2000 + flow))
                _ = bytes.withUnsafeBytes { send(w.guest, $0.baseAddress, $0.count, 0) }
                let datagram = try XCTUnwrap(receive(vtep))
                ports[UInt16(flow), default: []].insert(try XCTUnwrap(datagram.sender?.port))
            }
        }
        XCTAssertTrue(ports.values.allSatisfy { $0.count == 1 }, "one source port per flow: \(ports)")
        XCTAssertGreaterThan(Set(ports.values.map { $0.first! }).count, 8, "flows spread over source ports")
        XCTAssertFalse(ports.values.contains { $0.contains(port) }, "not from the tunnel's own port")

        // Garbage, another VNI, an unknown sender: counted, nothing reaches the guest.
        sendToTunnel(vtep, [0x08, 0, 0])
        sendToTunnel(vtep, vxlan(42, broadcast).enumerated().map { $0.offset == 0 ? 0 : $0.element })  // I flag clear
        sendToTunnel(vtep, vxlan(43, broadcast))
        let stranger = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(stranger) }
        _ = InetSocketAddress(.v4(IPv4Address(127, 0, 0, 9)), port: 0).withSockaddr { bind(stranger, $0, $1) }
        sendToTunnel(stranger, vxlan(42, broadcast))
        // Then a good one: the next thing the guest sees.
        let marker = frame(from: macRemote, to: macGuest, sourcePort: 777)
        sendToTunnel(vtep, vxlan(42, marker))
        XCTAssertEqual(receive(w.guest)?.bytes, marker, "nothing refused reached the guest")
        XCTAssertEqual(drops(w)["vxlanMalformed"], 2)
        XCTAssertEqual(drops(w)["vxlanWrongVni"], 1)
        XCTAssertEqual(drops(w)["vxlanUnknownVtep"], 1)
    }

    func testPartialInnerChecksumIsCompleted() throws {
        // A kernel VTEP behind a veth sends inner TCP/UDP with only the pseudo-header sum in the
        // checksum field; a socket port must get it complete.
        let w = try world()
        defer { dismantle(w) }
        var partial = frame(from: macRemote, to: macGuest)
        partial.withUnsafeMutableBytes { raw in
            let ip = IPv4Header(validating: UnsafeRawBufferPointer(raw).suffix(from: 14))!
            raw.setBE16(ip.payloadPseudoHeaderSum, 34 + 6)
        }
        XCTAssertNotEqual(partial, frame(from: macRemote, to: macGuest))
        sendToTunnel(w.vteps[0], vxlan(42, partial))
        XCTAssertEqual(receive(w.guest)?.bytes, frame(from: macRemote, to: macGuest), "checksum completed on the way")
    }

    func testSuperFrameLeavesAsSegmentsOfOneFlow() throws {
        // A 6000-byte TCP super-frame from a header-less offload guest: Egress cuts it to the MTU,
        // the VTEP port sends the segments as one UDP GSO sendmsg, and the remote receives one
        // datagram per segment, all from the same source port, the payload intact.
        let w = try world()
        defer { dismantle(w) }
        let offload = try w.dataplane.attach(network: "vx", kind: .dgram, offload: true, peer: "offload").clientFD
        defer { close(offload) }
        sendToTunnel(w.vteps[0], vxlan(42, frame(from: macRemote, to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF))))
        XCTAssertNotNil(receive(w.guest))
        let payload = (0..<6000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var superFrame = [UInt8]()
        let macOffload = MACAddress(rawValue: 0x0200_0000_00DD)
        superFrame += withUnsafeBytes(of: macRemote.rawValue.bigEndian) { Array($0.suffix(6)) }
        superFrame += withUnsafeBytes(of: macOffload.rawValue.bigEndian) { Array($0.suffix(6)) }
        superFrame += [0x08, 0x00]
        let ipLength = 20 + 20 + payload.count
        superFrame += [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0,
                       10, 99, 0, 0xDD, 10, 99, 0, 0xBB]
        superFrame += [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        superFrame += payload
        _ = superFrame.withUnsafeBytes { send(offload, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var sources = Set<UInt16>()
        while received.count < payload.count {
            let datagram = try XCTUnwrap(receive(w.vteps[0]), "segment after \(received.count) bytes")
            XCTAssertEqual(Array(datagram.bytes.prefix(8)), [0x08, 0, 0, 0, 0, 0, 42, 0])
            XCTAssertLessThanOrEqual(datagram.bytes.count, 8 + 1514)
            received += datagram.bytes.dropFirst(8 + 14 + 40)
            sources.insert(try XCTUnwrap(datagram.sender?.port))
        }
        XCTAssertEqual(received, payload)
        XCTAssertEqual(sources.count, 1, "one flow, one source port")
        let vtepPort = try XCTUnwrap(w.dataplane.status().first?.ports.first { $0.kind == "vxlan" })
        XCTAssertEqual(vtepPort.segmented, 1)
    }

    func testSplitHorizonBetweenVTEPs() throws {
        let w = try world(remotes: 2)
        defer { dismantle(w) }
        let broadcast = frame(from: macRemote, to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF))
        sendToTunnel(w.vteps[0], vxlan(42, broadcast))
        XCTAssertEqual(receive(w.guest)?.bytes, broadcast, "flooded to the guest")
        // The guest's broadcast goes to both VTEPs (head-end replication); VTEP 2's first datagram
        // is that one, not VTEP 1's broadcast relayed.
        let fromGuest = frame(from: macGuest, to: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), sourcePort: 999)
        _ = fromGuest.withUnsafeBytes { send(w.guest, $0.baseAddress, $0.count, 0) }
        XCTAssertEqual(receive(w.vteps[1]).map { Array($0.bytes.dropFirst(8)) }, fromGuest)
        XCTAssertEqual(receive(w.vteps[0]).map { Array($0.bytes.dropFirst(8)) }, fromGuest)
        // Unicast to a MAC learned on VTEP 1, sent by VTEP 2: not relayed either.
        let second = frame(from: MACAddress(rawValue: 0x0200_0000_00CC), to: macRemote, sourcePort: 4242)
        sendToTunnel(w.vteps[1], vxlan(42, second))
        let marker = frame(from: macGuest, to: macRemote, sourcePort: 31)
        _ = marker.withUnsafeBytes { send(w.guest, $0.baseAddress, $0.count, 0) }
        XCTAssertEqual(receive(w.vteps[0]).map { Array($0.bytes.dropFirst(8)) }, marker)
    }
}

/// The tunnel's forwarding path allocates nothing (release builds; `make test` runs every
/// `*ZeroAllocationTests` class there).
final class VXLANZeroAllocationTests: XCTestCase, VXLANHarness {
    func testForwardingThroughTheTunnelAllocatesNothing() throws {
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        let w = try world()
        defer { dismantle(w) }
        let vtep = w.vteps[0]
        let toRemote = frame(from: macGuest, to: macRemote, length: 1400)
        let toGuest = vxlan(42, frame(from: macRemote, to: macGuest, length: 1400))
        sendToTunnel(vtep, toGuest)
        XCTAssertNotNil(receive(w.guest))
        malloc_counter_reset()
        malloc_counter_watch(w.dataplane.forwardingThreadID)
        // 50 000 frames each way, and at least 3 s so the once-a-second housekeeping is counted too.
        var total = 50_000
        var done = 0
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let start = clock.tv_sec
        while done < total {
            if done + 8 >= total {
                clock_gettime(CLOCK_MONOTONIC, &clock)
                if clock.tv_sec - start < 4 { total += 8_000 }
            }
            for _ in 0..<8 {
                _ = toRemote.withUnsafeBytes { send(w.guest, $0.baseAddress, $0.count, 0) }
                sendToTunnel(vtep, toGuest)
            }
            for _ in 0..<8 {
                guard receive(vtep)?.bytes.count == 1408, receive(w.guest)?.bytes.count == 1400 else {
                    XCTFail("frame \(done) lost")
                    malloc_counter_watch(0)
                    return
                }
                done += 1
            }
        }
        malloc_counter_watch(0)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations on the forwarding thread over \(total) frames each way")
    }
}

/// A network "vx" with a tunnel and one attached guest, and its remote VTEPs' sockets.
struct VXLANWorld {
    let dataplane: Dataplane
    let guest: Int32
    /// The remote VTEPs' sockets, bound to 127.0.0.2:port, 127.0.0.3:port.
    let vteps: [Int32]
    let dir: String
}

/// The scaffolding both test classes share.
protocol VXLANHarness {}

extension VXLANHarness {
    /// A UDP port of our own for the tunnel, so parallel runs do not collide.
    var port: UInt16 { UInt16(20_000 + Int(getpid()) % 20_000) }
    var macGuest: MACAddress { MACAddress(rawValue: 0x0200_0000_00AA) }
    var macRemote: MACAddress { MACAddress(rawValue: 0x0200_0000_00BB) }

    func world(remotes: Int = 1, vni: UInt32 = 42) throws -> VXLANWorld {
        let dir = "/tmp/switchd-vxlan-\(getpid())-\(remotes)"
        mkdir(dir, 0o755)
        var spec = NetworkSpec(name: "vx", subnet: IPv4Subnet("10.99.0.0/24")!, queueFrames: 1024)
        let addresses = (0..<remotes).map { IPAddress.v4(IPv4Address(127, 0, 0, UInt8(2 + $0))) }
        spec.vxlan = VXLANSpec(vni: vni, port: port, local: .v4(IPv4Address(127, 0, 0, 1)), remotes: addresses)
        var vteps: [Int32] = []
        for address in addresses {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            let r = InetSocketAddress(address, port: port).withSockaddr { bind(fd, $0, $1) }
            XCTAssertEqual(r, 0, "bind \(address):\(port)")
            timeout(fd)
            vteps.append(fd)
        }
        let dataplane = try Dataplane(runDir: dir, network: spec)
        try dataplane.start()
        let guest = try dataplane.attach(network: "vx", kind: .dgram, offload: false, peer: "guest").clientFD
        timeout(guest)
        return VXLANWorld(dataplane: dataplane, guest: guest, vteps: vteps, dir: dir)
    }

    func dismantle(_ w: VXLANWorld) {
        w.dataplane.shutdown()
        close(w.guest)
        for fd in w.vteps { close(fd) }
        _ = Program.run(["rm", "-rf", w.dir])
    }

    func timeout(_ fd: Int32) {
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// An IPv4/UDP frame from 10.99.0.X (X: the MAC's last octet) with complete checksums.
    func frame(from source: MACAddress, to destination: MACAddress, sourcePort: UInt16 = 12345,
               length: Int = 100) -> [UInt8] {
        udpTestFrame(from: source, to: destination, length: length, sourcePort: sourcePort, checksums: true)
    }

    func vxlan(_ vni: UInt32, _ inner: [UInt8]) -> [UInt8] {
        [0x08, 0, 0, 0, UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0] + inner
    }

    /// Sends `bytes` from VTEP socket `fd` to the tunnel (127.0.0.1:port).
    func sendToTunnel(_ fd: Int32, _ bytes: [UInt8]) {
        let to = InetSocketAddress(.v4(IPv4Address(127, 0, 0, 1)), port: port)
        _ = bytes.withUnsafeBytes { raw in to.withSockaddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, $1) } }
    }

    /// One datagram from `fd` with its sender, or nil on timeout.
    func receive(_ fd: Int32) -> (bytes: [UInt8], sender: InetSocketAddress?)? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = retryingEINTR {
            buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
                }
            }
        }
        guard n >= 0 else { print("receive: \(errnoText(errno))"); return nil }
        return (Array(buffer.prefix(n)), InetSocketAddress(storage))
    }

    func drops(_ w: VXLANWorld) -> [String: UInt64] { w.dataplane.status().first?.drops ?? [:] }
}
