// Memory: private anonymous mappings (the dataplane's frame buffer pool).
internal import Glibc

/// Anonymous private memory from mmap, reserved (MAP_NORESERVE) and touched page by page.
public enum AnonymousMemory {
    /// Maps `bytes` of zeroed, readable and writable memory.
    public static func map(bytes: Int) throws(SysError) -> UnsafeMutableRawPointer {
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw SysError("mmap") }
        return p
    }

    /// Unmaps what `map` returned (`bytes` as given there).
    public static func unmap(_ base: UnsafeMutableRawPointer, bytes: Int) { munmap(base, bytes) }
}
