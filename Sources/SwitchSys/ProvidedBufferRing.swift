// ProvidedBufferRing: an io_uring provided-buffer ring that multishot receives pick their buffers from.
//
// The kernel takes the next buffer from the ring for each frame a multishot read or recvmsg
// completes and names it by buffer id in the completion. This type knows buffers only as an
// address, a length and a 16-bit id; which memory they are (the dataplane's pool slots) is the
// caller's business (Switch's `BufferRing` fills it from the pool).
//
// The ring keeps a shadow of the ids it holds, in ring order: the kernel consumes a ring from its
// head in order, so the ids from `head` to `tail` are the ones it has not taken, and a ring that is
// torn down hands exactly those back (`unregister(returning:)`).
//
// `public import CLiburing`: `add`, `advance` and `taken` run per frame from the loop's module and
// must inline there (see IOUring.swift).
public import CLiburing
internal import Glibc

/// One provided-buffer ring (an io_uring buffer group) and the shadow of the buffer ids it holds.
@frozen
public struct ProvidedBufferRing {
    public let group: UInt16
    public let entries: Int
    @usableFromInline let mask: Int32
    @usableFromInline let ring: UnsafeMutablePointer<io_uring_buf_ring>
    @usableFromInline let bytes: Int
    /// The buffer id at each ring position, `head ..< tail` (modulo `entries`) still in the ring.
    @usableFromInline let ids: UnsafeMutablePointer<UInt32>
    @usableFromInline var head = 0
    @usableFromInline var tail = 0
    /// Buffers currently in the ring.
    @inlinable public var count: Int { tail - head }
    /// Whether the ring has room for another buffer.
    @inlinable public var hasRoom: Bool { count < entries }

    /// Maps and registers a ring of `entries` (a power of two) buffers as buffer group `group`.
    public init(uring: IOUring, group: UInt16, entries: Int) throws(SysError) {
        precondition(entries > 0 && entries & (entries - 1) == 0, "ring entries must be a power of two")
        self.group = group
        self.entries = entries
        mask = Int32(entries - 1)
        bytes = entries * MemoryLayout<io_uring_buf>.stride
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            let e = Errno.current
            throw SysError("mmap", errno: e, message: "buffer ring: \(e)")
        }
        ring = p.assumingMemoryBound(to: io_uring_buf_ring.self)
        io_uring_buf_ring_init(ring)
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: p))
        registration.ring_entries = UInt32(entries)
        registration.bgid = group
        let r = uring.registerBufferRing(&registration)
        guard r == 0 else {
            munmap(p, bytes)
            throw SysError("io_uring buffer ring \(group) registration failed", errno: Errno(result: r))
        }
        ids = .allocate(capacity: entries)
    }

    /// Unmaps the ring (the loop is exiting: the io_uring goes with it).
    public func destroy() {
        munmap(ring, bytes)
        ids.deallocate()
    }

    /// Unregisters the ring, hands `giveBack` each id the kernel has not taken, and unmaps it.
    /// Only when no request that selects from this group is in flight.
    public mutating func unregister(uring: IOUring, returning giveBack: (UInt32) -> Void) {
        _ = uring.unregisterBufferRing(group: group)
        while head < tail {
            giveBack(ids[head & Int(mask)])
            head += 1
        }
        destroy()
    }

    /// Queues buffer `id` (`length` bytes at `address`) at the tail; the kernel sees it after
    /// `advance`. `added` counts the buffers queued since the last `advance`. Needs `hasRoom`.
    @inlinable @inline(__always)
    public mutating func add(_ id: UInt32, address: UnsafeMutableRawPointer, length: UInt32, added: Int32) {
        io_uring_buf_ring_add(ring, address, length, UInt16(truncatingIfNeeded: id), mask, added)
        ids[tail & Int(mask)] = id
        tail += 1
    }

    /// Publishes the `added` buffers queued since the last call to the kernel.
    @inlinable @inline(__always)
    public func advance(_ added: Int32) {
        if added > 0 { io_uring_buf_ring_advance(ring, added) }
    }

    /// The id the kernel takes next, if the ring holds any.
    @inlinable public var next: UInt32? { head < tail ? ids[head & Int(mask)] : nil }

    /// The kernel took buffer `id` (named in a completion): it now belongs to the caller.
    @inlinable @inline(__always)
    public mutating func taken(_ id: UInt32) {
        let m = Int(mask)
        if ids[head & m] != id {
            // Not the head: the kernel took out of order (it does not today). Keep `head ..< tail`
            // the set of ids still in the ring by swapping the taken one to the head.
            var i = head + 1
            while i < tail && ids[i & m] != id { i += 1 }
            if i < tail { ids[i & m] = ids[head & m] }
        }
        head += 1
    }
}
