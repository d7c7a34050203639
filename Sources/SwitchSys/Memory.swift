// Memory: mmap in its two uses: private anonymous memory (the dataplane's frame buffer pool) and
// shared mappings of a vhost-user guest's RAM.
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

// MARK: - Shared mappings
//
// SharedMemory maps the guest-RAM file descriptors a vhost-user frontend passes (SET_MEM_TABLE).
//
// QEMU describes each region by an fd, a size and an `mmap_offset` into that fd; the region's bytes
// start `mmap_offset` bytes into the file. Like libvhost-user, the whole `size + mmap_offset` is
// mapped from file offset 0 (mmap needs a page-aligned offset, `mmap_offset` need not be one) and
// the region starts `mmap_offset` bytes into the mapping.

/// One shared mapping of a file descriptor: where it starts and how long it is.
public struct SharedMapping: Equatable {
    /// Start of the mapping (file offset 0).
    public let base: UnsafeMutableRawPointer
    /// Bytes mapped.
    public let length: Int

    public init(base: UnsafeMutableRawPointer, length: Int) {
        self.base = base
        self.length = length
    }
}

/// mmap/munmap of shared file-backed memory.
public enum SharedMemory {
    /// Maps `size + offset` bytes of `fd` read-write and shared (MAP_SHARED: the guest sees what we
    /// write). Fails with EINVAL when the sum is zero or does not fit the address space, and with
    /// mmap's errno otherwise (the region's bytes are then at `base + offset`). The fd may be closed
    /// afterwards: the mapping keeps the file.
    public static func map(fd: Int32, size: UInt64, offset: UInt64) throws(SysError) -> SharedMapping {
        let (total, overflow) = size.addingReportingOverflow(offset)
        guard !overflow, size > 0, total <= UInt64(Int.max) else {
            throw SysError("mmap", "guest memory region", errno: .EINVAL,
                           message: "mmap guest memory region: size \(size) + offset \(offset) is not mappable")
        }
        // A regular file (memfd, tmpfs, hugetlbfs) shorter than the region would map, but touching the
        // part past its end raises SIGBUS: refuse that here.
        var status = Glibc.stat()
        if fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG, UInt64(max(0, status.st_size)) < total {
            throw SysError("mmap", "guest memory region", errno: .EINVAL,
                           message: "mmap guest memory region: size \(size) + offset \(offset) is past the end of its file (\(status.st_size) bytes)")
        }
        let p = mmap(nil, Int(total), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw SysError("mmap", "guest memory region") }
        return SharedMapping(base: p, length: Int(total))
    }

    /// Unmaps `mapping` (it must not be used afterwards).
    public static func unmap(_ mapping: SharedMapping) {
        _ = munmap(mapping.base, mapping.length)
    }

    /// A new shared-memory file of `size` zero bytes, unlinked at once so only the fd names it
    /// (close-on-exec). On tmpfs (`/dev/shm`, else `/tmp`), the stand-in for QEMU's memfd guest
    /// RAM in tests and tools (Swift's Glibc module does not declare memfd_create).
    public static func makeAnonymousFile(size: Int) throws(SysError) -> Int32 {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(directory)/switchd-shm-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SysError("mkstemp", directory) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard ftruncate(fd, off_t(size)) == 0 else {
            let error = SysError("ftruncate", directory)
            close(fd)
            throw error
        }
        return fd
    }
}
