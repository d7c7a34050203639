// The forwarding path allocates nothing: 100 000 frames between two dgram peers (and between two
// `switchd attach` dgram ports), counted by an interposed malloc that watches the forwarding thread only.
import CMallocCounter
import Glibc
import Proto
import XCTest
@testable import Switch
import SwitchSys

final class ZeroAllocationTests: XCTestCase {
    /// A bound unix datagram socket in `dir`, as QEMU's `-netdev dgram` has one.
    private func peer(_ dir: String, _ name: String) throws -> (fd: Int32, address: UnixAddress) {
        let path = "\(dir)/\(name)"
        let fd = try Socket.bound(Int32(SOCK_DGRAM.rawValue), unixPath: path)
        Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, 4 << 20)
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return (fd, UnixAddress(path: path)!)
    }

    private func frame(from source: MACAddress, to destination: MACAddress, length: Int) -> [UInt8] {
        udpTestFrame(from: source, to: destination, length: length)
    }

    func testForwardingAllocatesNothing() throws {
        // Debug builds box and copy what release builds keep in registers; the claim is about the
        // release build, which `make test` runs this test in (swift test -c release).
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        let dir = "/tmp/switchd-alloc-\(getpid())"
        mkdir(dir, 0o755)
        defer { _ = try? FileManager_removeAll(dir) }
        let spec = NetworkSpec(name: "alloc", subnet: IPv4Subnet("10.99.0.0/24")!, queueFrames: 1024)
        let dataplane = try Dataplane(runDir: dir, network: spec)
        try dataplane.start()
        defer { dataplane.shutdown() }
        let server = UnixAddress(path: "\(dir)/alloc/dgram.sock")!
        let a = try peer(dir, "a.sock"), b = try peer(dir, "b.sock")
        defer { close(a.fd); close(b.fd) }
        let macA = MACAddress(rawValue: 0x0200_0000_00aa), macB = MACAddress(rawValue: 0x0200_0000_00bb)
        let toB = frame(from: macA, to: macB, length: 1514), toA = frame(from: macB, to: macA, length: 60)
        var receive = [UInt8](repeating: 0, count: 70_000)
        func send(_ fd: Int32, _ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { raw in server.withSockaddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, $1) } }
        }
        func receiveOne(_ fd: Int32) -> Int {
            retryingEINTR { receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
        }

        // Both peers join and are learned (port creation allocates; that is not the per-frame path).
        send(a.fd, toB)  // a joins; flooded to nobody yet
        send(b.fd, toA)  // b joins; a is known
        XCTAssertEqual(receiveOne(a.fd), 60, "a gets b's frame")
        send(a.fd, toB)
        XCTAssertEqual(receiveOne(b.fd), 1514, "b gets a's frame")

        malloc_counter_reset()
        malloc_counter_watch(dataplane.forwardingThreadID)
        // 100 000 frames, and for at least 3 s so the once-a-second housekeeping (MAC ageing, peer
        // probes, router advertisements, the DNS proxy's timers, the resolv.conf check) is counted too.
        var total = 100_000
        let start = monotonicSeconds()
        var received = 0
        // Keep at most a window in flight so nothing is dropped for a full queue.
        var sent = 0
        while received < total {
            if sent == total && monotonicSeconds() - start < 3 { total += 10_000 }
            while sent < total && sent - received < 64 { send(a.fd, toB); sent += 1 }
            let n = receiveOne(b.fd)
            guard n == 1514 else {
                XCTFail("frame \(received): received \(n) bytes, expected 1514 (never a zero-length datagram)")
                break
            }
            received += 1
        }
        malloc_counter_watch(0)
        XCTAssertEqual(received, total)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations on the forwarding thread over \(total) frames")
        let port = dataplane.status().first?.ports.first { $0.rx.packets > UInt64(total) }
        XCTAssertNotNil(port, "the frames went through the switch")
    }

    /// The same between two `switchd attach` dgram ports (socketpair ends read with a multishot read).
    func testAttachedDgramPortsAllocateNothing() throws {
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        let pair = try AttachedPair(directory: "/tmp/switchd-alloc-attach-\(getpid())", threads: 1)
        defer { pair.close() }
        pair.send(pair.a, pair.toB)
        pair.send(pair.b, pair.toA)
        XCTAssertEqual(pair.receiveOne(pair.a), 60, "a gets b's frame")
        pair.send(pair.a, pair.toB)
        XCTAssertEqual(pair.receiveOne(pair.b), 1514, "b gets a's frame")

        malloc_counter_reset()
        malloc_counter_watch(pair.dataplane.forwardingThreadID)
        let total = 100_000
        pair.sendAToB(total)
        malloc_counter_watch(0)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations on the forwarding thread over \(total) frames")
        XCTAssertEqual(pair.dataplane.status().first?.ports.map(\.peer), ["attach:a", "attach:b"])
    }

    /// The same with `--threads 2`: a (shard 1) to b (shard 0), every frame crossing the shards
    /// through their ring; each forwarding thread is watched for half of the frames.
    func testFramesAcrossShardsAllocateNothing() throws {
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        // Attached dgram ports go round-robin from shard 1: a on shard 1, b on shard 0.
        let pair = try AttachedPair(directory: "/tmp/switchd-alloc-shards-\(getpid())", threads: 2)
        defer { pair.close() }
        pair.send(pair.a, pair.toB)
        pair.send(pair.b, pair.toA)
        XCTAssertEqual(pair.receiveOne(pair.a), 60, "a gets b's frame")
        pair.send(pair.a, pair.toB)
        XCTAssertEqual(pair.receiveOne(pair.b), 1514, "b gets a's frame")
        XCTAssertEqual(pair.receiveOne(pair.b), 1514, "b gets a's frame")  // the first one, flooded

        let threads = pair.dataplane.forwardingThreadIDs
        XCTAssertEqual(threads.count, 2)
        for thread in threads.reversed() {
            malloc_counter_reset()
            malloc_counter_watch(thread)
            let total = 50_000
            pair.sendAToB(total)
            malloc_counter_watch(0)
            XCTAssertEqual(malloc_counter_count(), 0, "allocations on forwarding thread \(thread) over \(total) frames")
        }
        XCTAssertNil(pair.dataplane.status().first?.drops["crossShard"], "no frame lost between the shards")
    }

    func testCounterSeesAllocations() {
        // The probe itself works: an allocation on the watched thread is counted.
        malloc_counter_reset()
        malloc_counter_watch(malloc_counter_gettid())
        let p = malloc_counter_allocate(64)
        malloc_counter_watch(0)
        free(p)
        XCTAssertGreaterThanOrEqual(malloc_counter_count(), 1)
    }
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Removes a directory tree without Foundation (the test run directory).
private func FileManager_removeAll(_ path: String) throws {
    _ = Program.run(["rm", "-rf", path])
}

