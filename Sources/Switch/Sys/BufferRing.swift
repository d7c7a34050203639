// BufferRing: a provided-buffer ring of pool slots that multishot receives pick their buffers from.
//
// The kernel takes the next buffer from the ring for each frame a multishot read or recvmsg
// completes and names it by buffer id in the completion; the id is the pool slot's index, so the
// frame is forwarded from that slot with no copy. The loop puts fresh slots back after each batch.
// When the ring runs dry, multishot requests end (ENOBUFS) and are re-armed once it is refilled.
//
// Why more than one ring: what a ring holds is all its readers can take between two refills, and
// the kernel hands it out to whoever has data first. One ring shared by every port let a port that
// floods take all of it and starve the rest, so each port that reads its own fd has a small ring
// of its own (its own buffer group, `ReceiveRings`); the shared ring (group 0) is left to the
// listening dgram sockets, whose one recvmsg cannot tell senders apart before it takes a buffer.
//
// The ring keeps a shadow of the slots it holds, in ring order: the kernel consumes a ring from
// its head in order, so the slots from `head` to `tail` are the ones it has not taken, and a ring
// that is torn down (its port removed) gives exactly those back to the pool.
import CLiburing
import Glibc
import Proto

struct BufferRing {
    /// The buffer group of the shared ring (listening dgram sockets).
    static let sharedGroup: UInt16 = 0
    /// Where in a slot the kernel writes: room in front of the frame for a 12-byte virtio-net header.
    static let start = BufferPool.headroom - VirtioNetHeader.size
    let group: UInt16
    let entries: Int
    private let mask: Int32
    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let bytes: Int
    /// The slot at each ring position, `head ..< tail` (modulo `entries`) still in the ring.
    private let slots: UnsafeMutablePointer<UInt32>
    private var head = 0
    private var tail = 0
    /// Slots currently in the ring.
    var count: Int { tail - head }

    /// Maps and registers a ring of `entries` (a power of two) buffers as buffer group `group`.
    init(uring: IOUring, group: UInt16, entries: Int) throws(SwitchError) {
        precondition(entries > 0 && entries & (entries - 1) == 0, "ring entries must be a power of two")
        self.group = group
        self.entries = entries
        mask = Int32(entries - 1)
        bytes = entries * MemoryLayout<io_uring_buf>.stride
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SwitchError("buffer ring: \(errnoText(errno))") }
        ring = p.assumingMemoryBound(to: io_uring_buf_ring.self)
        io_uring_buf_ring_init(ring)
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: p))
        registration.ring_entries = UInt32(entries)
        registration.bgid = group
        let r = uring.registerBufferRing(&registration)
        guard r == 0 else {
            munmap(p, bytes)
            throw SwitchError("io_uring buffer ring \(group) registration failed: \(errnoText(-r))")
        }
        slots = .allocate(capacity: entries)
    }

    /// Unmaps the ring (the loop is exiting: the io_uring goes with it, the pool too).
    func destroy() {
        munmap(ring, bytes)
        slots.deallocate()
    }

    /// Unregisters the ring, gives the slots the kernel has not taken back to `pool`, and unmaps it.
    /// Only when no request that selects from this group is in flight.
    mutating func tearDown(uring: IOUring, pool: inout BufferPool) {
        _ = uring.unregisterBufferRing(group: group)
        while head < tail {
            pool.release(slots[head & Int(mask)])
            head += 1
        }
        destroy()
    }

    /// Fills the ring with slots from `pool` as far as it has room (and the pool has slots).
    mutating func refill(from pool: inout BufferPool) {
        var added: Int32 = 0
        while count < entries, let slot = pool.allocate() {
            io_uring_buf_ring_add(ring, pool.pointer(slot, Self.start), UInt32(BufferPool.slotSize - Self.start),
                                  UInt16(slot), mask, added)
            slots[tail & Int(mask)] = slot
            added += 1
            tail += 1
        }
        if added > 0 { io_uring_buf_ring_advance(ring, added) }
    }

    /// The slot the kernel takes next, if the ring holds any.
    var next: UInt32? { head < tail ? slots[head & Int(mask)] : nil }

    /// The kernel took `slot` (named in a completion): it now belongs to the caller.
    @inline(__always)
    mutating func taken(_ slot: UInt32) {
        let m = Int(mask)
        if slots[head & m] != slot {
            // Not the head: the kernel took out of order (it does not today). Keep `head ..< tail`
            // the set of slots still in the ring by swapping the taken one to the head.
            var i = head + 1
            while i < tail && slots[i & m] != slot { i += 1 }
            if i < tail { slots[i & m] = slots[head & m] }
        }
        head += 1
    }
}

extension UnsafeMutablePointer where Pointee == io_uring_sqe {
    /// Makes the request pick its buffer from provided-buffer group `group` (IOSQE_BUFFER_SELECT).
    @inline(__always) func selectBuffer(group: UInt16) {
        pointee.flags |= 1 << 5
        pointee.buf_group = group
    }
}

/// Completion flag bits (linux/io_uring.h) that Swift sees only as macros.
enum CompletionFlag {
    static let buffer: UInt32 = 1 << 0   // IORING_CQE_F_BUFFER
    static let more: UInt32 = 1 << 1     // IORING_CQE_F_MORE
    static let bufferShift: UInt32 = 16  // IORING_CQE_BUFFER_SHIFT
}
