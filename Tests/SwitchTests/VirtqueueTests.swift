// Virtqueue: the device side of split rings on a synthetic guest in memory (chains, indirect tables,
// 16-bit wrap-around, event idx, MRG_RXBUF) and on hostile rings that must break cleanly.
import CMallocCounter
import Glibc
import Proto
import XCTest
@testable import Switch

/// Plays the guest driver on a split ring in memory the test owns: lays out the descriptor table,
/// avail and used rings and data buffers, and reads back what the device wrote (virtio 1.x §2.7).
final class GuestDriver {
    let host: UnsafeMutableRawPointer
    let guestBase: UInt64
    let userBase: UInt64
    let bytes: Int
    let size: Int
    let descOffset: Int
    let availOffset: Int
    let usedOffset: Int
    private var nextData: Int
    private var nextDescriptor = 0
    /// The driver's avail index (what it has published).
    private(set) var availIndex: UInt16 = 0

    /// A ring of `size` at `ringOffset` into `host` (guest address `guestBase`, user address
    /// `userBase`); buffers are carved after the rings.
    init(host: UnsafeMutableRawPointer, bytes: Int, guestBase: UInt64, userBase: UInt64, size: Int, ringOffset: Int = 0) {
        self.host = host
        self.bytes = bytes
        self.guestBase = guestBase
        self.userBase = userBase
        self.size = size
        descOffset = ringOffset
        availOffset = descOffset + 16 * size
        usedOffset = (availOffset + 6 + 2 * size + 4095) & ~4095
        nextData = (usedOffset + 6 + 8 * size + 4095) & ~4095
    }

    var descUser: UInt64 { userBase + UInt64(descOffset) }
    var availUser: UInt64 { userBase + UInt64(availOffset) }
    var usedUser: UInt64 { userBase + UInt64(usedOffset) }

    /// A guest address of `length` fresh bytes holding `contents` (zeros when empty).
    func buffer(_ contents: [UInt8] = [], length: Int? = nil) -> UInt64 {
        let n = length ?? contents.count
        precondition(nextData + n <= bytes, "fake guest memory full")
        let offset = nextData
        memset(host + offset, 0, n)
        contents.withUnsafeBytes { if let b = $0.baseAddress { memcpy(host + offset, b, contents.count) } }
        nextData = (nextData + n + 15) & ~15
        return guestBase + UInt64(offset)
    }

