// VhostUserDevice over a socketpair, the test playing QEMU: negotiation, SET_MEM_TABLE with a shared
// file as guest RAM, ring setup with eventfds, REPLY_ACK, GET_VRING_BASE, refused and malformed
// messages, then a frame each way through rings in that shared memory.
import Foundation
import Glibc
import Proto
import SwitchSys
import XCTest
@testable import Switch

final class VhostUserProtocolTests: XCTestCase {
    static let ramBytes = 1 << 20
    static let mmapOffset: UInt64 = 0x10000  // the region starts this far into the file
    static let guestBase: UInt64 = 0x1_0000_0000
    static let userBase: UInt64 = 0x7f12_3450_0000

    private var qemu: Int32 = -1
    private var backend: Int32 = -1
    private var device = VhostUserDevice(mtu: 65_520)
    private var ramFD: Int32 = -1
    private var ram: SharedMapping!
    private var guest: UnsafeMutableRawPointer { ram.base + Int(Self.mmapOffset) }
    private var eventFDs: [Int32] = []

    override func setUpWithError() throws {
        (qemu, backend) = try Socket.connectedPair(Int32(SOCK_STREAM.rawValue))
        device = VhostUserDevice(mtu: 65_520)
        ramFD = try SharedMemory.makeAnonymousFile(size: Self.ramBytes + Int(Self.mmapOffset))
        ram = try SharedMemory.map(fd: ramFD, size: UInt64(Self.ramBytes), offset: Self.mmapOffset)
    }

    override func tearDown() {
        device.close()
        close(qemu)
        close(backend)
        close(ramFD)
        SharedMemory.unmap(ram)
        for fd in eventFDs { close(fd) }
        eventFDs = []
    }

    // MARK: - Playing the frontend

    private func write(_ request: UInt32, flags: UInt32 = 1, payload: [UInt8] = [], size: UInt32? = nil, fds: [Int32] = []) {
        var bytes = VhostUserHeader(request: VhostUserRequest(rawValue: request), flags: flags, size: 0).encoded(payload: payload)
        if let size { bytes.replaceSubrange(8 ..< 12, with: withUnsafeBytes(of: size) { Array($0) }) }
        XCTAssertNoThrow(try bytes.withUnsafeBytes { try FDPassing.send(socket: qemu, $0, descriptors: fds) })
    }

