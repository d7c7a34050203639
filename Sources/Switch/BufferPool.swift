// BufferPool: fixed-size frame buffers shared by every port, reference counted, never allocated per frame.
//
// Design: one anonymous mapping reserved once (MAP_NORESERVE, so untouched slots cost no memory)
// holds `capacity` slots of `slotSize` bytes. A free stack hands out slot indexes; a per-slot
// reference count lets one received buffer wait in several ports' send queues (flooding) without
// a copy. The usable count (`limit`) grows with the ports: every port may park `queueFrames`
// buffers, and receives keep a reserve on top, so frames stuck behind a stalled peer can never
// starve the receive side (docs/DESIGN.md §3). Slots are handed out LIFO so the resident set stays small.
import Glibc
import SwitchSys

struct BufferPool {
    /// Bytes per slot: a 64 KiB super-frame (65550 bytes) plus headers, rounded to whole pages.
    static let slotSize = 69_632
    /// Where a received frame starts inside its slot: room for a virtio-net header and a stream
    /// prefix in front.
    static let headroom = 64

    let base: UnsafeMutableRawPointer
    let capacity: Int
    private let freeStack: UnsafeMutablePointer<UInt32>
    private let refcounts: UnsafeMutablePointer<UInt16>
    private var freeCount = 0
    /// Slots never handed out yet: `nextFresh ..< limit` may be taken without touching the stack.
    private var nextFresh = 0
    /// How many slots may be in use at once.
    private(set) var limit: Int
    /// Slots in use right now.
    private(set) var inUse = 0

    init(capacity: Int, initialLimit: Int) throws(SwitchError) {
        let bytes = capacity * Self.slotSize
        do { base = try AnonymousMemory.map(bytes: bytes) } catch {
            throw SwitchError("cannot reserve \(bytes >> 20) MiB for frame buffers: \(error.errno)")
        }
        self.capacity = capacity
        freeStack = .allocate(capacity: capacity)
        refcounts = .allocate(capacity: capacity)
        refcounts.initialize(repeating: 0, count: capacity)
        limit = min(initialLimit, capacity)
    }

    func destroy() {
        AnonymousMemory.unmap(base, bytes: capacity * Self.slotSize)
        freeStack.deallocate()
        refcounts.deallocate()
    }

    /// Raises or lowers the number of slots that may be in use (slots in use stay valid).
    mutating func setLimit(_ newLimit: Int) { limit = max(1, min(newLimit, capacity)) }

    /// Free slots left under the limit.
    var available: Int { max(0, limit - inUse) }

    /// A slot with reference count 1, or nil when the limit is reached.
    @inline(__always)
    mutating func allocate() -> UInt32? {
        guard inUse < limit else { return nil }
        let slot: UInt32
        if freeCount > 0 {
            freeCount -= 1
            slot = freeStack[freeCount]
        } else if nextFresh < capacity {
            slot = UInt32(nextFresh)
            nextFresh += 1
        } else {
            return nil
        }
        refcounts[Int(slot)] = 1
        inUse += 1
        return slot
    }

    @inline(__always)
    func retain(_ slot: UInt32) { refcounts[Int(slot)] &+= 1 }

    @inline(__always)
    mutating func release(_ slot: UInt32) {
        let i = Int(slot)
        precondition(refcounts[i] > 0, "buffer \(slot) released more often than retained")
        refcounts[i] -= 1
        if refcounts[i] == 0 {
            freeStack[freeCount] = slot
            freeCount += 1
            inUse -= 1
        }
    }

    @inline(__always)
    func pointer(_ slot: UInt32, _ offset: Int = 0) -> UnsafeMutableRawPointer {
        base + Int(slot) * Self.slotSize + offset
    }

    func referenceCount(_ slot: UInt32) -> Int { Int(refcounts[Int(slot)]) }
}