    func read(_ address: UInt64, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: host + Int(address - guestBase), count: count))
    }

    func setDescriptor(_ i: Int, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0, table: UnsafeMutableRawPointer? = nil) {
        let d = (table ?? host + descOffset) + 16 * i
        d.storeBytes(of: address.littleEndian, as: UInt64.self)
        d.storeBytes(of: length.littleEndian, toByteOffset: 8, as: UInt32.self)
        d.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
        d.storeBytes(of: next.littleEndian, toByteOffset: 14, as: UInt16.self)
    }

    /// Writes a chain of `parts` (address, length, writable) into consecutive table entries; returns the head.
    func chain(_ parts: [(UInt64, Int, Bool)]) -> UInt16 {
        if nextDescriptor + parts.count > size { nextDescriptor = 0 }
        let head = nextDescriptor
        for (k, part) in parts.enumerated() {
            let last = k == parts.count - 1
            let flags = (last ? 0 : DescriptorFlag.next) | (part.2 ? DescriptorFlag.write : 0)
            setDescriptor(head + k, address: part.0, length: UInt32(part.1), flags: flags, next: UInt16(last ? 0 : head + k + 1))
        }
        nextDescriptor += parts.count
        return UInt16(head)
    }

    /// Puts `head` on the avail ring and publishes the index.
    func makeAvailable(_ head: UInt16) {
        host.storeBytes(of: head.littleEndian, toByteOffset: availOffset + 4 + 2 * (Int(availIndex) % size), as: UInt16.self)
        availIndex &+= 1
        host.storeBytes(of: availIndex.littleEndian, toByteOffset: availOffset + 2, as: UInt16.self)
    }

    /// Sets the avail index to anything (hostile drivers).
    func setAvailIndex(_ index: UInt16) {
        availIndex = index
        host.storeBytes(of: index.littleEndian, toByteOffset: availOffset + 2, as: UInt16.self)
    }

    /// Starts both indices at `index` (a ring that has been running: for wrap-around).
    func startAt(_ index: UInt16) {
        setAvailIndex(index)
        host.storeBytes(of: index.littleEndian, toByteOffset: usedOffset + 2, as: UInt16.self)
    }

    var usedIndex: UInt16 { UInt16(littleEndian: host.load(fromByteOffset: usedOffset + 2, as: UInt16.self)) }

    func used(_ position: UInt16) -> (id: UInt32, length: UInt32) {
        let e = host + usedOffset + 4 + 8 * (Int(position) % size)
        return (UInt32(littleEndian: e.load(as: UInt32.self)), UInt32(littleEndian: e.load(fromByteOffset: 4, as: UInt32.self)))
    }

    var usedEvent: UInt16 {
        get { host.load(fromByteOffset: availOffset + 4 + 2 * size, as: UInt16.self) }
        set { host.storeBytes(of: newValue, toByteOffset: availOffset + 4 + 2 * size, as: UInt16.self) }
    }

    var availEvent: UInt16 { host.load(fromByteOffset: usedOffset + 4 + 8 * size, as: UInt16.self) }

    var availFlags: UInt16 {
        get { host.load(fromByteOffset: availOffset, as: UInt16.self) }
        set { host.storeBytes(of: newValue, toByteOffset: availOffset, as: UInt16.self) }
    }
}

final class VirtqueueTests: XCTestCase {
    static let regionBytes = 1 << 20
    static let guestBase: UInt64 = 0x4000_0000
    static let userBase: UInt64 = 0x7f00_0000_0000

    private var backing: UnsafeMutableRawPointer!
    private var memory = GuestMemory()
    private var driver: GuestDriver!
    private var scratch = [UInt8](repeating: 0, count: 65_536 + 12)

    override func setUp() {
        backing = UnsafeMutableRawPointer.allocate(byteCount: Self.regionBytes, alignment: 4096)
        memset(backing, 0, Self.regionBytes)
        memory = GuestMemory()
        XCTAssertTrue(memory.add(guestAddress: Self.guestBase, userAddress: Self.userBase, size: UInt64(Self.regionBytes), host: backing))
        driver = GuestDriver(host: backing, bytes: Self.regionBytes, guestBase: Self.guestBase, userBase: Self.userBase, size: 256)
    }

    override func tearDown() { backing.deallocate() }

    private func queue(eventIndex: Bool = false, indirect: Bool = true) -> Virtqueue {
        var q = Virtqueue()
        q.size = driver.size
        q.descriptorUserAddress = driver.descUser
        q.availUserAddress = driver.availUser
        q.usedUserAddress = driver.usedUser
        q.addressesSet = true
        q.eventIndex = eventIndex
        q.indirectAllowed = indirect
        q.started = true
        XCTAssertTrue(q.translate(memory))
        return q
    }

    private func receive(_ q: inout Virtqueue, capacity: Int = 65_548) -> (GuestTransfer, [UInt8]) {
        let result = scratch.withUnsafeMutableBytes { q.receive(into: $0.baseAddress!, capacity: capacity, minimumLength: 12, discard: false, memory: memory) }
        if case .done(let n) = result { return (result, Array(scratch[0 ..< n])) }
        return (result, [])
    }