    /// Whatever the backend wrote back: (header, payload), or nil.
    private func reply() -> (VhostUserHeader, [UInt8])? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { recv(qemu, $0.baseAddress, $0.count, Socket.dontWait) }
        guard n >= 12 else { return nil }
        let header = buffer.withUnsafeBytes { VhostUserHeader(loading: $0) }
        XCTAssertEqual(n, 12 + Int(header.size), "one whole reply")
        return (header, Array(buffer[12 ..< n]))
    }

    /// Sends a request, lets the device handle it, and returns its reply payload (nil when none came).
    @discardableResult
    private func call(_ request: VhostUserRequest, needReply: Bool = false, _ payload: [UInt8] = [], fds: [Int32] = [],
                      file: StaticString = #filePath, line: UInt = #line) -> [UInt8]? {
        write(request.rawValue, flags: needReply ? 1 | VhostUserHeader.needReplyFlag : 1, payload: payload, fds: fds)
        let result = device.serviceControl(fd: backend)
        guard case .ok = result else {
            XCTFail("\(request): \(result)", file: file, line: line)
            return nil
        }
        guard let (header, body) = reply() else { return nil }
        XCTAssertEqual(header.request, request, file: file, line: line)
        XCTAssertEqual(header.flags, VhostUserHeader.version | VhostUserHeader.replyFlag, file: file, line: line)
        return body
    }

    private func u64(_ bytes: [UInt8]?) -> UInt64? {
        guard let bytes, bytes.count == 8 else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    private func eventFD() throws -> Int32 {
        let fd = try EventFD.open()
        eventFDs.append(fd)
        return fd
    }

    private func counter(_ fd: Int32) -> UInt64 {
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        var value: UInt64 = 0
        return read(fd, &value, 8) == 8 ? value : 0
    }

    private static let ackedFeatures = VirtioFeature.version1 | VirtioFeature.netMergeableRxBuffers | VirtioFeature.ringEventIndex
        | VirtioFeature.ringIndirectDescriptors | VirtioFeature.netChecksum | VirtioFeature.netGuestChecksum
        | VirtioFeature.netGuestTSO4 | VirtioFeature.netGuestTSO6 | VirtioFeature.netHostTSO4 | VirtioFeature.netHostTSO6
        | VirtioFeature.protocolFeatures

    /// QEMU 7.2's order: features, protocol features, queue count, owner, then per ring
    /// NUM/BASE/ADDR/KICK/CALL and SET_VRING_ENABLE. Returns the two drivers (rx ring, tx ring) and
    /// the kick/call eventfds the test keeps.
    private func negotiate(protocolFeatures: Bool = true, enable: Bool = true)
        throws -> (rx: GuestDriver, tx: GuestDriver, kicks: [Int32], calls: [Int32]) {
        XCTAssertEqual(u64(call(.getFeatures)), VhostUserDevice.offeredFeatures)
        if protocolFeatures {
            let offered = try XCTUnwrap(u64(call(.getProtocolFeatures)))
            XCTAssertEqual(offered, VhostUserProtocolFeature.multipleQueues | VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.mtu)
            XCTAssertNil(call(.setProtocolFeatures, VhostUserPayload.u64(offered)), "no reply without NEED_REPLY")
            XCTAssertEqual(u64(call(.getQueueNum)), 1)
        }
        XCTAssertEqual(u64(call(.setOwner, needReply: protocolFeatures)), protocolFeatures ? 0 : nil)
        let features = protocolFeatures ? Self.ackedFeatures : Self.ackedFeatures & ~VirtioFeature.protocolFeatures
        call(.setFeatures, VhostUserPayload.u64(features))
        XCTAssertEqual(device.headerSize, 12)
        XCTAssertTrue(device.guestTakesOffloads)
        let region = VhostUserPayload.Region(guestAddress: Self.guestBase, size: UInt64(Self.ramBytes), userAddress: Self.userBase,
                                             mmapOffset: Self.mmapOffset)
        XCTAssertEqual(u64(call(.setMemTable, needReply: protocolFeatures, VhostUserPayload.memory([region]), fds: [ramFD])),
                       protocolFeatures ? 0 : nil)
        let half = Self.ramBytes / 2
        let rx = GuestDriver(host: guest, bytes: half, guestBase: Self.guestBase, userBase: Self.userBase, size: 256)
        let tx = GuestDriver(host: guest, bytes: Self.ramBytes, guestBase: Self.guestBase, userBase: Self.userBase, size: 256, ringOffset: half)
        var kicks: [Int32] = [], calls: [Int32] = []
        for (index, driver) in [rx, tx].enumerated() {
            let i = UInt32(index)
            call(.setVringNum, VhostUserPayload.state(index: i, num: 256))
            call(.setVringBase, VhostUserPayload.state(index: i, num: 0))
            call(.setVringAddr, VhostUserPayload.address(index: i, descriptor: driver.descUser, used: driver.usedUser, available: driver.availUser))
            let kick = try eventFD(), callFD = try eventFD()
            write(VhostUserRequest.setVringKick.rawValue, payload: VhostUserPayload.u64(UInt64(i)), fds: [kick])
            XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: true), "a new kick fd: re-arm")
            call(.setVringCall, VhostUserPayload.u64(UInt64(i)), fds: [callFD])
            kicks.append(kick)
            calls.append(callFD)
        }
        XCTAssertGreaterThanOrEqual(device.rxKickFD, 0)
        XCTAssertGreaterThanOrEqual(device.txKickFD, 0)
        XCTAssertNotEqual(device.rxKickFD, device.txKickFD)
        XCTAssertTrue(device.txReady, "a started ring is drained even before it is enabled")
        XCTAssertEqual(device.rxReady, !protocolFeatures, "with PROTOCOL_FEATURES rings start disabled")
        if protocolFeatures && enable {
            call(.setVringEnable, VhostUserPayload.state(index: 0, num: 1))
            write(VhostUserRequest.setVringEnable.rawValue, payload: VhostUserPayload.state(index: 1, num: 1))
            XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: false))
            XCTAssertTrue(device.rxReady)
        }
        return (rx, tx, kicks, calls)
    }

    // MARK: - Tests

    func testNegotiationAndAFrameEachWay() throws {
        let (rx, tx, kicks, calls) = try negotiate()
        // A kick from the guest is readable on the device's kick fd (another fd, the same eventfd).
        EventFD.signal(kicks[1])
        var entry = pollfd(fd: device.txKickFD, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&entry, 1, 0), 1)

        // Guest → switch: header and frame in separate descriptors.
        let header = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)
        var headerBytes = [UInt8](repeating: 0, count: 12)
        headerBytes.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        let frame = (0 ..< 3000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        tx.makeAvailable(tx.chain([(tx.buffer(headerBytes), 12, false), (tx.buffer(frame), frame.count, false)]))
        var destination = [UInt8](repeating: 0, count: 65_548)
        let received = destination.withUnsafeMutableBytes { device.receiveFromGuest(into: $0.baseAddress!, capacity: $0.count) }
        XCTAssertEqual(received, .done(length: 3012))
        XCTAssertEqual(Array(destination[0 ..< 3012]), headerBytes + frame)
        XCTAssertEqual(destination.withUnsafeMutableBytes { device.receiveFromGuest(into: $0.baseAddress!, capacity: $0.count) }, .empty)
        XCTAssertTrue(device.notifyGuest(rx: false), "used_event 0 is passed: interrupt")
        XCTAssertEqual(counter(calls[1]), 1)
        XCTAssertEqual(tx.usedIndex, 1)
        XCTAssertFalse(device.enableKick(rx: false))
        XCTAssertEqual(tx.availEvent, 1)

        // Switch → guest: 3 receive buffers of 1500, a 4000-byte frame merges them.
        let buffers = (0 ..< 3).map { _ in rx.buffer(length: 1500) }
        for b in buffers { rx.makeAvailable(rx.chain([(b, 1500, true)])) }
        let out = (0 ..< 4000).map { UInt8(truncatingIfNeeded: $0 &* 5) }
        let sent = out.withUnsafeBytes { device.sendToGuest(header: header, frame: $0.baseAddress!, length: 4000) }
        XCTAssertEqual(sent, .done(length: 4012))
        XCTAssertTrue(device.notifyGuest(rx: true))
        XCTAssertEqual(counter(calls[0]), 1)
        XCTAssertEqual(rx.usedIndex, 3)
        let written = rx.read(buffers[0], 1500) + rx.read(buffers[1], 1500) + rx.read(buffers[2], 1012)
        var expected = header
        expected.numBuffers = 3
        XCTAssertEqual(written.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }, expected)
        XCTAssertEqual(Array(written[12...]), out)
        XCTAssertEqual(out.withUnsafeBytes { device.sendToGuest(header: header, frame: $0.baseAddress!, length: 100) }, .noRoom)
        XCTAssertFalse(device.enableKick(rx: true))

        // GET_VRING_BASE stops the ring, closes its kick fd and returns the next avail index.
        let kickBefore = device.txKickFD
        write(VhostUserRequest.getVringBase.rawValue, payload: VhostUserPayload.state(index: 1, num: 0))
        XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: true))
        let (baseHeader, base) = try XCTUnwrap(reply())
        XCTAssertEqual(baseHeader.request, .getVringBase)
        XCTAssertEqual(base, VhostUserPayload.state(index: 1, num: 1))
        XCTAssertEqual(device.txKickFD, -1)
        XCTAssertFalse(device.txReady)
        XCTAssertEqual(fcntl(kickBefore, F_GETFD), -1, "the old kick fd is closed")
        XCTAssertEqual(device.guestErrors, 0)
    }

    func testWithoutProtocolFeaturesRingsStartEnabled() throws {
        _ = try negotiate(protocolFeatures: false)
        XCTAssertTrue(device.rxReady)
    }

    func testDisabledTransmitRingIsDrainedAndDiscarded() throws {
        let (_, tx, _, _) = try negotiate(enable: false)
        tx.makeAvailable(tx.chain([(tx.buffer([UInt8](repeating: 1, count: 100)), 100, false)]))
        var destination = [UInt8](repeating: 0, count: 2048)
        XCTAssertEqual(destination.withUnsafeMutableBytes { device.receiveFromGuest(into: $0.baseAddress!, capacity: $0.count) }, .empty)
        XCTAssertEqual(device.txDisabledDiscards, 1)
        _ = device.notifyGuest(rx: false)
        XCTAssertEqual(tx.usedIndex, 1)
        let frame = [UInt8](repeating: 2, count: 60)
        XCTAssertEqual(frame.withUnsafeBytes { device.sendToGuest(header: .none, frame: $0.baseAddress!, length: 60) }, .noRoom,
                       "a disabled receive ring gets nothing")
    }

    func testKickWithoutDescriptorMeansPollingAndNewCallsReplaceOld() throws {
        let (_, _, _, calls) = try negotiate()
        let oldCall = device.rx.callFD
        let newCall = try eventFD()
        call(.setVringCall, VhostUserPayload.u64(0), fds: [newCall])
        XCTAssertEqual(fcntl(oldCall, F_GETFD), -1, "the replaced call fd is closed")
        XCTAssertNotEqual(device.rx.callFD, calls[0])
        write(VhostUserRequest.setVringKick.rawValue, payload: VhostUserPayload.u64(1 | 0x100))
        XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: true))
        XCTAssertEqual(device.txKickFD, -1, "bit 8: no fd, the ring is polled")
        XCTAssertTrue(device.txReady)
    }

    func testUnknownRequestWithNeedReplyIsRefusedAndTheConnectionKept() throws {
        _ = try negotiate()
        XCTAssertEqual(u64(call(VhostUserRequest(rawValue: 99), needReply: true)), 1)
        XCTAssertEqual(u64(call(.setLogBase, needReply: true, VhostUserPayload.u64(0) + VhostUserPayload.u64(0))), 1)
        XCTAssertNil(call(VhostUserRequest(rawValue: 77)), "refused without a reply when none is asked for")
        XCTAssertEqual(u64(call(.netSetMTU, needReply: true, VhostUserPayload.u64(9000))), 0)
        XCTAssertEqual(device.guestMTU, 9000)
        XCTAssertEqual(u64(call(.netSetMTU, needReply: true, VhostUserPayload.u64(70_000))), 1)
        XCTAssertEqual(u64(call(.getQueueNum)), 1, "still talking")
    }

    func testPartialMessageWaitsForTheRest() throws {
        let bytes = VhostUserHeader(request: .getFeatures, flags: 1, size: 0).encoded()
        let state = VhostUserHeader(request: .setVringNum, flags: 1, size: 8).encoded(payload: VhostUserPayload.state(index: 0, num: 64))
        let stream = bytes + state
        for cut in [5, 12 + 3, 12 + 12 + 4] {
            _ = stream[..<cut].withUnsafeBytes { send(qemu, $0.baseAddress, $0.count, 0) }
            XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: false))
            _ = stream[cut...].withUnsafeBytes { send(qemu, $0.baseAddress, $0.count, 0) }
            XCTAssertEqual(device.serviceControl(fd: backend), .ok(changed: false))
            XCTAssertEqual(u64(reply()?.1), VhostUserDevice.offeredFeatures)
            XCTAssertEqual(device.rx.size, 64)
        }
    }

    func testTruncatedAndMalformedMessagesClose() throws {
        let cases: [(String, () -> Void)] = [
            ("truncated SET_VRING_NUM", { self.write(8, payload: [0, 0, 0, 0]) }),
            ("wrong version", { self.write(1, flags: 2) }),
            ("oversized payload", { self.write(1, size: 1 << 20) }),
            ("queue past the pair", { self.write(8, payload: VhostUserPayload.state(index: 2, num: 256)) }),
            ("ring size not a power of two", { self.write(8, payload: VhostUserPayload.state(index: 0, num: 100)) }),
            ("features not offered", { self.write(2, payload: VhostUserPayload.u64(1 << 40)) }),
            ("kick without a descriptor", { self.write(12, payload: VhostUserPayload.u64(0)) }),
            ("mem table without descriptors", { self.write(5, payload: VhostUserPayload.memory([.init(guestAddress: 0, size: 4096, userAddress: 0, mmapOffset: 0)])) }),
        ]
        for (name, send) in cases {
            tearDown()
            try setUpWithError()
            send()
            guard case .closed(let reason) = device.serviceControl(fd: backend) else {
                XCTFail("\(name): not closed")
                continue
            }
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testPeerClosingEndsTheConnection() {
        write(1)
        shutdown(qemu, Int32(SHUT_WR))
        guard case .closed(let reason) = device.serviceControl(fd: backend) else { return XCTFail("not closed") }
        XCTAssertEqual(reason, "the frontend closed the connection")
        XCTAssertNotNil(reply(), "the request before the end was answered")
    }

    func testRingAddressesOutsideGuestMemoryClose() throws {
        _ = call(.setFeatures, VhostUserPayload.u64(Self.ackedFeatures))
        let region = VhostUserPayload.Region(guestAddress: Self.guestBase, size: UInt64(Self.ramBytes), userAddress: Self.userBase, mmapOffset: Self.mmapOffset)
        call(.setMemTable, VhostUserPayload.memory([region]), fds: [ramFD])
        call(.setVringNum, VhostUserPayload.state(index: 0, num: 256))
        write(VhostUserRequest.setVringAddr.rawValue,
              payload: VhostUserPayload.address(index: 0, descriptor: Self.userBase + UInt64(Self.ramBytes) - 64, used: Self.userBase, available: Self.userBase))
        guard case .closed = device.serviceControl(fd: backend) else { return XCTFail("not closed") }
    }

    func testMemTableReplacementRetranslatesAndCloseUnmaps() throws {
        let (rx, _, _, _) = try negotiate()
        let region = VhostUserPayload.Region(guestAddress: Self.guestBase, size: UInt64(Self.ramBytes), userAddress: Self.userBase, mmapOffset: Self.mmapOffset)
        XCTAssertEqual(u64(call(.setMemTable, needReply: true, VhostUserPayload.memory([region]), fds: [ramFD])), 0)
        XCTAssertTrue(device.rxReady)
        rx.makeAvailable(rx.chain([(rx.buffer(length: 200), 200, true)]))
        XCTAssertEqual([UInt8](repeating: 3, count: 100).withUnsafeBytes { device.sendToGuest(header: .none, frame: $0.baseAddress!, length: 100) },
                       .done(length: 112), "the rings work through the new mapping")
        let kick = device.rxKickFD
        device.close()
        device.close()
        XCTAssertEqual(fcntl(kick, F_GETFD), -1)
        XCTAssertFalse(device.rxReady)
        XCTAssertEqual(device.memory.count, 0)
        XCTAssertEqual(device.serviceControl(fd: backend), .closed(reason: "the device is closed"))
    }

    func testBrokenGuestRingStopsTheDeviceAndCounts() throws {
        let (_, tx, _, _) = try negotiate()
        tx.makeAvailable(UInt16(tx.size + 5))
        var destination = [UInt8](repeating: 0, count: 2048)
        guard case .broken(let why) = destination.withUnsafeMutableBytes({ device.receiveFromGuest(into: $0.baseAddress!, capacity: $0.count) }) else {
            return XCTFail("not broken")
        }
        XCTAssertTrue(why.contains("queue 1"))
        XCTAssertEqual(device.guestErrors, 1)
        XCTAssertFalse(device.txReady)
        XCTAssertFalse(device.rxReady)
        guard case .broken = [UInt8](repeating: 0, count: 60).withUnsafeBytes({ device.sendToGuest(header: .none, frame: $0.baseAddress!, length: 60) }) else {
            return XCTFail("receive ring still used")
        }
        XCTAssertEqual(device.guestErrors, 1, "counted once")
    }
}

/// A manual check against a real QEMU, skipped unless SWITCHD_VHOST_QEMU_SOCKET names a socket path
/// to listen on. The test serves one connection for SWITCHD_VHOST_QEMU_SECONDS (default 60), drains
/// the guest's transmit ring, pings ff02::1 into its receive ring (answering the guest's neighbor
/// solicitation for fe80::1) and passes when the echo reply comes back. Start QEMU once the socket
/// exists, e.g. with t14's cached guest (G=/var/cache/switchd-test/guest-*):
///
///     qemu-system-x86_64 -M q35 -accel tcg -m 256 \
///       -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
///       -chardev socket,id=c0,path=$SOCK -netdev vhost-user,id=n0,chardev=c0 \
///       -device virtio-net-pci,netdev=n0,mrg_rxbuf=on,vectors=0 \
///       -kernel $G/vmlinuz -initrd $G/initrd.gz -display none -serial file:serial.log -no-reboot \
///       -append "console=ttyS0 sw.role=serve sw.ip=10.9.9.2/24 sw.lifetime=30"
///
/// `vectors=0` (INTx instead of MSI-X): QEMU 7.2.22 (Debian) under TCG segfaults in vhost_net_start →
/// msix_set_vector_notifiers when the device has MSI-X vectors, before it sends SET_FEATURES (seen
/// here 2026-12-06 with gdb; the guest driver's DRIVER_OK write triggers it).
final class VhostUserQEMUCheck: XCTestCase {
    func testServeARealQEMU() throws {
        guard let path = ProcessInfo.processInfo.environment["SWITCHD_VHOST_QEMU_SOCKET"] else {
            throw XCTSkip("set SWITCHD_VHOST_QEMU_SOCKET to run against a real QEMU")
        }
        let seconds = Int(ProcessInfo.processInfo.environment["SWITCHD_VHOST_QEMU_SECONDS"] ?? "") ?? 60
        Log.level = .debug
        defer { Log.level = .info }
        unlink(path)
        let listener = try UnixSocket.listen(at: path)
        defer { unlink(path) }
        XCTAssertTrue(listener.waitReadable(milliseconds: 30_000), "QEMU did not connect")
        let connection = try listener.accept()
        var device = VhostUserDevice(mtu: 65_520)
        defer { device.close() }
        let start = Date()
        var frames = 0, echoReplies = 0, pingsSent = 0, rxSignals = 0, txSignals = 0
        var lastPing = Date.distantPast
        var buffer = [UInt8](repeating: 0, count: 65_548)
        func show(_ s: String) { print(String(format: "[%6.2f] ", Date().timeIntervalSince(start)) + s) }
        loop: while Date().timeIntervalSince(start) < Double(seconds) {
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)]
            for fd in [device.rxKickFD, device.txKickFD] where fd >= 0 { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            if fds[0].revents != 0 {
                let result = device.serviceControl(fd: connection.fd)
                show("control: \(result) features 0x\(String(device.features, radix: 16)) protocol 0x\(String(device.protocolFeatures, radix: 16)) rxReady \(device.rxReady) txReady \(device.txReady) mtu \(device.guestMTU.map(String.init) ?? "-")")
                if case .closed = result { break loop }
            }
            for fd in [device.rxKickFD, device.txKickFD] where fd >= 0 {
                var value: UInt64 = 0
                _ = fcntl(fd, F_SETFL, O_NONBLOCK)
                _ = read(fd, &value, 8)
            }
            guard device.txReady else { continue }
            while true {
                let r = buffer.withUnsafeMutableBytes { device.receiveFromGuest(into: $0.baseAddress!, capacity: $0.count) }
                guard case .done(let n) = r else {
                    if case .broken(let why) = r { XCTFail("broken: \(why)"); break loop }
                    if device.enableKick(rx: false) { continue }
                    break
                }
                frames += 1
                let header = buffer.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }
                let ethertype = UInt16(buffer[12 + 12]) << 8 | UInt16(buffer[12 + 13])
                let icmpType: UInt8? = ethertype == 0x86dd && n > 12 + 14 + 40 && buffer[12 + 14 + 6] == 58 ? buffer[12 + 14 + 40] : nil
                if icmpType == 129 { echoReplies += 1 }
                if icmpType == 135 && Array(buffer[(12 + 14 + 40 + 8) ..< (12 + 14 + 40 + 24)]) == Self.ourAddress {
                    // The guest resolves fe80::1 to answer our ping: it got it. Answer with an advertisement.
                    let advert = Self.neighborAdvertisement(to: Array(buffer[(12 + 6) ..< (12 + 12)]), at: Array(buffer[(12 + 14 + 8) ..< (12 + 14 + 24)]))
                    let r = advert.withUnsafeBytes { device.sendToGuest(header: .none, frame: $0.baseAddress!, length: advert.count) }
                    show("neighbor advertisement for fe80::1 into the guest: \(r)")
                    if device.notifyGuest(rx: true) { rxSignals += 1 }
                }
                show("guest frame \(frames): \(n - 12) bytes, ethertype 0x\(String(ethertype, radix: 16)), header \(header)")
            }
            if device.notifyGuest(rx: false) { txSignals += 1 }
            if device.rxReady && frames > 0 && echoReplies == 0 && Date().timeIntervalSince(lastPing) > 1 {
                lastPing = Date()
                let ping = Self.echoRequestToAllNodes(sequence: UInt16(pingsSent))
                let r = ping.withUnsafeBytes { device.sendToGuest(header: .none, frame: $0.baseAddress!, length: ping.count) }
                pingsSent += 1
                show("ping ff02::1 into the guest: \(r)")
                if device.notifyGuest(rx: true) { rxSignals += 1 }
            }
            if echoReplies > 0 && frames > 3 && seconds < 0 { break }
        }
        show("frames from the guest \(frames), echo replies \(echoReplies), pings sent \(pingsSent), interrupts rx \(rxSignals) tx \(txSignals), guest errors \(device.guestErrors)")
        XCTAssertGreaterThan(frames, 0, "the guest sent nothing through the transmit ring")
        XCTAssertGreaterThan(echoReplies, 0, "no echo reply: the receive ring did not deliver")
    }

    static let ourAddress: [UInt8] = [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1]
    static let ourMAC: [UInt8] = [0x02, 0, 0, 0, 0, 1]

    /// Ethernet + IPv6 + ICMPv6 `body` (checksum filled in, RFC 4443 §2.3) from fe80::1.
    static func icmpv6(toMAC: [UInt8], to destination: [UInt8], _ body: [UInt8]) -> [UInt8] {
        var icmp = body
        var sum: UInt32 = 0
        let pseudo = ourAddress + destination + [0, 0, 0, UInt8(icmp.count), 0, 0, 0, 58] + icmp
        for i in stride(from: 0, to: pseudo.count, by: 2) { sum += UInt32(pseudo[i]) << 8 | UInt32(i + 1 < pseudo.count ? pseudo[i + 1] : 0) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        icmp[2] = UInt8(checksum >> 8)
        icmp[3] = UInt8(checksum & 0xff)
        let ethernet = toMAC + ourMAC + [0x86, 0xdd]
        let ipv6: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(icmp.count), 58, 255] + ourAddress + destination
        return ethernet + ipv6 + icmp
    }

    /// An ICMPv6 echo request to ff02::1 (RFC 4443 §4.1).
    static func echoRequestToAllNodes(sequence: UInt16) -> [UInt8] {
        icmpv6(toMAC: [0x33, 0x33, 0, 0, 0, 1], to: [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [1],
               [128, 0, 0, 0, 0x12, 0x34, UInt8(sequence >> 8), UInt8(sequence & 0xff), 0x73, 0x77, 0x64, 0x21])
    }

    /// A solicited neighbor advertisement for fe80::1 (RFC 4861 §4.4) to `address` at `mac`.
    static func neighborAdvertisement(to mac: [UInt8], at address: [UInt8]) -> [UInt8] {
        icmpv6(toMAC: mac, to: address, [136, 0, 0, 0, 0x60, 0, 0, 0] + ourAddress + [2, 1] + ourMAC)
    }
}
