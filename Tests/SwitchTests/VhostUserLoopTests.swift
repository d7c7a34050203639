// VhostUserLoopTests: a vhost-user port through the real forwarding loop, with the test playing QEMU.
//
// The test is the frontend: it connects to the network's vhost-user.sock, negotiates, shares a
// memfd as "guest memory" and lays out both split virtqueues in it. A frame the "guest" puts on
// its TX ring and kicks must reach an attached dgram port; a frame from that port must land in
// the guest's RX buffers with a virtio-net header, used ring updated and the call eventfd written;
// closing the socket must remove the port. (VirtqueueTests and VhostUserProtocolTests test the
// device on its own; this is the loop's wiring: accept, control poll, kick reads, egress.)
import Glibc
import Proto
import XCTest
@testable import Switch
import SwitchSys

/// A minimal vhost-user frontend over a real socket, with its "guest memory" in a memfd.
private final class FakeFrontend {
    static let memorySize = 1 << 20
    static let guestBase: UInt64 = 0x4000_0000
    static let queueSize = 64
    /// Offsets in guest memory: per queue the descriptor table, avail ring, used ring.
    static func layout(queue: Int) -> (desc: Int, avail: Int, used: Int) {
        let base = queue == 0 ? 0x4000 : 0x0000
        return (base, base + 0x1000, base + 0x2000)
    }
    static let buffers = 0x10000
    static let bufferSize = 4096

    private(set) var fd: Int32
    let memfd: Int32
    let memory: UnsafeMutableRawPointer
    /// Kick and call eventfds, [0] RX, [1] TX.
    var kick: [Int32] = []
    var call: [Int32] = []
    var txAvail: UInt16 = 0
    var rxAvail: UInt16 = 0

