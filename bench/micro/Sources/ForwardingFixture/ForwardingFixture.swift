// ForwardingFixture: a running Dataplane and two unix datagram peers, behind a Switch-free API.
//
// Why a separate target: the benchmark harness imports swift-system, whose CSystem clang module
// includes <linux/io_uring.h>, while Switch exports CLiburing, which includes liburing's own copy
// of io_uring.h with a different `struct io_uring_sqe`; one module cannot load both. Switch is
// imported implementation-only here, so the benchmark target never sees CLiburing.
//
// The same setup as Tests/SwitchTests/ZeroAllocationTests.swift, through the public API only:
// one isolated network in a temporary run directory, two SOCK_DGRAM peers bound beside it that
// send to RUNDIR/NAME/dgram.sock (as QEMU's `-netdev dgram` does). Both MACs are learned first,
// then peer a sends to b with at most 64 frames in flight, so no frame is dropped for a full
// queue. The figure includes both peers' syscalls (sendto and recv on this thread), so it is the
// cost of a frame through the switch as a dgram peer sees it, not of the forwarding thread alone.
import Glibc
import Proto
@_implementationOnly import Switch

/// One network, its dataplane and the two peers; made in a benchmark's setup, removed in teardown.
final class DgramPair {
    let dir: String
    let dataplane: Dataplane
    let a: Int32, b: Int32
    var server = sockaddr_un()
    /// Frames a→b of the benchmarked size, b→a for learning, and a receive buffer.
    let toB: UnsafeMutableRawBufferPointer
    let toA: UnsafeMutableRawBufferPointer
    let receive = UnsafeMutableRawBufferPointer.allocate(byteCount: 70_000, alignment: 64)
    let frameLength: Int

    init(frameLength: Int) throws(SwitchError) {
        self.frameLength = frameLength
        dir = "/tmp/switchd-micro-\(getpid())-\(frameLength)"
        mkdir(dir, 0o755)
        let spec = NetworkSpec(name: "bench", subnet: IPv4Subnet("10.98.0.0/24")!, queueFrames: 1024)
        dataplane = try Dataplane(runDir: dir, network: spec)
        try dataplane.start()
        server = Self.address("\(dir)/bench/dgram.sock")
        a = try Self.peer("\(dir)/a.sock")
        b = try Self.peer("\(dir)/b.sock")
        let macA = MACAddress(rawValue: 0x0200_0000_00aa), macB = MACAddress(rawValue: 0x0200_0000_00bb)
        toB = Self.frame(from: macA, to: macB, length: frameLength)
        toA = Self.frame(from: macB, to: macA, length: 60)
        // Both peers join and are learned; port creation allocates, the per-frame path must not.
        send(a, toB)  // a joins; flooded to nobody yet
        send(b, toA)  // b joins; a is known
        guard receiveOne(a) == 60 else { throw SwitchError("learning: a did not get b's frame") }
        send(a, toB)
        guard receiveOne(b) == frameLength else { throw SwitchError("learning: b did not get a's frame") }
    }

    /// Forwards `count` frames a→b with at most `window` in flight; false when one went missing.
    func forward(_ count: Int, window: Int = 64) -> Bool {
        var sent = 0, received = 0
        while received < count {
            while sent < count && sent - received < window { send(a, toB); sent += 1 }
            guard receiveOne(b) == frameLength else { return false }
            received += 1
        }
        return true
    }

    @inline(__always)
    func send(_ fd: Int32, _ frame: UnsafeMutableRawBufferPointer) {
        _ = withUnsafePointer(to: &server) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, frame.baseAddress, frame.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    @inline(__always)
    func receiveOne(_ fd: Int32) -> Int { recv(fd, receive.baseAddress, receive.count, 0) }

    func close() {
        dataplane.shutdown()
        Glibc.close(a); Glibc.close(b)
        unlink("\(dir)/a.sock"); unlink("\(dir)/b.sock")
        rmdir("\(dir)/bench"); rmdir(dir)
        toA.deallocate(); toB.deallocate(); receive.deallocate()
    }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// A bound unix datagram socket with a 4 MiB receive buffer and a 2 s receive timeout.
    private static func peer(_ path: String) throws(SwitchError) -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SwitchError("socket: errno \(errno)") }
        var address = Self.address(path)
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw SwitchError("bind \(path): errno \(errno)") }
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private static func frame(from source: MACAddress, to destination: MACAddress, length: Int) -> UnsafeMutableRawBufferPointer {
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 64)
        frame.initializeMemory(as: UInt8.self, repeating: 0x5a)
        destination.store(to: frame.baseAddress!)
        source.store(to: frame.baseAddress! + 6)
        frame[12] = 0x88; frame[13] = 0xb5  // IEEE 802 local experimental EtherType 1
        return frame
    }
}

nonisolated(unsafe) private var current: DgramPair?

/// Why the fixture could not be set up.
public struct ForwardingFixtureError: Error, CustomStringConvertible {
    public var description: String
}

/// Starts a dataplane with one network in a temporary run directory, binds peers a and b beside
/// it and has the switch learn both MACs; a sends `frameLength`-byte frames to b.
public func setUpForwarding(frameLength: Int) throws {
    do { current = try DgramPair(frameLength: frameLength) }
    catch { throw ForwardingFixtureError(description: error.description) }
}

/// Forwards `count` frames a→b with at most `window` in flight; false when one did not arrive within 2 s.
public func forwardFrames(_ count: Int, window: Int = 64) -> Bool {
    current?.forward(count, window: window) ?? false
}

/// Stops the dataplane and removes the run directory.
public func tearDownForwarding() {
    current?.close()
    current = nil
}
