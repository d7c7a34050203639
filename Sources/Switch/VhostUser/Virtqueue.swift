// Virtqueue: the device side of one split virtqueue in guest memory (virtio 1.x §2.7), hostile-guest safe.
//
// Layout (little-endian, virtio §2.7.5–2.7.8): a descriptor table of `size` 16-byte entries
// {addr u64, len u32, flags u16 (NEXT 1, WRITE 2, INDIRECT 4), next u16}; the driver's avail ring
// {flags u16, idx u16, ring[size] u16, used_event u16}; the device's used ring {flags u16, idx u16,
// ring[size] {id u32, len u32}, avail_event u16}.
//
// Design:
// * In order: every chain is put on the used ring as soon as it is consumed, so `usedIndex` always
//   equals `lastAvail` between calls; entries are written at once and the used index is published
//   only by `publishUsed` (once per batch, with one release store and one full fence).
// * The avail index is loaded (acquire) only when everything seen so far is consumed: one shared
//   cache line read per batch, not per frame.
// * The guest owns the memory and may be hostile or buggy: every index, descriptor and length is
//   read once (Fence.loadOnce) and checked before use; a chain visits at most `size` descriptors
//   (a loop ends there), an indirect table at most its own length; no nested indirect tables;
//   every buffer lies in one region (GuestMemory). A violation is a `VirtqueueFault`: the queue
//   stops (`fault` set) and the caller drops the device (the protocol has no way to resync).
// * Event suppression (virtio §2.7.7, §2.7.10): with VIRTIO_RING_F_EVENT_IDX the device signals
//   only when the used index passes the driver's `used_event`, and asks for kicks by writing
//   `avail_event`; without it, the driver's NO_INTERRUPT flag decides and the device never sets
//   NO_NOTIFY (the guest kicks every time, which only costs it).
import Glibc
import Proto
import SwitchSys

/// What a ring operation did (the API the forwarding loop codes against).
enum GuestTransfer: Equatable {
    /// Bytes moved (receive: written to the destination, header included; send: header + frame).
    case done(length: Int)
    /// Nothing waiting (receive) .
    case empty
    /// Not enough guest buffers for the frame (send); nothing was consumed.
    case noRoom
    /// The guest broke the ring protocol; the device is unusable (the loop removes the port).
    case broken(String)
}

/// How a guest broke a ring.
enum VirtqueueFault: Equatable, CustomStringConvertible {
    case availIndexAhead(lastAvail: UInt16, availIndex: UInt16)
    case headPastSize(UInt16)
    case chainLoop
    case nextPastTable(UInt16)
    case bufferOutsideMemory(address: UInt64, length: UInt32)
    case indirectNotNegotiated
    case nestedIndirect
    case indirectWithNext
    case badIndirectTable(address: UInt64, length: UInt32)
    case indirectOutsideMemory(address: UInt64, length: UInt32)
    case writableInTransmitChain
    case readableInReceiveChain

    var description: String {
        switch self {
        case .availIndexAhead(let last, let index):
            return "avail index \(index) is more than the ring size ahead of the last one used (\(last))"
        case .headPastSize(let head): return "avail ring names descriptor \(head), past the ring size"
        case .chainLoop: return "descriptor chain longer than its table (a loop)"
        case .nextPastTable(let next): return "descriptor chain continues at \(next), past its table"
        case .bufferOutsideMemory(let address, let length):
            return "buffer of \(length) bytes at guest address 0x\(String(address, radix: 16)) is outside guest memory"
        case .indirectNotNegotiated: return "indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC"
        case .nestedIndirect: return "indirect descriptor inside an indirect table"
        case .indirectWithNext: return "indirect descriptor with NEXT set"
        case .badIndirectTable(let address, let length):
            return "indirect table of \(length) bytes at 0x\(String(address, radix: 16)) (not a multiple of 16, empty, too long or misaligned)"
        case .indirectOutsideMemory(let address, let length):
            return "indirect table of \(length) bytes at 0x\(String(address, radix: 16)) is outside guest memory"
        case .writableInTransmitChain: return "device-writable descriptor in a transmit chain"
        case .readableInReceiveChain: return "device-readable descriptor in a receive chain"
        }
    }
}

/// Descriptor flags (virtio §2.7.5).
enum DescriptorFlag {
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4
}

/// Walks one descriptor chain, direct or through an indirect table, checking each step.
struct DescriptorChain {
    /// One step: a buffer, the end of the chain, or a fault.
    enum Step {
        case segment(UnsafeMutableRawPointer, Int, writable: Bool)
        case end
        case fault(VirtqueueFault)
    }

