// ShardRing: a bounded single-producer/single-consumer ring between two forwarding threads.
//
// Design note (`switchd run --threads N`, docs/decisions.md "Forwarding threads: shards joined by
// trunks"). Frames and table events cross from one shard's thread to another's through these rings,
// never through a lock. The producer alone writes `tail`, the consumer alone writes `head`; each
// publishes its index with a release store after writing (or reading) the slots, and reads the
// other's with an acquire load, the same pairing the virtqueues use (SwitchSys/Fence.swift). The
// indices are free-running UInt16 counters (the capacity is a power of two ≤ 32768, so
// `tail &- head` is the fill level across wrap-around) and sit on cache lines of their own, so the
// two threads do not bounce one line for every entry. Nothing here allocates after `init`, and
// the ring is a plain struct of pointers: copies of it are views of the same storage, which both
// threads hold; it is freed once, by its owner, after both threads have stopped.
import SwitchSys

struct ShardRing<Element> {
    private let slots: UnsafeMutablePointer<Element>
    /// `head` (consumer) at byte 0, `tail` (producer) at byte 64: one cache line each.
    private let indices: UnsafeMutableRawPointer
    private let mask: UInt16
    let capacity: Int

    /// A ring of `capacity` entries (rounded up to a power of two, at most 32768).
    init(capacity: Int, empty: Element) {
        var size = 2
        while size < min(capacity, 32768) { size <<= 1 }
        self.capacity = size
        mask = UInt16(size - 1)
        slots = .allocate(capacity: size)
        slots.initialize(repeating: empty, count: size)
        indices = .allocate(byteCount: 128, alignment: 64)
        indices.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
    }

    /// Frees the storage; neither side may use the ring afterwards.
    func deallocate() {
        slots.deallocate()
        indices.deallocate()
    }

    @inline(__always) private var headPointer: UnsafeMutableRawPointer { indices }
    @inline(__always) private var tailPointer: UnsafeMutableRawPointer { indices + 64 }

    // MARK: - Producer side

    /// Entries the producer may still push (a lower bound: the consumer may have taken more).
    @inline(__always)
    var space: Int {
        let tail = Fence.loadOnce(tailPointer, as: UInt16.self)
        let head = Fence.loadAcquire(headPointer)
        return capacity - Int(tail &- head)
    }

    /// Appends `element`; false (nothing written) when the ring is full.
    @inline(__always)
    func push(_ element: Element) -> Bool {
        let tail = Fence.loadOnce(tailPointer, as: UInt16.self)  // only this thread writes it
        let head = Fence.loadAcquire(headPointer)  // the consumer is done with slots before head
        guard Int(tail &- head) < capacity else { return false }
        slots[Int(tail & mask)] = element
        Fence.storeRelease(tail &+ 1, to: tailPointer)  // the slot is written before it is published
        return true
    }

    // MARK: - Consumer side

    /// Entries waiting for the consumer (a lower bound: the producer may have pushed more).
    @inline(__always)
    var count: Int {
        let head = Fence.loadOnce(headPointer, as: UInt16.self)
        let tail = Fence.loadAcquire(tailPointer)
        return Int(tail &- head)
    }

    /// Takes the oldest entry, or nil when the ring is empty.
    @inline(__always)
    func pop() -> Element? {
        let head = Fence.loadOnce(headPointer, as: UInt16.self)  // only this thread writes it
        let tail = Fence.loadAcquire(tailPointer)  // the slots before tail are written
        guard head != tail else { return nil }
        let element = slots[Int(head & mask)]
        Fence.storeRelease(head &+ 1, to: headPointer)  // the slot is read before it is handed back
        return element
    }
}
