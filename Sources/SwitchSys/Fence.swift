// Fence: ordered and single loads and stores on memory another process writes at the same time
// (the split virtqueues a vhost-user guest shares with switchd, docs/DESIGN.md and virtio 1.x §2.7).
//
// Why each barrier exists (x86-64 is TSO, so the CPU keeps loads in order with loads and stores in
// order with stores; what remains is the compiler, and the CPU's store→load reordering):
// * `loadAcquire` of the driver's `avail.idx`: the ring entries and descriptors read after it must
//   not be read before it, or the device could see a slot the driver has not filled yet (virtio
//   §2.7.13.3 "the device MUST read the index before the ring entries"). On x86 a plain mov; the
//   acquire keeps Swift/LLVM from hoisting later loads above it or caching the index in a register
//   across a polling loop.
// * `storeRelease` of the device's `used.idx`: the used entries and the frame bytes written into
//   guest buffers must be visible before the index that hands them over (virtio §2.7.8). A plain
//   mov on x86; the release keeps the compiler from sinking the earlier stores below it.
// * `fullFence` between publishing an index and reading the other side's event field (`used_event`
//   after storing `used.idx`; `avail.idx` again after storing `avail_event`): this is a store→load
//   order, the one order x86 does not keep. Without it both sides can miss each other's update and
//   the ring stalls with buffers pending and no notification (Linux `virtio_mb`, vhost `smp_mb`).
// * `loadOnce` for descriptor fields and ring entries: the guest can change them while we look.
//   Each field is read exactly once into a local that is validated and then used, so the compiler
//   must not re-read it after the check (the double-fetch bug; Linux READ_ONCE).
//
// `public import CSwitchShims`: these run per frame from the dataplane module and must inline there
// (as ProvidedBufferRing does with CLiburing); the C side is `static inline` single instructions.
public import CSwitchShims

/// Loads and stores of 16/32/64-bit values in memory shared with a guest, with the ordering each
/// virtqueue access needs. Pointers need the natural alignment of the type (ring layouts have it).
public enum Fence {
    /// Loads the UInt16 at `p` with acquire ordering (later loads stay after it).
    @inlinable @inline(__always)
    public static func loadAcquire(_ p: UnsafeRawPointer) -> UInt16 { sw_load_acquire_u16(p) }

    /// Stores `value` at `p` with release ordering (earlier loads and stores stay before it).
    @inlinable @inline(__always)
    public static func storeRelease(_ value: UInt16, to p: UnsafeMutableRawPointer) { sw_store_release_u16(p, value) }

    /// A full fence: stores before it are visible before loads after it (mfence on x86-64).
    @inlinable @inline(__always)
    public static func fullFence() { sw_fence_full() }

    /// Reads the UInt16 at `p` exactly once (the guest may change it concurrently).
    @inlinable @inline(__always)
    public static func loadOnce(_ p: UnsafeRawPointer, as: UInt16.Type) -> UInt16 { sw_load_once_u16(p) }

    /// Reads the UInt32 at `p` exactly once.
    @inlinable @inline(__always)
    public static func loadOnce(_ p: UnsafeRawPointer, as: UInt32.Type) -> UInt32 { sw_load_once_u32(p) }

    /// Reads the UInt64 at `p` exactly once.
    @inlinable @inline(__always)
    public static func loadOnce(_ p: UnsafeRawPointer, as: UInt64.Type) -> UInt64 { sw_load_once_u64(p) }
}
