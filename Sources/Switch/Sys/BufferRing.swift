// BufferRing: a provided-buffer ring of pool slots that multishot receives pick their buffers from.
//
// The kernel takes the next buffer from the ring for each frame a multishot read or recvmsg
// completes and names it by buffer id in the completion; the id is the pool slot's index, so the
// frame is forwarded from that slot with no copy. The loop puts fresh slots back after each batch.
// When the ring runs dry, multishot requests end (ENOBUFS) and are re-armed once it is refilled.
import CLiburing
import Glibc
import Proto

struct BufferRing {
    static let groupID: UInt16 = 0
    /// Where in a slot the kernel writes: room in front of the frame for a 12-byte virtio-net header.
    static let start = BufferPool.headroom - VirtioNetHeader.size
    let entries: Int
    private let mask: Int32
    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let bytes: Int
    /// Slots currently in the ring.
    private(set) var count = 0

    init(uring: IOUring, entries: Int) throws(SwitchError) {
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
        registration.bgid = Self.groupID
        let r = uring.registerBufferRing(&registration)
        guard r == 0 else {
            munmap(p, bytes)
            throw SwitchError("io_uring buffer ring registration failed: \(errnoText(-r))")
        }
    }

    func destroy() { munmap(ring, bytes) }

    /// Fills the ring with slots from `pool` as far as it has room (and the pool has slots).
    mutating func refill(from pool: inout BufferPool) {
        var added: Int32 = 0
        while count < entries, let slot = pool.allocate() {
            io_uring_buf_ring_add(ring, pool.pointer(slot, Self.start), UInt32(BufferPool.slotSize - Self.start),
                                  UInt16(slot), mask, added)
            added += 1
            count += 1
        }
        if added > 0 { io_uring_buf_ring_advance(ring, added) }
    }

    /// The kernel took one buffer (named in a completion): it now belongs to the caller.
    mutating func taken() { count -= 1 }
}

extension UnsafeMutablePointer where Pointee == io_uring_sqe {
    /// Makes the request pick its buffer from the provided ring (IOSQE_BUFFER_SELECT).
    @inline(__always) func selectBuffer() {
        pointee.flags |= 1 << 5
        pointee.buf_group = BufferRing.groupID
    }
}

/// Completion flag bits (linux/io_uring.h) that Swift sees only as macros.
enum CompletionFlag {
    static let buffer: UInt32 = 1 << 0   // IORING_CQE_F_BUFFER
    static let more: UInt32 = 1 << 1     // IORING_CQE_F_MORE
    static let bufferShift: UInt32 = 16  // IORING_CQE_BUFFER_SHIFT
}