    private func send(_ q: inout Virtqueue, _ frame: [UInt8], header: VirtioNetHeader = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16),
                      mergeable: Bool = true) -> GuestTransfer {
        frame.withUnsafeBytes { q.send(header: header, headerSize: 12, frame: $0.baseAddress!, length: frame.count, mergeable: mergeable, memory: memory) }
    }

    private func pattern(_ n: Int, seed: UInt8 = 0) -> [UInt8] { (0 ..< n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    private func isBroken(_ t: GuestTransfer) -> Bool { if case .broken = t { return true } else { return false } }

    // MARK: - Transmit (guest → switch)

    func testOneDescriptorFrameIsCopiedAndUsedAfterPublish() {
        var q = queue()
        let frame = pattern(12 + 60)
        driver.makeAvailable(driver.chain([(driver.buffer(frame), frame.count, false)]))
        let (result, bytes) = receive(&q)
        XCTAssertEqual(result, .done(length: 72))
        XCTAssertEqual(bytes, frame)
        XCTAssertEqual(driver.usedIndex, 0, "used index is published only by publishUsed")
        XCTAssertTrue(q.publishUsed())
        XCTAssertEqual(driver.usedIndex, 1)
        XCTAssertEqual(driver.used(0).id, 0)
        XCTAssertEqual(driver.used(0).length, 0, "a transmit buffer has nothing written into it")
        XCTAssertEqual(receive(&q).0, .empty)
    }

    func testHeaderInItsOwnDescriptorAndFrameInThreeAreJoinedInOrder() {
        var q = queue()
        let header = pattern(12, seed: 100), a = pattern(700, seed: 1), b = pattern(1, seed: 2), c = pattern(5000, seed: 3)
        let head = driver.chain([(driver.buffer(header), 12, false), (driver.buffer(a), a.count, false),
                                 (driver.buffer(b), b.count, false), (driver.buffer(c), c.count, false)])
        driver.makeAvailable(head)
        let (result, bytes) = receive(&q)
        XCTAssertEqual(result, .done(length: 12 + 700 + 1 + 5000))
        XCTAssertEqual(bytes, header + a + b + c)
    }

    func testZeroLengthDescriptorsInAChainAreSkipped() {
        var q = queue()
        let frame = pattern(80)
        driver.makeAvailable(driver.chain([(driver.buffer(), 0, false), (driver.buffer(frame), frame.count, false), (driver.buffer(), 0, false)]))
        XCTAssertEqual(receive(&q).1, frame)
    }

    func testIndirectTableIsWalked() {
        var q = queue()
        let header = pattern(12, seed: 9), payload = pattern(3000, seed: 4)
        let table = driver.buffer(length: 3 * 16)
        let tablePointer = backing + Int(table - Self.guestBase)
        driver.setDescriptor(0, address: driver.buffer(header), length: 12, flags: DescriptorFlag.next, next: 2, table: tablePointer)
        driver.setDescriptor(2, address: driver.buffer(Array(payload[..<1000])), length: 1000, flags: DescriptorFlag.next, next: 1, table: tablePointer)
        driver.setDescriptor(1, address: driver.buffer(Array(payload[1000...])), length: 2000, flags: 0, table: tablePointer)
        driver.setDescriptor(5, address: table, length: 48, flags: DescriptorFlag.indirect)
        driver.makeAvailable(5)
        let (result, bytes) = receive(&q)
        XCTAssertEqual(result, .done(length: 3012))
        XCTAssertEqual(bytes, header + payload)
        XCTAssertTrue(q.publishUsed())
        XCTAssertEqual(driver.used(0).id, 5, "the used entry names the ring's head, not the table's")
    }

    func testIndicesWrapAroundSixteenBits() {
        driver.startAt(65_533)
        var q = queue()
        XCTAssertEqual(q.lastAvail, 65_533, "a ring that was running resumes at its used index")
        var frames: [[UInt8]] = []
        for i in 0 ..< 6 {
            let frame = pattern(64 + i, seed: UInt8(i))
            frames.append(frame)
            driver.makeAvailable(driver.chain([(driver.buffer(frame), frame.count, false)]))
        }
        XCTAssertEqual(driver.availIndex, 3)
        for frame in frames { XCTAssertEqual(receive(&q).1, frame) }
        XCTAssertEqual(receive(&q).0, .empty)
        XCTAssertTrue(q.publishUsed())
        XCTAssertEqual(driver.usedIndex, 3)
        XCTAssertEqual(q.lastAvail, 3)
    }

    func testFrameLargerThanCapacityIsDroppedAndTheNextOneReturned() {
        var q = queue()
        let big = pattern(2000), small = pattern(100)
        driver.makeAvailable(driver.chain([(driver.buffer(big), big.count, false)]))
        driver.makeAvailable(driver.chain([(driver.buffer(small), small.count, false)]))
        let (result, bytes) = receive(&q, capacity: 1500)
        XCTAssertEqual(result, .done(length: 100))
        XCTAssertEqual(bytes, small)
        XCTAssertEqual(q.oversizeDrops, 1)
        _ = q.publishUsed()
        XCTAssertEqual(driver.usedIndex, 2, "the dropped chain went back to the guest too")
    }

    func testOneCallDropsAtMostARingOfChains() {
        var q = queue()
        let junk = driver.buffer(pattern(4))
        for _ in 0 ..< 255 { driver.makeAvailable(driver.chain([(junk, 4, false)])) }
        let frame = pattern(100)
        driver.makeAvailable(driver.chain([(driver.buffer(frame), 100, false)]))
        XCTAssertEqual(receive(&q).0, .done(length: 100), "255 short chains dropped, then the frame")
        for _ in 0 ..< 256 { driver.makeAvailable(driver.chain([(junk, 4, false)])) }
        XCTAssertEqual(receive(&q).0, .empty, "a ring's worth of junk: the call ends")
        XCTAssertEqual(q.shortDrops, 255 + 256)
        driver.makeAvailable(driver.chain([(junk, 4, false)]))
        XCTAssertTrue(q.enableNotification(sinceSeen: false), "and the caller learns more is waiting")
    }

    func testChainShorterThanTheHeaderIsDropped() {
        var q = queue()
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(8)), 8, false)]))
        XCTAssertEqual(receive(&q).0, .empty)
        XCTAssertEqual(q.shortDrops, 1)
    }

    func testDisabledRingDiscards() {
        var q = queue()
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(100)), 100, false)]))
        let result = scratch.withUnsafeMutableBytes { q.receive(into: $0.baseAddress!, capacity: 2000, minimumLength: 12, discard: true, memory: memory) }
        XCTAssertEqual(result, .empty)
        XCTAssertEqual(q.disabledDiscards, 1)
        _ = q.publishUsed()
        XCTAssertEqual(driver.usedIndex, 1)
    }

    // MARK: - Notifications

    func testEventIndexDecidesTheInterrupt() {
        var q = queue(eventIndex: true)
        driver.usedEvent = 0  // interrupt when used index passes 0
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)]))
        _ = receive(&q)
        XCTAssertTrue(q.publishUsed(), "used 0 → 1 crosses used_event 0")
        driver.usedEvent = 5
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)]))
        _ = receive(&q)
        XCTAssertFalse(q.publishUsed(), "used 1 → 2 does not reach used_event 5")
        XCTAssertEqual(driver.usedIndex, 2, "published all the same")
        for _ in 0 ..< 4 { driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)])) }
        for _ in 0 ..< 4 { _ = receive(&q) }
        XCTAssertTrue(q.publishUsed(), "used 2 → 6 passes used_event 5")
        XCTAssertFalse(q.publishUsed(), "nothing new: no interrupt")
    }

    func testNoInterruptFlagWithoutEventIndex() {
        var q = queue(eventIndex: false)
        driver.availFlags = 1
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)]))
        _ = receive(&q)
        XCTAssertFalse(q.publishUsed())
        driver.availFlags = 0
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)]))
        _ = receive(&q)
        XCTAssertTrue(q.publishUsed())
    }

    func testEnableNotificationSetsAvailEventAndSeesLateFrames() {
        var q = queue(eventIndex: true)
        for _ in 0 ..< 3 { driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)])) }
        for _ in 0 ..< 3 { _ = receive(&q) }
        XCTAssertEqual(receive(&q).0, .empty)
        XCTAssertFalse(q.enableNotification(sinceSeen: false))
        XCTAssertEqual(driver.availEvent, 3, "kick me when the avail index passes 3")
        driver.makeAvailable(driver.chain([(driver.buffer(pattern(60)), 60, false)]))
        XCTAssertTrue(q.enableNotification(sinceSeen: false), "a frame that came after draining is seen at once")
    }

    // MARK: - Receive (switch → guest)

    func testMergeableFrameSpansThreeBuffersWithNumBuffersThree() {
        var q = queue()
        let buffers = (0 ..< 3).map { _ in driver.buffer(length: 1000) }
        for b in buffers { driver.makeAvailable(driver.chain([(b, 1000, true)])) }
        let frame = pattern(2500, seed: 42)
        let header = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)
        XCTAssertEqual(send(&q, frame, header: header), .done(length: 2512))
        XCTAssertEqual(driver.usedIndex, 0)
        XCTAssertTrue(q.publishUsed())
        XCTAssertEqual(driver.usedIndex, 3)
        XCTAssertEqual([driver.used(0).length, driver.used(1).length, driver.used(2).length], [1000, 1000, 512])
        let written = driver.read(buffers[0], 1000) + driver.read(buffers[1], 1000) + driver.read(buffers[2], 512)
        var expected = header
        expected.numBuffers = 3
        XCTAssertEqual(VirtioNetHeader(loading: written.withUnsafeBytes { $0.baseAddress! }), expected)
        XCTAssertEqual(Array(written[12...]), frame)
    }

    func testNumBuffersIsWrittenWhenTheHeaderIsSplitAcrossDescriptors() {
        var q = queue()
        let a = driver.buffer(length: 11), b = driver.buffer(length: 600), c = driver.buffer(length: 600)
        driver.makeAvailable(driver.chain([(a, 11, true), (b, 600, true)]))
        driver.makeAvailable(driver.chain([(c, 600, true)]))
        let frame = pattern(1000)
        XCTAssertEqual(send(&q, frame), .done(length: 1012))
        XCTAssertEqual(driver.read(a, 11)[10], 2, "num_buffers low byte in the first descriptor")
        XCTAssertEqual(driver.read(b, 1)[0], 0, "num_buffers high byte in the second")
        XCTAssertEqual(Array(driver.read(b, 600)[1...] + driver.read(c, 401)), frame)
        _ = q.publishUsed()
        XCTAssertEqual([driver.used(0).length, driver.used(1).length], [611, 401])
    }

    func testNoRoomConsumesNothingAndNewBuffersAreSeen() {
        var q = queue(eventIndex: true)
        for _ in 0 ..< 2 { driver.makeAvailable(driver.chain([(driver.buffer(length: 1000), 1000, true)])) }
        let frame = pattern(2500)
        XCTAssertEqual(send(&q, frame), .noRoom)
        XCTAssertEqual(q.lastAvail, 0)
        XCTAssertFalse(q.publishUsed(), "nothing was used")
        XCTAssertEqual(driver.usedIndex, 0)
        XCTAssertFalse(q.enableNotification(sinceSeen: true))
        XCTAssertEqual(driver.availEvent, 2, "kick me when more than the two buffers seen are there")
        driver.makeAvailable(driver.chain([(driver.buffer(length: 1000), 1000, true)]))
        XCTAssertTrue(q.enableNotification(sinceSeen: true))
        XCTAssertEqual(send(&q, frame), .done(length: 2512))
        XCTAssertTrue(q.publishUsed())
        XCTAssertEqual(driver.usedIndex, 3)
    }

    func testWithoutMergeableAFrameNeedsOneChain() {
        var q = queue()
        let headerBuffer = driver.buffer(length: 12), big = driver.buffer(length: 4000)
        driver.makeAvailable(driver.chain([(headerBuffer, 12, true), (big, 4000, true)]))
        let frame = pattern(3000)
        XCTAssertEqual(send(&q, frame, mergeable: false), .done(length: 3012))
        XCTAssertEqual(VirtioNetHeader(loading: driver.read(headerBuffer, 12).withUnsafeBytes { $0.baseAddress! }).numBuffers, 1)
        XCTAssertEqual(driver.read(big, 3000), frame)
        driver.makeAvailable(driver.chain([(driver.buffer(length: 1000), 1000, true)]))
        driver.makeAvailable(driver.chain([(driver.buffer(length: 1000), 1000, true)]))
        XCTAssertEqual(send(&q, pattern(1500), mergeable: false), .noRoom, "1512 bytes do not fit one 1000-byte chain")
        XCTAssertFalse(q.enableNotification(sinceSeen: true), "no new buffers since: do not retry")
        XCTAssertEqual(send(&q, pattern(500), mergeable: false), .done(length: 512))
        _ = q.publishUsed()
        XCTAssertEqual(driver.usedIndex, 2)
        XCTAssertEqual(driver.used(0).length, 3012)
        XCTAssertEqual(driver.used(1).length, 512)
    }

    func testRingOperationsDoNotAllocate() {
        var tx = queue(eventIndex: true)
        let frame = pattern(1500)
        for _ in 0 ..< 128 { driver.makeAvailable(driver.chain([(driver.buffer(Array(frame[..<12])), 12, false), (driver.buffer(Array(frame[12...])), 1488, false)])) }
        let rxDriverMemory = GuestDriver(host: backing, bytes: Self.regionBytes, guestBase: Self.guestBase, userBase: Self.userBase, size: 256, ringOffset: Self.regionBytes / 2)
        var rx = Virtqueue()
        rx.size = 256
        rx.descriptorUserAddress = rxDriverMemory.descUser
        rx.availUserAddress = rxDriverMemory.availUser
        rx.usedUserAddress = rxDriverMemory.usedUser
        rx.addressesSet = true
        rx.eventIndex = true
        XCTAssertTrue(rx.translate(memory))
        for _ in 0 ..< 128 { rxDriverMemory.makeAvailable(rxDriverMemory.chain([(rxDriverMemory.buffer(length: 2048), 2048, true)])) }
        let destination = UnsafeMutableRawPointer.allocate(byteCount: 65_548, alignment: 16)
        defer { destination.deallocate() }
        let memory = self.memory
        var done = 0
        frame.withUnsafeBytes { source in
            // A first round unwatched: the runtime instantiates generic metadata once (debug builds).
            if case .done = tx.receive(into: destination, capacity: 65_548, minimumLength: 12, discard: false, memory: memory) { done += 1 }
            if case .done = rx.send(header: .none, headerSize: 12, frame: source.baseAddress!, length: 1500, mergeable: true, memory: memory) { done += 1 }
            _ = tx.publishUsed()
            _ = rx.enableNotification(sinceSeen: true)
            malloc_counter_reset()
            malloc_counter_watch(malloc_counter_gettid())
            for _ in 1 ..< 128 {
                if case .done = tx.receive(into: destination, capacity: 65_548, minimumLength: 12, discard: false, memory: memory) { done += 1 }
                if case .done = rx.send(header: .none, headerSize: 12, frame: source.baseAddress!, length: 1500, mergeable: true, memory: memory) { done += 1 }
            }
            _ = tx.publishUsed()
            _ = rx.publishUsed()
            _ = tx.enableNotification(sinceSeen: false)
            _ = rx.enableNotification(sinceSeen: true)
            malloc_counter_watch(0)
        }
        withExtendedLifetime(rxDriverMemory) {}
        XCTAssertEqual(done, 256)
        XCTAssertEqual(malloc_counter_count(), 0, "allocations moving 256 frames through the rings")
    }

    // MARK: - Hostile rings

    func testChainLoopBreaksTheQueue() {
        var q = queue()
        let b = driver.buffer(pattern(100))
        driver.setDescriptor(0, address: b, length: 100, flags: DescriptorFlag.next, next: 1)
        driver.setDescriptor(1, address: b, length: 100, flags: DescriptorFlag.next, next: 0)
        driver.makeAvailable(0)
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .chainLoop)
        XCTAssertTrue(isBroken(receive(&q).0), "a broken queue stays broken")
    }

    func testLoopInsideAnIndirectTableBreaksTheQueue() {
        var q = queue()
        let table = driver.buffer(length: 32)
        let t = backing + Int(table - Self.guestBase)
        let b = driver.buffer(pattern(100))
        driver.setDescriptor(0, address: b, length: 100, flags: DescriptorFlag.next, next: 1, table: t)
        driver.setDescriptor(1, address: b, length: 100, flags: DescriptorFlag.next, next: 0, table: t)
        driver.setDescriptor(0, address: table, length: 32, flags: DescriptorFlag.indirect)
        driver.makeAvailable(0)
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .chainLoop)
    }

    func testBufferPastTheRegionBreaksTheQueue() {
        var q = queue()
        let end = Self.guestBase + UInt64(Self.regionBytes)
        driver.makeAvailable(driver.chain([(end - 50, 100, false)]))
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .bufferOutsideMemory(address: end - 50, length: 100))
    }

    func testLengthThatWrapsTheAddressSpaceBreaksTheQueue() {
        var q = queue()
        driver.makeAvailable(driver.chain([(UInt64.max - 10, 100, false)]))
        XCTAssertTrue(isBroken(receive(&q).0))
        var q2 = queue()
        driver.setDescriptor(0, address: Self.guestBase + 0x1000, length: UInt32.max, flags: 0)
        driver.makeAvailable(0)
        XCTAssertTrue(isBroken(receive(&q2).0), "a length past the region from inside it")
    }

    func testAvailIndexMoreThanTheSizeAheadBreaksTheQueue() {
        var q = queue()
        driver.setAvailIndex(UInt16(driver.size + 1))
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .availIndexAhead(lastAvail: 0, availIndex: UInt16(driver.size + 1)))
    }

    func testHeadPastTheSizeBreaksTheQueue() {
        var q = queue()
        driver.makeAvailable(UInt16(driver.size))
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .headPastSize(UInt16(driver.size)))
    }

    func testNextPastTheTableBreaksTheQueue() {
        var q = queue()
        driver.setDescriptor(0, address: driver.buffer(pattern(20)), length: 20, flags: DescriptorFlag.next, next: UInt16(driver.size))
        driver.makeAvailable(0)
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .nextPastTable(UInt16(driver.size)))
    }

    func testIndirectInsideIndirectBreaksTheQueue() {
        var q = queue()
        let inner = driver.buffer(length: 16)
        driver.setDescriptor(0, address: driver.buffer(pattern(20)), length: 20, flags: 0, table: backing + Int(inner - Self.guestBase))
        let outer = driver.buffer(length: 16)
        driver.setDescriptor(0, address: inner, length: 16, flags: DescriptorFlag.indirect, table: backing + Int(outer - Self.guestBase))
        driver.setDescriptor(3, address: outer, length: 16, flags: DescriptorFlag.indirect)
        driver.makeAvailable(3)
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .nestedIndirect)
    }

    func testBadIndirectTablesBreakTheQueue() {
        let table = driver.buffer(length: 64)
        for (length, fault) in [(UInt32(20), VirtqueueFault.badIndirectTable(address: table, length: 20)),
                                (UInt32(0), .badIndirectTable(address: table, length: 0))] {
            var q = queue()
            driver.setDescriptor(0, address: table, length: length, flags: DescriptorFlag.indirect)
            driver.setAvailIndex(0)
            driver.makeAvailable(0)
            XCTAssertTrue(isBroken(receive(&q).0))
            XCTAssertEqual(q.fault, fault)
        }
        var q = queue(indirect: false)
        driver.setDescriptor(0, address: table, length: 64, flags: DescriptorFlag.indirect)
        driver.setAvailIndex(0)
        driver.makeAvailable(0)
        XCTAssertTrue(isBroken(receive(&q).0))
        XCTAssertEqual(q.fault, .indirectNotNegotiated)
        var q2 = queue()
        let end = Self.guestBase + UInt64(Self.regionBytes)
        driver.setDescriptor(0, address: end - 16, length: 64, flags: DescriptorFlag.indirect)
        XCTAssertTrue(isBroken(receive(&q2).0))
        XCTAssertEqual(q2.fault, .indirectOutsideMemory(address: end - 16, length: 64))
    }

    func testWrongDirectionBreaksTheQueue() {
        var tx = queue()
        driver.makeAvailable(driver.chain([(driver.buffer(length: 100), 100, true)]))
        XCTAssertTrue(isBroken(receive(&tx).0))
        XCTAssertEqual(tx.fault, .writableInTransmitChain)
        var rx = queue()
        XCTAssertEqual(send(&rx, pattern(50)), .done(length: 62), "the writable chain is fine for receive")
        driver.makeAvailable(driver.chain([(driver.buffer(length: 100), 100, false)]))
        XCTAssertTrue(isBroken(send(&rx, pattern(50))))
        XCTAssertEqual(rx.fault, .readableInReceiveChain)
    }

    func testBufferAcrossTwoRegionsIsRefused() {
        // A second region right after the first (guest addresses contiguous): a buffer straddling
        // them is refused rather than copied across two mappings.
        let second = UnsafeMutableRawPointer.allocate(byteCount: 65_536, alignment: 4096)
        defer { second.deallocate() }
        let secondBase = Self.guestBase + UInt64(Self.regionBytes)
        XCTAssertTrue(memory.add(guestAddress: secondBase, userAddress: 0x1000_0000, size: 65_536, host: second))
        XCTAssertNotNil(memory.translate(guest: secondBase + 10, length: 100))
        XCTAssertNil(memory.translate(guest: secondBase - 10, length: 100))
        var q = queue()
        driver.makeAvailable(driver.chain([(secondBase + 100, 200, false)]))
        XCTAssertEqual(receive(&q).0, .done(length: 200), "inside the second region is fine")
        driver.makeAvailable(driver.chain([(secondBase - 100, 200, false)]))
        XCTAssertTrue(isBroken(receive(&q).0))
    }

    func testRingsOutsideMemoryOrMisalignedAreNotTranslated() {
        var q = Virtqueue()
        q.size = 256
        q.descriptorUserAddress = Self.userBase + UInt64(Self.regionBytes) - 100
        q.availUserAddress = driver.availUser
        q.usedUserAddress = driver.usedUser
        q.addressesSet = true
        XCTAssertFalse(q.translate(memory))
        XCTAssertFalse(q.isTranslated)
        q.descriptorUserAddress = driver.descUser + 8
        XCTAssertFalse(q.translate(memory), "descriptor table not 16-byte aligned")
        q.descriptorUserAddress = driver.descUser
        XCTAssertTrue(q.translate(memory))
    }

    func testGuestMemoryRefusesRegionsThatWrap() {
        var m = GuestMemory()
        XCTAssertFalse(m.add(guestAddress: UInt64.max - 10, userAddress: 0, size: 100, host: backing))
        XCTAssertFalse(m.add(guestAddress: 0, userAddress: UInt64.max - 10, size: 100, host: backing))
        XCTAssertFalse(m.add(guestAddress: 0, userAddress: 0, size: 0, host: backing))
        for i in 0 ..< GuestMemory.maxRegions { XCTAssertTrue(m.add(guestAddress: UInt64(i) << 32, userAddress: UInt64(i) << 32, size: 10, host: backing)) }
        XCTAssertFalse(m.add(guestAddress: 1 << 40, userAddress: 1 << 40, size: 10, host: backing))
    }
}