    /// The longest indirect table accepted (entries): the largest ring size; Linux's longest net
    /// chain is MAX_SKB_FRAGS + 2.
    static let maxIndirectEntries = Virtqueue.maxSize

    private var table: UnsafeRawPointer
    private var tableSize: Int
    private var index: Int
    private var budget: Int
    private var inIndirect = false
    private var finished = false
    private let indirectAllowed: Bool

    /// The chain starting at descriptor `head` (< `tableSize`) of `table`.
    init(table: UnsafeRawPointer, tableSize: Int, head: Int, indirectAllowed: Bool) {
        self.table = table
        self.tableSize = tableSize
        self.index = head
        self.budget = tableSize
        self.indirectAllowed = indirectAllowed
    }

    /// The next non-empty buffer of the chain.
    @inline(__always)
    mutating func next(_ memory: GuestMemory) -> Step {
        while true {
            if finished { return .end }
            // Each descriptor of a table can be visited once in a loop-free chain.
            guard budget > 0 else { return .fault(.chainLoop) }
            budget -= 1
            let d = table + index &* 16
            let address = UInt64(littleEndian: Fence.loadOnce(d, as: UInt64.self))
            let length = UInt32(littleEndian: Fence.loadOnce(d + 8, as: UInt32.self))
            let flags = UInt16(littleEndian: Fence.loadOnce(d + 12, as: UInt16.self))
            let next = UInt16(littleEndian: Fence.loadOnce(d + 14, as: UInt16.self))
            if flags & DescriptorFlag.indirect != 0 {
                // virtio §2.7.5.3.1: INDIRECT never with NEXT, never inside an indirect table; the
                // table is whole entries. 8-byte alignment so the entries' loads are aligned.
                guard indirectAllowed else { return .fault(.indirectNotNegotiated) }
                guard !inIndirect else { return .fault(.nestedIndirect) }
                guard flags & DescriptorFlag.next == 0 else { return .fault(.indirectWithNext) }
                let entries = Int(length / 16)
                guard length % 16 == 0, entries > 0, entries <= Self.maxIndirectEntries, address % 8 == 0 else {
                    return .fault(.badIndirectTable(address: address, length: length))
                }
                guard let indirectTable = memory.translate(guest: address, length: UInt64(length)) else {
                    return .fault(.indirectOutsideMemory(address: address, length: length))
                }
                table = UnsafeRawPointer(indirectTable)
                tableSize = entries
                index = 0
                budget = entries
                inIndirect = true
                continue
            }
            if flags & DescriptorFlag.next != 0 {
                guard Int(next) < tableSize else { return .fault(.nextPastTable(next)) }
                index = Int(next)
            } else {
                finished = true
            }
            if length == 0 { continue }
            guard let p = memory.translate(guest: address, length: UInt64(length)) else {
                return .fault(.bufferOutsideMemory(address: address, length: length))
            }
            return .segment(p, Int(length), writable: flags & DescriptorFlag.write != 0)
        }
    }
}

/// One split virtqueue: its configuration from the frontend and the device's position in it.
struct Virtqueue {
    /// The largest ring size accepted (QEMU's VIRTQUEUE_MAX_SIZE).
    static let maxSize = 1024

    // Configuration (SET_VRING_NUM / ADDR / BASE / KICK / CALL / ERR / ENABLE).
    /// Entries in the ring (a power of two), 0 until SET_VRING_NUM.
    var size = 0
    var descriptorUserAddress: UInt64 = 0
    var availUserAddress: UInt64 = 0
    var usedUserAddress: UInt64 = 0
    var addressesSet = false
    /// VIRTIO_RING_F_EVENT_IDX and VIRTIO_F_RING_INDIRECT_DESC negotiated.
    var eventIndex = false
    var indirectAllowed = false
    var kickFD: Int32 = -1
    var callFD: Int32 = -1
    var errorFD: Int32 = -1
    /// Started by SET_VRING_KICK, stopped by GET_VRING_BASE (vhost-user.rst "Ring states").
    var started = false
    /// SET_VRING_ENABLE's last word.
    var enabled = false
    /// SET_VRING_BASE or ADDR came: take the indices from the rings on the next translation.
    var needsSync = true

    // The rings in our address space (nil until translated).
    private(set) var descriptors: UnsafeMutableRawPointer? = nil
    private(set) var avail: UnsafeMutableRawPointer? = nil
    private(set) var used: UnsafeMutableRawPointer? = nil

