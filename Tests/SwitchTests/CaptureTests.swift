// Capture in the dataplane: the record header's bytes, filter validation, and captures of a running
// switch between two dgram peers: delivery, port and BPF filters, a stalled reader, a reader that
// goes, the slot limit, the end of the switch, and no allocation on the forwarding thread.
import CMallocCounter
import Glibc
import Proto
import XCTest
@testable import Switch
import SwitchSys

final class CaptureTests: XCTestCase {
    // MARK: - Record header

    /// 16 bytes, little-endian: timestamp u64, original length u32, port u16, flags u16.
    private let goldenHeader: [UInt8] = [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                         0x0D, 0x0C, 0x0B, 0x0A, 0x22, 0x11, 0x03, 0x00]
    private let header = CaptureRecordHeader(timestamp: 0x0102_0304_0506_0708, originalLength: 0x0A0B_0C0D,
                                             port: 0x1122, flags: CaptureRecordHeader.superFrame | CaptureRecordHeader.partialChecksum)

    func testRecordHeaderEmit() {
        var bytes = [UInt8](repeating: 0xA5, count: 20)
        bytes.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        XCTAssertEqual(Array(bytes[0..<16]), goldenHeader)
        XCTAssertEqual(Array(bytes[16...]), [0xA5, 0xA5, 0xA5, 0xA5], "nothing written past the header")
    }

    func testRecordHeaderParse() {
        let parsed = goldenHeader.withUnsafeBytes { CaptureRecordHeader(loading: $0) }
        XCTAssertEqual(parsed, header)
        XCTAssertNil(Array(goldenHeader.prefix(15)).withUnsafeBytes { CaptureRecordHeader(loading: $0) })
    }

    // MARK: - Filters

