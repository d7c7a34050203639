// GuestMemory: the guest RAM regions a vhost-user frontend shares, and address translation into them.
//
// QEMU `docs/interop/vhost-user.rst` "Memory access": SET_MEM_TABLE sends up to 8 regions, each
// with a guest-physical address, a size, the frontend's user (virtual) address and an fd. Ring
// addresses (SET_VRING_ADDR) are user addresses; descriptor buffers are guest-physical addresses
// (no VIRTIO_F_IOMMU_PLATFORM here). Every range the guest names must lie inside ONE region: a
// range that straddles two regions is refused like one outside all of them (QEMU puts each RAM
// block in its own region, and Linux never lets one buffer cross a block). All checks are done
// without overflow (`addr + len` is never computed), so a hostile address cannot wrap past a check.
//
// The regions are inline (no heap, no ARC): translation runs per descriptor on the loop thread.
import SwitchSys

/// One region of guest RAM as mapped into switchd.
struct GuestRegion {
    /// Guest-physical address of the region's first byte.
    var guestAddress: UInt64 = 0
    /// The frontend's user address of the region's first byte.
    var userAddress: UInt64 = 0
    /// Bytes in the region.
    var size: UInt64 = 0
    /// The region's first byte in our address space.
    var host: UnsafeMutableRawPointer? = nil
    /// Our mapping of the region's fd (nil for memory switchd does not own, as in tests).
    var mapping: SharedMapping? = nil

    /// The host address of `length` bytes at `offset` into the region, if they lie inside it.
    @inline(__always)
    func pointer(offset: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        guard offset < size, length <= size - offset, let host else { return nil }
        return host + Int(offset)
    }
}

/// Up to `maxRegions` regions of guest RAM and translation of guest-physical and user addresses.
struct GuestMemory {
    /// The most regions SET_MEM_TABLE may carry (vhost-user.rst "Memory regions description").
    static let maxRegions = 8

    private(set) var regions = InlineArray<8, GuestRegion>(repeating: GuestRegion())
    private(set) var count = 0

    /// No regions.
    init() {}

    /// Adds a region (false when all `maxRegions` are taken, the size is 0 or an end address would
    /// pass 2^64). `mapping`, when given, is unmapped by `unmapAll`.
    mutating func add(guestAddress: UInt64, userAddress: UInt64, size: UInt64,
                      host: UnsafeMutableRawPointer, mapping: SharedMapping? = nil) -> Bool {
        guard count < Self.maxRegions, size > 0, size <= UInt64(Int.max),
              !guestAddress.addingReportingOverflow(size - 1).overflow,
              !userAddress.addingReportingOverflow(size - 1).overflow else { return false }
        regions[count] = GuestRegion(guestAddress: guestAddress, userAddress: userAddress, size: size,
                                     host: host, mapping: mapping)
        count += 1
        return true
    }

    /// The host address of `length` bytes at guest-physical `address`, or nil unless all of them lie
    /// inside one region.
    @inline(__always)
    func translate(guest address: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        var i = 0
        while i < count {
            let region = regions[i]
            if address >= region.guestAddress && address - region.guestAddress < region.size {
                return region.pointer(offset: address - region.guestAddress, length: length)
            }
            i += 1
        }
        return nil
    }

    /// The host address of `length` bytes at the frontend's user `address`, or nil unless all of them
    /// lie inside one region.
    func translate(user address: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        var i = 0
        while i < count {
            let region = regions[i]
            if address >= region.userAddress && address - region.userAddress < region.size {
                return region.pointer(offset: address - region.userAddress, length: length)
            }
            i += 1
        }
        return nil
    }

    /// Unmaps the regions switchd mapped and forgets all of them.
    mutating func unmapAll() {
        var i = 0
        while i < count {
            if let mapping = regions[i].mapping { SharedMemory.unmap(mapping) }
            regions[i] = GuestRegion()
            i += 1
        }
        count = 0
    }
}
