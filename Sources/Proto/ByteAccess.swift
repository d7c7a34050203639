// ByteAccess: big-endian field loads and stores on raw buffers, shared by every header view and the responders.
//
// Bounds are checked by the standard library in debug builds only; each view's `init?(validating:)`
// (or, in a responder, the caller's length guard) is what makes the offsets safe. Public and
// `@inlinable` because the responders in Switch read frames with them on the forwarding path.

extension UnsafeRawBufferPointer {
    /// The octet at `offset`.
    @inlinable @inline(__always)
    public func byte(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }

    /// The big-endian 16-bit field at `offset`.
    @inlinable @inline(__always)
    public func be16(_ offset: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }

    /// The big-endian 32-bit field at `offset`.
    @inlinable @inline(__always)
    public func be32(_ offset: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }

    /// The bytes from `offset` to the end, as their own buffer.
    @inlinable @inline(__always)
    public func suffix(from offset: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self[offset...]) }

    /// The bytes in `range`, as their own buffer.
    @inlinable @inline(__always)
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self[range]) }

    /// The MAC address at `offset`.
    @inlinable @inline(__always)
    public func macAddress(_ offset: Int) -> MACAddress { MACAddress(loading: baseAddress! + offset) }

    /// The IPv4 address at `offset`.
    @inlinable @inline(__always)
    public func ipv4Address(_ offset: Int) -> IPv4Address { IPv4Address(loading: baseAddress! + offset) }

    /// The IPv6 address at `offset`.
    @inlinable @inline(__always)
    public func ipv6Address(_ offset: Int) -> IPv6Address { IPv6Address(loading: baseAddress! + offset) }
}

extension UnsafeMutableRawBufferPointer {
    /// Writes the octet `value` at `offset`.
    @inlinable @inline(__always)
    public func setByte(_ value: UInt8, _ offset: Int) { storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }

    /// Writes `value` big-endian at `offset`.
    @inlinable @inline(__always)
    public func setBE16(_ value: UInt16, _ offset: Int) { storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self) }

    /// Writes `value` big-endian at `offset`.
    @inlinable @inline(__always)
    public func setBE32(_ value: UInt32, _ offset: Int) { storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self) }

    /// The same bytes, read-only.
    @inlinable @inline(__always)
    public var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }

    /// The bytes from `offset` to the end, as their own buffer.
    @inlinable @inline(__always)
    public func suffix(from offset: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: self[offset...]) }

    /// The bytes in `range`, as their own buffer.
    @inlinable @inline(__always)
    public func slice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: self[range]) }
}