    /// `ether proto 0x88b5`, by hand: ldh [12]; jeq #0x88b5, 0, 1; ret #262144; ret #0.
    static let localExperimental = [
        BPFInstruction(code: 0x28, jt: 0, jf: 0, k: 12),
        BPFInstruction(code: 0x15, jt: 0, jf: 1, k: 0x88B5),
        BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 262_144),
        BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 0),
    ]

    func testFilterValidation() throws {
        XCTAssertThrowsError(try CaptureFilter([])) { XCTAssertEqual("\($0)", "the filter program is empty") }
        let tooLong = [BPFInstruction](repeating: BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 0), count: 4097)
        XCTAssertThrowsError(try CaptureFilter(tooLong)) {
            XCTAssertEqual("\($0)", "the filter program has 4097 instructions, more than 4096")
        }
        // A jump past the end, and a program that does not end in a return.
        for bad in [[BPFInstruction(code: 0x05, jt: 0, jf: 0, k: 5), BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 0)],
                    [BPFInstruction(code: 0x28, jt: 0, jf: 0, k: 12)]] {
            XCTAssertThrowsError(try CaptureFilter(bad)) {
                XCTAssertEqual("\($0)", "the filter program is not valid BPF (bpf_validate refused it)")
            }
        }
        XCTAssertNoThrow(try CaptureFilter(tooLong.dropLast()))
        let filter = try CaptureFilter(Self.localExperimental)
        XCTAssertEqual(frame(from: mac(1), to: mac(2), length: 100).withUnsafeBytes { filter.run(on: $0) }, 100,
                       "a match keeps the whole frame")
        XCTAssertEqual(frame(from: mac(1), to: mac(2), length: 100, etherType: 0x0800).withUnsafeBytes { filter.run(on: $0) }, 0)
    }

    // MARK: - A running switch

    private var dir = ""
    private var dataplane: Dataplane!
    private var a: (fd: Int32, address: UnixAddress) = (-1, UnixAddress())
    private var b: (fd: Int32, address: UnixAddress) = (-1, UnixAddress())
    private var server = UnixAddress()
    private var receive = [UInt8](repeating: 0, count: 70_000)

    private func mac(_ n: UInt64) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | n) }

    private func frame(from source: MACAddress, to destination: MACAddress, length: Int, etherType: UInt16 = 0x88B5,
                       fill: UInt8 = 0x5A) -> [UInt8] {
        var bytes = [UInt8](repeating: fill, count: length)
        bytes.withUnsafeMutableBytes { raw in
            destination.store(to: raw.baseAddress!)
            source.store(to: raw.baseAddress! + 6)
            raw[12] = UInt8(etherType >> 8); raw[13] = UInt8(etherType & 0xFF)
        }
        return bytes
    }

    private func peer(_ name: String) throws -> (fd: Int32, address: UnixAddress) {
        let path = "\(dir)/\(name)"
        let fd = try Socket.bound(Int32(SOCK_DGRAM.rawValue), unixPath: path)
        Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, 4 << 20)
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return (fd, UnixAddress(path: path)!)
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { raw in server.withSockaddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, $1) } }
    }

    /// One datagram (-1 after the 2 s timeout).
    private func receiveOne(_ fd: Int32) -> Int {
        retryingEINTR { receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
    }

    /// A switch with one network `cap` and two dgram peers a (dgram-1) and b (dgram-2) that know each other.
    private func startSwitch() throws {
        dir = "/tmp/switchd-capture-\(getpid())"
        mkdir(dir, 0o755)
        let spec = NetworkSpec(name: "cap", subnet: IPv4Subnet("10.98.0.0/24")!, queueFrames: 1024)
        dataplane = try Dataplane(runDir: dir, network: spec)
        try dataplane.start()
        server = UnixAddress(path: "\(dir)/cap/dgram.sock")!
        a = try peer("a.sock")
        b = try peer("b.sock")
        send(a.fd, frame(from: mac(0xAA), to: mac(0xBB), length: 60))
        send(b.fd, frame(from: mac(0xBB), to: mac(0xAA), length: 60))
        XCTAssertEqual(receiveOne(a.fd), 60, "a gets b's frame")
    }

    override func tearDown() {
        dataplane?.shutdown()
        dataplane = nil
        for fd in [a.fd, b.fd] where fd >= 0 { close(fd) }
        if !dir.isEmpty { _ = Program.run(["rm", "-rf", dir]) }
    }

    /// Sends `count` frames a → b, at most 64 in flight, and checks b got them all.
    private func forward(_ count: Int, length: Int = 1514, etherType: UInt16 = 0x88B5, file: StaticString = #filePath,
                         line: UInt = #line) {
        let bytes = frame(from: mac(0xAA), to: mac(0xBB), length: length, etherType: etherType)
        var sent = 0, received = 0
        while received < count {
            while sent < count && sent - received < 64 { send(a.fd, bytes); sent += 1 }
            guard receiveOne(b.fd) == length else { XCTFail("frame \(received) lost", file: file, line: line); return }
            received += 1
        }
    }

    /// The next record on a capture socket (nil after 2 s or at its end).
    private func record(_ fd: Int32, wait: Bool = true) -> (CaptureRecordHeader, [UInt8])? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var ready = poll(&pfd, 1, wait ? 2000 : 0)
        while ready < 0 && errno == EINTR { ready = poll(&pfd, 1, wait ? 2000 : 0) }
        guard ready == 1 else { return nil }
        let n = receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n > 0 else { return nil }
        return receive.withUnsafeBytes { raw in
            CaptureRecordHeader(loading: UnsafeRawBufferPointer(rebasing: raw[0..<n])).map { ($0, Array(raw[16..<n])) }
        }
    }

    private func captures() -> Int? { dataplane.status().first?.captures }

    func testCaptureGetsEveryIngressFrameAsReceived() throws {
        try startSwitch()
        let capture = try dataplane.startCapture(network: "cap", port: nil, filter: nil)
        let reader = capture.takeReaderFD()
        defer { close(reader) }
        XCTAssertEqual(captures(), 1)
        let before = UInt64(Date_nanoseconds())
        forward(3, length: 1000)
        send(b.fd, frame(from: mac(0xBB), to: mac(0xAA), length: 70, fill: 0x77))
        XCTAssertEqual(receiveOne(a.fd), 70)
        for i in 0..<4 {
            guard let (header, bytes) = record(reader) else { return XCTFail("record \(i) missing") }
            let expected = i < 3 ? frame(from: mac(0xAA), to: mac(0xBB), length: 1000)
                : frame(from: mac(0xBB), to: mac(0xAA), length: 70, fill: 0x77)
            XCTAssertEqual(bytes, expected, "record \(i): the frame as received")
            XCTAssertEqual(header.originalLength, UInt32(expected.count))
            XCTAssertEqual(header.flags, 0)
            XCTAssertGreaterThanOrEqual(header.timestamp, before)
            XCTAssertLessThan(header.timestamp, before + 10_000_000_000)
        }
        XCTAssertNil(record(reader, wait: false), "nothing the services or egress produce")
        XCTAssertEqual(capture.stats(), CaptureStats(captured: 4, lost: 0))
        XCTAssertEqual(capture.end(), CaptureStats(captured: 4, lost: 0))
        XCTAssertNil(captures(), "ended: status shows none")
        XCTAssertEqual(recv(reader, &receive, receive.count, Int32(MSG_DONTWAIT)), 0, "the reader sees the end")
        XCTAssertEqual(capture.end(), CaptureStats(captured: 4, lost: 0), "end is idempotent")
    }

    func testPortAndBPFFilters() throws {
        try startSwitch()
        let onlyB = try dataplane.startCapture(network: "cap", port: "dgram-2", filter: nil)
        let filtered = try dataplane.startCapture(network: "cap", port: nil, filter: try CaptureFilter(Self.localExperimental))
        let (bReader, filteredReader) = (onlyB.takeReaderFD(), filtered.takeReaderFD())
        defer { close(bReader); close(filteredReader) }
        XCTAssertEqual(captures(), 2)
        forward(2, length: 200, etherType: 0x0800)  // a → b, not 0x88b5
        forward(3, length: 300)  // a → b, 0x88b5
        send(b.fd, frame(from: mac(0xBB), to: mac(0xAA), length: 80, etherType: 0x0806))
        XCTAssertEqual(receiveOne(a.fd), 80)
        XCTAssertEqual(record(bReader)?.0.originalLength, 80, "the port capture sees b's ingress only")
        XCTAssertNil(record(bReader, wait: false))
        for _ in 0..<3 { XCTAssertEqual(record(filteredReader)?.0.originalLength, 300) }
        XCTAssertNil(record(filteredReader, wait: false), "the filter kept only EtherType 0x88b5")
        XCTAssertEqual(filtered.stats(), CaptureStats(captured: 3, lost: 0))

        XCTAssertThrowsError(try dataplane.startCapture(network: "cap", port: "dgram-9", filter: nil)) {
            XCTAssertEqual("\($0)", "network cap has no port dgram-9")
        }
        XCTAssertThrowsError(try dataplane.startCapture(network: "nope", port: nil, filter: nil)) {
            XCTAssertEqual("\($0)", "no network named nope")
        }
    }

    func testStalledReaderLosesCaptureFramesNeverTraffic() throws {
        try startSwitch()
        let capture = try dataplane.startCapture(network: "cap", port: nil, filter: nil)
        let reader = capture.takeReaderFD()
        defer { close(reader) }
        // Far more than the 4 MiB send buffer (8 MiB as the kernel counts it) holds, never read.
        forward(12_000)
        let stalled = capture.stats()
        XCTAssertGreaterThan(stalled.captured, 1000)
        XCTAssertGreaterThan(stalled.lost, 1000)
        XCTAssertEqual(stalled.captured + stalled.lost, 12_000, "every frame is captured or counted lost")
        XCTAssertEqual(captures(), 1, "a stalled capture keeps running")
        // The reader catches up: the stall clears (POLLOUT) and frames are captured again.
        var drained: UInt64 = 0
        while record(reader, wait: false) != nil { drained += 1 }
        XCTAssertEqual(drained, stalled.captured)
        usleep(100_000)
        forward(10)
        var later = 0
        while record(reader, wait: later < 10) != nil { later += 1 }
        XCTAssertEqual(later, 10, "captured again once the reader made room")
        let final = capture.end()
        XCTAssertEqual(final.captured, stalled.captured + 10)
        XCTAssertEqual(final.lost, stalled.lost)
    }

    func testReaderGoneFinishesTheCapture() throws {
        try startSwitch()
        let capture = try dataplane.startCapture(network: "cap", port: nil, filter: nil)
        close(capture.takeReaderFD())
        forward(2, length: 100)
        XCTAssertNil(captures(), "the capture finished when its reader went")
        XCTAssertEqual(capture.stats(), CaptureStats(captured: 0, lost: 1), "the first frame found the reader gone")
        XCTAssertEqual(capture.end(), CaptureStats(captured: 0, lost: 1))
    }

    func testAtMostEightCapturesAndSlotsAreReused() throws {
        try startSwitch()
        var held = try (0..<8).map { _ in try dataplane.startCapture(network: "cap", port: nil, filter: nil) }
        XCTAssertEqual(captures(), 8)
        XCTAssertThrowsError(try dataplane.startCapture(network: "cap", port: nil, filter: nil)) {
            XCTAssertEqual("\($0)", "too many captures on cap (at most 8)")
        }
        held.removeLast()  // its lease ends with it
        XCTAssertEqual(captures(), 7)
        held.append(try dataplane.startCapture(network: "cap", port: nil, filter: nil))
        XCTAssertEqual(captures(), 8)
        held.removeAll()
        XCTAssertNil(captures())
    }

    func testStoppingTheSwitchEndsCapturesAndKeepsTheirCounts() throws {
        try startSwitch()
        let capture = try dataplane.startCapture(network: "cap", port: nil, filter: nil)
        let reader = capture.takeReaderFD()
        defer { close(reader) }
        forward(5, length: 100)
        dataplane.shutdown()
        var count = 0
        while record(reader, wait: false) != nil { count += 1 }
        XCTAssertEqual(count, 5)
        XCTAssertEqual(recv(reader, &receive, receive.count, Int32(MSG_DONTWAIT)), 0, "the reader sees the end")
        XCTAssertEqual(capture.stats(), CaptureStats(captured: 5, lost: 0), "counters outlive the network")
        XCTAssertEqual(capture.end(), CaptureStats(captured: 5, lost: 0))
    }

    /// Captures cost no allocation on the forwarding thread: one reading capture (drained by a
    /// thread of its own) and one stalled, while 50 000 frames pass.
    func testCapturesAllocateNothing() throws {
        guard !isDebugBuild() else {
            throw XCTSkip("allocation counts are measured in release builds (make test runs them)")
        }
        try startSwitch()
        let reading = try dataplane.startCapture(network: "cap", port: nil, filter: try CaptureFilter(Self.localExperimental))
        let stalled = try dataplane.startCapture(network: "cap", port: nil, filter: nil)
        let readerFD = reading.takeReaderFD(), stalledFD = stalled.takeReaderFD()
        defer { close(stalledFD) }
        let drainer = Drainer(fd: readerFD)
        drainer.start()
        forward(100)  // warm up: the stalled capture stalls later, the first poll is armed on the way
        malloc_counter_reset()
        malloc_counter_watch(dataplane.forwardingThreadID)
        forward(50_000)
        malloc_counter_watch(0)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations on the forwarding thread with two captures")
        XCTAssertGreaterThan(stalled.stats().lost, 0, "the stalled capture did stall")
        XCTAssertGreaterThan(reading.stats().captured, 40_000)
        _ = reading.end()
        drainer.join()
        close(readerFD)
    }
}

/// Reads a capture socket until its end, on a thread of its own.
private final class Drainer: @unchecked Sendable {
    let fd: Int32
    private var thread = pthread_t()
    init(fd: Int32) { self.fd = fd }

    func start() {
        let box = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { arg in
            let drainer = Unmanaged<Drainer>.fromOpaque(arg!).takeRetainedValue()
            var buffer = [UInt8](repeating: 0, count: 70_000)
            while buffer.withUnsafeMutableBytes({ recv(drainer.fd, $0.baseAddress, $0.count, 0) }) > 0 {}
            return nil
        }, box.toOpaque())
    }

    func join() { pthread_join(thread, nil) }
}

private func Date_nanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
