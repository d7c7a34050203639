// ByteAccess: big-endian field loads and stores on raw buffers, shared by every header view.
//
// Bounds are checked by the standard library in debug builds only; each view's `init?(validating:)`
// is what makes the offsets safe.

extension UnsafeRawBufferPointer {
    /// The octet at `offset`.
    @inlinable @inline(__always)
    func byte(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }

    /// The big-endian 16-bit field at `offset`.
    @inlinable @inline(__always)
    func be16(_ offset: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }

    /// The big-endian 32-bit field at `offset`.
    @inlinable @inline(__always)
    func be32(_ offset: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }

    /// The bytes from `offset` to the end, as their own buffer.
    @inlinable @inline(__always)
    func suffix(from offset: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self[offset...]) }

    /// The bytes in `range`, as their own buffer.
    @inlinable @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self[range]) }
}

extension UnsafeMutableRawBufferPointer {
    /// Writes the octet `value` at `offset`.
    @inlinable @inline(__always)
    func setByte(_ value: UInt8, _ offset: Int) { storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }

    /// Writes `value` big-endian at `offset`.
    @inlinable @inline(__always)
    func setBE16(_ value: UInt16, _ offset: Int) { storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self) }

    /// Writes `value` big-endian at `offset`.
    @inlinable @inline(__always)
    func setBE32(_ value: UInt32, _ offset: Int) { storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self) }

    /// The same bytes, read-only.
    @inlinable @inline(__always)
    var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }

    /// The bytes from `offset` to the end, as their own buffer.
    @inlinable @inline(__always)
    func suffix(from offset: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: self[offset...]) }

    /// The bytes in `range`, as their own buffer.
    @inlinable @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: self[range]) }
}