/// True in debug builds, where allocation counts say nothing about the release build's hot path.
/// Not inlined, so the compiler does not fold the tests' skip into "code after it never runs".
@inline(never)
func isDebugBuild() -> Bool { _isDebugAssertConfiguration() }

/// A running network "alloc" of `threads` forwarding threads with two `switchd attach` dgram
/// ports, a and b (2 s receive timeouts), and the frames the allocation tests send between them.
private final class AttachedPair {
    let directory: String
    let dataplane: Dataplane
    let a: Int32, b: Int32
    let toB = udpTestFrame(from: MACAddress(rawValue: 0x0200_0000_00aa), to: MACAddress(rawValue: 0x0200_0000_00bb), length: 1514)
    let toA = udpTestFrame(from: MACAddress(rawValue: 0x0200_0000_00bb), to: MACAddress(rawValue: 0x0200_0000_00aa), length: 60)
    private var receive = [UInt8](repeating: 0, count: 70_000)

    init(directory: String, threads: Int) throws {
        self.directory = directory
        mkdir(directory, 0o755)
        let spec = NetworkSpec(name: "alloc", subnet: IPv4Subnet("10.99.0.0/24")!, queueFrames: 1024)
        do {
            dataplane = try Dataplane(runDir: directory, network: spec, threads: threads)
            try dataplane.start()
        } catch {
            _ = try? FileManager_removeAll(directory)
            throw error
        }
        do {
            a = try dataplane.attach(network: "alloc", kind: .dgram, offload: false, peer: "attach:a").clientFD
            b = try dataplane.attach(network: "alloc", kind: .dgram, offload: false, peer: "attach:b").clientFD
        } catch {
            dataplane.shutdown()
            _ = try? FileManager_removeAll(directory)
            throw error
        }
        for fd in [a, b] {
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Closes both ends, stops the network and removes its directory.
    func close() {
        Glibc.close(a)
        Glibc.close(b)
        dataplane.shutdown()
        _ = try? FileManager_removeAll(directory)
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } }

    /// One datagram's length (-1 after the 2 s timeout).
    func receiveOne(_ fd: Int32) -> Int {
        retryingEINTR { receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
    }

    /// Sends `total` frames a → b and checks each arrives whole at b, with at most 16 in flight:
    /// below a port's receive share (32 buffers per loop turn, ReceiveShares), so the share never
    /// runs dry. Running it dry drops frames and logs the port as throttled, and that log line
    /// (rare, by design) would allocate inside the counted window.
    func sendAToB(_ total: Int, file: StaticString = #filePath, line: UInt = #line) {
        var sent = 0, received = 0
        while received < total {
            while sent < total && sent - received < 16 { send(a, toB); sent += 1 }
            let n = receiveOne(b)
            guard n == 1514 else {
                XCTFail("frame \(received): received \(n) bytes, expected 1514 (\(errnoText(errno)))", file: file, line: line)
                return
            }
            received += 1
        }
    }
}