    init(path: String) throws {
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        fd = socketFD
        guard socketFD >= 0, let address = UnixAddress(path: path) else { throw Failure("socket") }
        let connected = address.withSockaddr { connect(socketFD, $0, $1) }
        guard connected == 0 else { throw Failure("connect \(path): errno \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // QEMU's memory-backend-memfd in spirit: a shared file, unlinked at once.
        let shm = "/dev/shm/switchd-fake-guest-\(getpid())"
        memfd = open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        unlink(shm)
        guard memfd >= 0, ftruncate(memfd, off_t(Self.memorySize)) == 0,
              let mapped = mmap(nil, Self.memorySize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0),
              mapped != MAP_FAILED else { throw Failure("memfd") }
        memory = mapped
        memset(memory, 0, Self.memorySize)
        for _ in 0..<2 {
            kick.append(try EventFD.open())
            call.append(try EventFD.open())
            _ = fcntl(call.last!, F_SETFL, O_NONBLOCK)  // the test polls it
        }
    }

    func disconnect() {
        close(fd)
        fd = -1
    }

    deinit {
        if fd >= 0 { close(fd) }
        munmap(memory, Self.memorySize)
        close(memfd)
        for e in kick + call { close(e) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: Messages

    func send(_ request: UInt32, payload: [UInt8] = [], fds: [Int32] = [], needReply: Bool = false) throws {
        var bytes = [UInt8]()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        u32(request); u32(0x1 | (needReply ? 0x8 : 0)); u32(UInt32(payload.count))
        bytes += payload
        let sent: Int = bytes.withUnsafeMutableBytes { raw in
            var iov = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            var message = msghdr()
            message.msg_iov = withUnsafeMutablePointer(to: &iov) { $0 }
            message.msg_iovlen = 1
            let controlLength = fds.isEmpty ? 0 : (16 + 4 * fds.count + 7) & ~7
            let control = UnsafeMutableRawPointer.allocate(byteCount: max(controlLength, 8), alignment: 8)
            defer { control.deallocate() }
            if !fds.isEmpty {
                memset(control, 0, controlLength)
                control.storeBytes(of: 16 + 4 * fds.count, as: Int.self)          // cmsg_len
                control.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                control.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
                for (i, f) in fds.enumerated() { control.storeBytes(of: f, toByteOffset: 16 + 4 * i, as: Int32.self) }
                message.msg_control = control
                message.msg_controllen = controlLength
            }
            return withUnsafeMutablePointer(to: &iov) { iovp in
                message.msg_iov = iovp
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
        }
        guard sent == bytes.count else { throw Failure("sendmsg \(request): \(sent), errno \(errno)") }
    }

    /// Reads one reply and returns its payload.
    func reply(_ request: UInt32) throws -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 12)
        try readExactly(&header)
        let got = header.withUnsafeBytes { $0.load(as: UInt32.self) }
        let flags = header.withUnsafeBytes { $0.load(fromByteOffset: 4, as: UInt32.self) }
        let size = Int(header.withUnsafeBytes { $0.load(fromByteOffset: 8, as: UInt32.self) })
        guard got == request, flags & 0x4 != 0, size <= 4096 else { throw Failure("reply to \(request): \(got) flags \(flags)") }
        var payload = [UInt8](repeating: 0, count: size)
        if size > 0 { try readExactly(&payload) }
        return payload
    }

    private func readExactly(_ bytes: inout [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = retryingEINTR { bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, $0.count - done, 0) } }
            guard n > 0 else { throw Failure("recv: \(n), errno \(errno)") }
            done += n
        }
    }

    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// Negotiates `features` (a subset of what the backend offers) and sets up both rings.
    func start(features wanted: UInt64) throws -> UInt64 {
        try send(1)  // GET_FEATURES
        let offered = try reply(1).withUnsafeBytes { $0.load(as: UInt64.self) }
        let features = offered & wanted
        try send(2, payload: Self.u64(features))  // SET_FEATURES
        if offered & (1 << 30) != 0 {
            try send(15)  // GET_PROTOCOL_FEATURES
            let protocolFeatures = try reply(15).withUnsafeBytes { $0.load(as: UInt64.self) }
            try send(16, payload: Self.u64(protocolFeatures & (1 << 3)))  // SET_PROTOCOL_FEATURES: REPLY_ACK
        }
        try send(3, needReply: true)  // SET_OWNER
        _ = try reply(3)
        // SET_MEM_TABLE: one region, user address = our own mapping.
        var table = Self.u32(1) + Self.u32(0)
        table += Self.u64(Self.guestBase) + Self.u64(UInt64(Self.memorySize))
        table += Self.u64(UInt64(UInt(bitPattern: memory))) + Self.u64(0)
        try send(5, payload: table, fds: [memfd], needReply: true)
        _ = try reply(5)
        for queue in 0..<2 {
            let l = Self.layout(queue: queue)
            try send(8, payload: Self.u32(UInt32(queue)) + Self.u32(UInt32(Self.queueSize)))  // SET_VRING_NUM
            let user = UInt64(UInt(bitPattern: memory))
            var addr = Self.u32(UInt32(queue)) + Self.u32(0)
            addr += Self.u64(user + UInt64(l.desc)) + Self.u64(user + UInt64(l.used)) + Self.u64(user + UInt64(l.avail))
            addr += Self.u64(0)
            try send(9, payload: addr)  // SET_VRING_ADDR
            try send(10, payload: Self.u32(UInt32(queue)) + Self.u32(0))  // SET_VRING_BASE
            try send(13, payload: Self.u64(UInt64(queue)), fds: [call[queue]])  // SET_VRING_CALL
            try send(12, payload: Self.u64(UInt64(queue)), fds: [kick[queue]])  // SET_VRING_KICK
            try send(18, payload: Self.u32(UInt32(queue)) + Self.u32(1), needReply: true)  // SET_VRING_ENABLE
            _ = try reply(18)
        }
        return features
    }

    // MARK: Rings

    func descriptor(queue: Int, _ i: Int, address: Int, length: Int, flags: UInt16, next: UInt16 = 0) {
        let p = memory + Self.layout(queue: queue).desc + 16 * i
        p.storeBytes(of: (Self.guestBase + UInt64(address)).littleEndian, as: UInt64.self)
        p.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: next.littleEndian, toByteOffset: 14, as: UInt16.self)
    }

    /// Makes chain `head` available on `queue` and kicks.
    func offer(queue: Int, head: UInt16) {
        let avail = memory + Self.layout(queue: queue).avail
        var index = queue == 0 ? rxAvail : txAvail
        avail.storeBytes(of: head.littleEndian, toByteOffset: 4 + 2 * Int(index % UInt16(Self.queueSize)), as: UInt16.self)
        index &+= 1
        avail.storeBytes(of: index.littleEndian, toByteOffset: 2, as: UInt16.self)
        if queue == 0 { rxAvail = index } else { txAvail = index }
        var one: UInt64 = 1
        _ = write(kick[queue], &one, 8)
    }

    func usedIndex(queue: Int) -> UInt16 {
        (memory + Self.layout(queue: queue).used + 2).load(as: UInt16.self)
    }

    func usedEntry(queue: Int, _ i: Int) -> (id: UInt32, length: UInt32) {
        let p = memory + Self.layout(queue: queue).used + 4 + 8 * i
        return (p.load(as: UInt32.self), p.load(fromByteOffset: 4, as: UInt32.self))
    }

    /// Waits until `condition` holds (the loop runs on its own thread), at most `seconds`.
    func wait(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
        while Clock.monotonicNanoseconds() < deadline {
            if condition() { return true }
            usleep(2000)
        }
        return condition()
    }
}