    // Device position.
    /// The next avail ring entry to consume.
    var lastAvail: UInt16 = 0
    /// The next used ring entry to write (equals `lastAvail` between calls: in-order completion).
    private(set) var usedIndex: UInt16 = 0
    /// The used index the guest has been shown.
    private(set) var publishedUsed: UInt16 = 0
    /// The avail index as last read from the ring.
    private(set) var availSeen: UInt16 = 0
    /// Why the queue stopped, once the guest broke it.
    private(set) var fault: VirtqueueFault? = nil

    // Counters.
    /// Transmit chains dropped because the frame did not fit the destination.
    private(set) var oversizeDrops: UInt64 = 0
    /// Transmit chains dropped because they were shorter than the virtio-net header.
    private(set) var shortDrops: UInt64 = 0
    /// Transmit chains consumed and discarded on a disabled ring.
    private(set) var disabledDiscards: UInt64 = 0

    init() {}

    /// Whether the ring addresses are translated.
    var isTranslated: Bool { descriptors != nil }

    private var mask: Int { size &- 1 }

    /// Offsets inside the rings (virtio §2.7.6, §2.7.8).
    private var usedEventOffset: Int { 4 + 2 * size }      // in avail
    private var availEventOffset: Int { 4 + 8 * size }     // in used

    // MARK: - Translation

    /// Translates the ring addresses through `memory`. False when they are set but do not lie
    /// (aligned) in the regions; true when they do or when something is still missing (size,
    /// addresses, regions). On success after SET_VRING_BASE/ADDR, the indices are synced with the
    /// used ring (see `sync`).
    mutating func translate(_ memory: GuestMemory) -> Bool {
        descriptors = nil
        avail = nil
        used = nil
        guard size > 0, addressesSet, memory.count > 0 else { return true }
        let event = eventIndex ? 2 : 0
        guard let d = memory.translate(user: descriptorUserAddress, length: UInt64(16 * size)),
              let a = memory.translate(user: availUserAddress, length: UInt64(4 + 2 * size + event)),
              let u = memory.translate(user: usedUserAddress, length: UInt64(4 + 8 * size + event)) else {
            return false
        }
        // Alignment of virtio §2.7 (descriptors 16, avail 2, used 4), which the index loads and
        // stores need to be single instructions.
        guard UInt(bitPattern: d) % 16 == 0, UInt(bitPattern: a) % 2 == 0, UInt(bitPattern: u) % 4 == 0 else {
            return false
        }
        descriptors = d
        avail = a
        used = u
        if needsSync { sync() }
        return true
    }

    /// Takes the used index from the used ring, as the ring was left by the previous backend (or
    /// 0 on a fresh ring). Completion is in order, so every chain before it was consumed: a base
    /// from SET_VRING_BASE that differs (a backend that died before GET_VRING_BASE) yields to it,
    /// as libvhost-user does for in-order queues.
    private mutating func sync() {
        guard let used else { return }
        let usedInRing = UInt16(littleEndian: Fence.loadAcquire(used + 2))
        if usedInRing != lastAvail {
            Log.info("vhost-user: ring resumes at used index \(usedInRing) (base was \(lastAvail))")
        }
        lastAvail = usedInRing
        usedIndex = usedInRing
        publishedUsed = usedInRing
        availSeen = usedInRing
        needsSync = false
    }

    /// Forgets the translation (the memory it points into is going away).
    mutating func dropTranslation() {
        descriptors = nil
        avail = nil
        used = nil
    }

    /// Stops the queue for good with `fault`.
    private mutating func fail(_ fault: VirtqueueFault) -> GuestTransfer {
        self.fault = fault
        return .broken(fault.description)
    }

    // MARK: - Ring access

    /// Reloads the avail index; false (with `fault` set) when it is more than `size` ahead.
    @inline(__always)
    private mutating func refreshAvail(_ avail: UnsafeMutableRawPointer) -> Bool {
        let index = UInt16(littleEndian: Fence.loadAcquire(avail + 2))
        guard Int(index &- lastAvail) <= size else {
            fault = .availIndexAhead(lastAvail: lastAvail, availIndex: index)
            return false
        }
        availSeen = index
        return true
    }

