// ChecksumOffload: completing the partial L4 checksum of a NEEDS_CSUM frame, as skb_checksum_help does.

extension VirtioNetHeader {
    /// True when `checksumStart`/`checksumOffset` describe a 16-bit field inside a frame of
    /// `length` bytes (OVS `netdev_linux_parse_vnet_hdr` checks the same).
    @inlinable
    public func checksumFieldFits(frameLength length: Int) -> Bool {
        Int(checksumStart) >= 14 && Int(checksumStart) + Int(checksumOffset) + 2 <= length
    }

    /// Completes the checksum of a NEEDS_CSUM frame in place: the field at
    /// `checksumStart + checksumOffset` holds the pseudo-header sum, so summing from
    /// `checksumStart` to the end *including* that field, folding and complementing gives the
    /// full checksum (virtio 1.x §5.1.6.2; Linux `skb_checksum_help`). Returns false, leaving the
    /// frame untouched, when the offsets do not fit the frame.
    public func completeChecksum(in frame: UnsafeMutableRawBufferPointer) -> Bool {
        guard checksumFieldFits(frameLength: frame.count), let base = frame.baseAddress else { return false }
        let start = Int(checksumStart)
        let field = start + Int(checksumOffset)
        var checksum = ~InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: frame[start...]))
        // A UDP checksum that computes to 0 is sent as all ones (RFC 768); for TCP the two are equal
        // in ones' complement arithmetic, so this is right for both.
        if checksum == 0 { checksum = 0xFFFF }
        (base + field).storeBytes(of: checksum.bigEndian, as: UInt16.self)
        return true
    }
}