final class VhostUserLoopTests: XCTestCase {
    private func frame(from source: MACAddress, to destination: MACAddress, length: Int, fill: UInt8) -> [UInt8] {
        var bytes = [UInt8](repeating: fill, count: length)
        bytes.withUnsafeMutableBytes { raw in
            destination.store(to: raw.baseAddress!)
            source.store(to: raw.baseAddress! + 6)
            raw[12] = 0x88; raw[13] = 0xb5  // local experimental ethertype: no service or guard looks at it
        }
        return bytes
    }

    func testFramesBothWaysThroughTheLoop() throws {
        let dir = "/tmp/switchd-vhost-\(getpid())"
        mkdir(dir, 0o755)
        defer { rmdir(dir) }  // the dataplane removes its sockets and their directory
        let spec = NetworkSpec(name: "vh", subnet: IPv4Subnet("10.98.0.0/24")!, queueFrames: 256)
        let dataplane = try Dataplane(runDir: dir, network: spec)
        try dataplane.start()
        defer { dataplane.shutdown() }
        let other = try dataplane.attach(network: "vh", kind: .dgram, offload: false, peer: "attach:test").clientFD
        defer { close(other) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(other, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        let guest = try FakeFrontend(path: "\(dir)/vh/vhost-user.sock")
        let version1: UInt64 = 1 << 32, mergeable: UInt64 = 1 << 15, protocolFeatures: UInt64 = 1 << 30
        let features = try guest.start(features: version1 | mergeable | protocolFeatures)
        XCTAssertEqual(features & version1, version1, "VERSION_1 offered")
        XCTAssertEqual(features & mergeable, mergeable, "MRG_RXBUF offered")
        XCTAssertTrue(guest.wait { dataplane.status().first?.ports.contains { $0.kind == "vhost-user" } == true },
                      "the connection is a port")

        // Guest → switch: header and frame in two descriptors of one chain.
        let guestMAC = MACAddress(rawValue: 0x0200_0000_0011), otherMAC = MACAddress(rawValue: 0x0200_0000_0022)
        let out = frame(from: guestMAC, to: otherMAC, length: 300, fill: 0xa5)
        let txBuffer = FakeFrontend.buffers
        memset(guest.memory + txBuffer, 0, 12)
        out.withUnsafeBytes { (guest.memory + txBuffer + 64).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        guest.descriptor(queue: 1, 0, address: txBuffer, length: 12, flags: 1, next: 1)
        guest.descriptor(queue: 1, 1, address: txBuffer + 64, length: out.count, flags: 0)
        guest.offer(queue: 1, head: 0)
        var received = [UInt8](repeating: 0, count: 2048)
        let n = retryingEINTR { received.withUnsafeMutableBytes { recv(other, $0.baseAddress, $0.count, 0) } }
        XCTAssertEqual(n, out.count, "the guest's frame reached the dgram port")
        XCTAssertEqual(Array(received.prefix(max(n, 0))), out)
        XCTAssertTrue(guest.wait { guest.usedIndex(queue: 1) == 1 }, "the TX chain was returned")

        // Switch → guest: RX buffers first, then a frame from the dgram port to the guest's MAC.
        for i in 0..<4 {
            guest.descriptor(queue: 0, i, address: FakeFrontend.buffers + (1 + i) * FakeFrontend.bufferSize,
                             length: FakeFrontend.bufferSize, flags: 2)
            guest.offer(queue: 0, head: UInt16(i))
        }
        let back = frame(from: otherMAC, to: guestMAC, length: 1000, fill: 0x5a)
        _ = back.withUnsafeBytes { send(other, $0.baseAddress, $0.count, 0) }
        XCTAssertTrue(guest.wait { guest.usedIndex(queue: 0) == 1 }, "a frame was written to the guest's RX ring")
        let used = guest.usedEntry(queue: 0, 0)
        XCTAssertEqual(used.length, UInt32(12 + back.count))
        let rx = guest.memory + FakeFrontend.buffers + (1 + Int(used.id)) * FakeFrontend.bufferSize
        XCTAssertEqual(rx.load(fromByteOffset: 10, as: UInt16.self), 1, "num_buffers")
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: rx + 12, count: back.count)), back)
        var signalled: UInt64 = 0
        XCTAssertTrue(guest.wait { read(guest.call[0], &signalled, 8) == 8 }, "the guest was interrupted")

        // The guest goes away: its port and its MAC go with it.
        guest.disconnect()
        XCTAssertTrue(guest.wait { dataplane.status().first?.ports.contains { $0.kind == "vhost-user" } == false },
                      "the port was removed")
    }
}
