// SysAdapters: the dataplane's view of SwitchSys's provided-buffer ring: a ring of pool slots.
//
// SwitchSys throws `SysError`; Switch's functions throw `SwitchError` (typed), so each throwing
// SwitchSys call made from a `throws(SwitchError)` function converts at its call site
// (`catch { throw SwitchError(error) }`). `BufferRing` stays here: pool slots are a dataplane
// concept, the kernel ring (`ProvidedBufferRing`) is not.
import Proto
import SwitchSys

/// A provided-buffer ring of pool slots that multishot receives pick their buffers from.
///
/// The buffer id the kernel names in a completion is the pool slot's index, so the frame is
/// forwarded from that slot with no copy. The loop puts fresh slots back after each batch. When the
/// ring runs dry, multishot requests end (ENOBUFS) and are re-armed once it is refilled.
///
/// Why more than one ring: what a ring holds is all its readers can take between two refills, and
/// the kernel hands it out to whoever has data first. One ring shared by every port let a port that
/// floods take all of it and starve the rest, so each port that reads its own fd has a small ring
/// of its own (its own buffer group, `ReceiveShares`); the shared ring (group 0) is left to the
/// listening dgram sockets, whose one recvmsg cannot tell senders apart before it takes a buffer.
/// A ring that is torn down (its port removed) gives the slots the kernel has not taken back to the pool.
struct BufferRing {
    /// The buffer group of the shared ring (listening dgram sockets).
    static let sharedGroup: UInt16 = 0
    /// Where in a slot the kernel writes: room in front of the frame for a 12-byte virtio-net header.
    static let start = BufferPool.headroom - VirtioNetHeader.size
    private var ring: ProvidedBufferRing
    var group: UInt16 { ring.group }
    var entries: Int { ring.entries }
    /// Slots currently in the ring.
    var count: Int { ring.count }

    /// Maps and registers a ring of `entries` (a power of two) buffers as buffer group `group`.
    init(uring: IOUring, group: UInt16, entries: Int) throws(SwitchError) {
        do { ring = try ProvidedBufferRing(uring: uring, group: group, entries: entries) } catch { throw SwitchError(error) }
    }

    /// Unmaps the ring (the loop is exiting: the io_uring goes with it, the pool too).
    func destroy() { ring.destroy() }

    /// Unregisters the ring, gives the slots the kernel has not taken back to `pool`, and unmaps it.
    /// Only when no request that selects from this group is in flight.
    mutating func tearDown(uring: IOUring, pool: inout BufferPool) {
        ring.unregister(uring: uring) { pool.release($0) }
    }

    /// Fills the ring with slots from `pool` as far as it has room (and the pool has slots).
    @inline(__always)
    mutating func refill(from pool: inout BufferPool) {
        var added: Int32 = 0
        while ring.hasRoom, let slot = pool.allocate() {
            ring.add(slot, address: pool.pointer(slot, Self.start), length: UInt32(BufferPool.slotSize - Self.start),
                     added: added)
            added += 1
        }
        ring.advance(added)
    }

    /// The slot the kernel takes next, if the ring holds any.
    var next: UInt32? { ring.next }

    /// The kernel took `slot` (named in a completion): it now belongs to the caller.
    @inline(__always)
    mutating func taken(_ slot: UInt32) { ring.taken(slot) }
}