    /// The head descriptor of avail entry `position`; nil (with `fault` set) when past the ring.
    @inline(__always)
    private mutating func head(at position: UInt16, _ avail: UnsafeMutableRawPointer) -> Int? {
        let head = UInt16(littleEndian: Fence.loadOnce(avail + 4 + 2 * (Int(position) & mask), as: UInt16.self))
        guard Int(head) < size else {
            fault = .headPastSize(head)
            return nil
        }
        return Int(head)
    }

    /// Writes used entry `position` (not yet visible to the guest: see `publishUsed`).
    @inline(__always)
    private func writeUsed(at position: UInt16, head: Int, length: Int, _ used: UnsafeMutableRawPointer) {
        let entry = used + 4 + 8 * (Int(position) & mask)
        entry.storeBytes(of: UInt32(truncatingIfNeeded: head).littleEndian, as: UInt32.self)
        entry.storeBytes(of: UInt32(truncatingIfNeeded: length).littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    /// Copies the next chain the driver made available into `destination` (transmit queue). Chains
    /// longer than `capacity` or shorter than `minimumLength` are consumed and counted as dropped
    /// (used length 0) and the next one is tried; with `discard` every chain is consumed unread (a
    /// disabled ring). `.empty` when nothing is waiting, or after `size` chains dropped in one call
    /// (`enableNotification` then says more is waiting).
    mutating func receive(into destination: UnsafeMutableRawPointer, capacity: Int, minimumLength: Int,
                          discard: Bool, memory: GuestMemory) -> GuestTransfer {
        if let fault { return .broken(fault.description) }
        guard let descriptors, let avail, let used else { return .empty }
        // Chains consumed without a frame for the caller. After a ring's worth the call returns
        // `.empty` so a guest that keeps posting junk cannot hold the loop thread in one call.
        var dropped = 0
        while dropped < size {
            if lastAvail == availSeen {
                guard refreshAvail(avail) else { return .broken(fault!.description) }
                if lastAvail == availSeen { return .empty }
            }
            guard let head = head(at: lastAvail, avail) else { return .broken(fault!.description) }
            var chain = DescriptorChain(table: descriptors, tableSize: size, head: head, indirectAllowed: indirectAllowed)
            var total = 0
            var fits = !discard
            walk: while true {
                switch chain.next(memory) {
                case .segment(let p, let length, let writable):
                    // virtio-net §5.1.6.2: a transmit buffer is read-only for the device.
                    if writable { return fail(.writableInTransmitChain) }
                    if fits {
                        if length > capacity - total {
                            fits = false
                        } else {
                            memcpy(destination + total, p, length)
                        }
                    }
                    total += length
                case .end: break walk
                case .fault(let f): return fail(f)
                }
            }
            writeUsed(at: usedIndex, head: head, length: 0, used)
            usedIndex &+= 1
            lastAvail &+= 1
            if discard {
                disabledDiscards &+= 1
            } else if !fits {
                oversizeDrops &+= 1
            } else if total < minimumLength {
                shortDrops &+= 1
            } else {
                return .done(length: total)
            }
            dropped += 1
        }
        return .empty
    }

    /// Writes `header` (its first `headerSize` bytes, `numBuffers` set here) and `length` bytes of
    /// `frame` into the driver's receive buffers: one chain, or with `mergeable` as many as it takes
    /// (virtio-net §5.1.6.3.1, MRG_RXBUF). All or nothing: `.noRoom`, with nothing consumed, when
    /// the buffers run out (or, without `mergeable`, when the frame does not fit one chain).
    mutating func send(header: VirtioNetHeader, headerSize: Int, frame: UnsafeRawPointer, length: Int,
                       mergeable: Bool, memory: GuestMemory) -> GuestTransfer {
        if let fault { return .broken(fault.description) }
        guard let descriptors, let avail, let used else { return .noRoom }
        var headerBytes: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &headerBytes) { headerBuffer -> GuestTransfer in
            let headerStart = headerBuffer.baseAddress!
            header.store(to: headerStart)
            let total = headerSize + length
            var written = 0
            var buffers = 0
            // Where bytes 10 and 11 of the header (num_buffers) landed, to fill in at the end.
            var numBuffersLow: UnsafeMutableRawPointer? = nil
            var numBuffersHigh: UnsafeMutableRawPointer? = nil
            while written < total {
                if buffers == 1 && !mergeable {
                    // Without MRG_RXBUF a frame must fit one chain (§5.1.6.3.1). Refresh what we know
                    // of the ring so `enableNotification` waits for buffers added after this.
                    guard refreshAvail(avail) else { return .broken(fault!.description) }
                    return .noRoom
                }
                let position = lastAvail &+ UInt16(truncatingIfNeeded: buffers)
                if position == availSeen {
                    guard refreshAvail(avail) else { return .broken(fault!.description) }
                    if position == availSeen { return .noRoom }
                }
                guard let head = head(at: position, avail) else { return .broken(fault!.description) }
                var chain = DescriptorChain(table: descriptors, tableSize: size, head: head, indirectAllowed: indirectAllowed)
                var chainWritten = 0
                walk: while written < total {
                    switch chain.next(memory) {
                    case .segment(let p, let segmentLength, let writable):
                        if !writable { return fail(.readableInReceiveChain) }
                        var n = min(segmentLength, total - written)
                        var target = p
                        if written < headerSize {
                            let h = min(headerSize - written, n)
                            memcpy(target, headerStart + written, h)
                            if headerSize >= 12 {
                                if written <= 10 && 10 < written + h { numBuffersLow = target + (10 - written) }
                                if written <= 11 && 11 < written + h { numBuffersHigh = target + (11 - written) }
                            }
                            target += h
                            written += h
                            chainWritten += h
                            n -= h
                        }
                        if n > 0 {
                            memcpy(target, frame + (written - headerSize), n)
                            written += n
                            chainWritten += n
                        }
                    case .end: break walk
                    case .fault(let f): return fail(f)
                    }
                }
                writeUsed(at: usedIndex &+ UInt16(truncatingIfNeeded: buffers), head: head, length: chainWritten, used)
                buffers += 1
            }
            // num_buffers (little-endian) goes into the header already in the first buffer(s).
            let count = UInt16(truncatingIfNeeded: buffers)
            numBuffersLow?.storeBytes(of: UInt8(truncatingIfNeeded: count), as: UInt8.self)
            numBuffersHigh?.storeBytes(of: UInt8(truncatingIfNeeded: count >> 8), as: UInt8.self)
            lastAvail &+= count
            usedIndex &+= count
            return .done(length: total)
        }
    }

    /// Publishes the used entries written since the last call (release store of `used.idx`) and
    /// says whether the driver wants an interrupt for them: EVENT_IDX's `vring_need_event(used_event,
    /// new, old)` (virtio §2.7.10), otherwise the avail ring's NO_INTERRUPT flag is clear.
    mutating func publishUsed() -> Bool {
        guard let avail, let used, usedIndex != publishedUsed else { return false }
        let old = publishedUsed
        let new = usedIndex
        Fence.storeRelease(new.littleEndian, to: used + 2)
        publishedUsed = new
        // Store (used.idx) → load (used_event or flags): the one order x86 does not keep. Without the
        // fence the driver could set used_event after our read and miss our store: no interrupt.
        Fence.fullFence()
        if eventIndex {
            let event = UInt16(littleEndian: Fence.loadOnce(avail + usedEventOffset, as: UInt16.self))
            return new &- event &- 1 < new &- old
        }
        let flags = UInt16(littleEndian: Fence.loadOnce(avail, as: UInt16.self))
        return flags & 1 == 0  // VRING_AVAIL_F_NO_INTERRUPT
    }

    /// Asks the driver to kick when it makes more buffers available than the device has seen
    /// (EVENT_IDX: `avail_event` = the avail index last read), then looks again. True when the avail
    /// index has moved past `lastAvail` (`sinceSeen` false: transmit, anything left to consume) or
    /// past the index last read (`sinceSeen` true: receive after `.noRoom`, new buffers came).
    mutating func enableNotification(sinceSeen: Bool) -> Bool {
        guard fault == nil, let avail, let used else { return false }
        if eventIndex {
            Fence.storeRelease(availSeen.littleEndian, to: used + availEventOffset)
        }
        // Store (avail_event) → load (avail.idx): without the fence the driver may add a buffer, read
        // the old avail_event and skip the kick while we read the old index: both wait forever.
        Fence.fullFence()
        let now = UInt16(littleEndian: Fence.loadAcquire(avail + 2))
        return sinceSeen ? now != availSeen : now != lastAvail
    }

    /// Makes the used entries visible (at GET_VRING_BASE: the frontend takes over from there).
    mutating func flushUsed() {
        guard let used, usedIndex != publishedUsed else { return }
        Fence.storeRelease(usedIndex.littleEndian, to: used + 2)
        publishedUsed = usedIndex
    }

    /// The queue as after GET_VRING_BASE and before a new configuration: stopped, indices kept.
    mutating func stop() {
        started = false
    }
}
