// File: small whole-file reads and writes, atomic replacement (state files, sysctls, resolv.conf), directories, and the path calls of the control socket and `attach`.
//
// One rule for every small file switchd reads: read to the end, EINTR retried, at most `limit` bytes
// (cut there, or refused with EFBIG, as the caller says). One way to replace a file: write a
// temporary beside it, fsync it, rename it over the file, and (where the caller needs the rename
// itself to survive a crash) fsync the directory. Failures are `SysError`s naming the call and path.
internal import Glibc

/// Whole-file reads and writes of small files, directories, and path calls (stat, access, chmod, chown, unlink).
public enum File {
    /// The contents of `path`, read to its end. More than `limit` bytes: the first `limit` when
    /// `truncating`, else an EFBIG error. Throws `open PATH` or `read PATH` errors.
    public static func readSmall(_ path: String, limit: Int = 64 * 1024, truncating: Bool = false) throws(SysError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open", path) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(limit + 1, 64 * 1024))
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw SysError("read", path) }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > limit {
                guard truncating else { throw SysError("read", path, errno: .EFBIG) }
                return Array(bytes[0..<limit])
            }
        }
    }

    /// `readSmall` as text (invalid UTF-8 repaired), nil when the file cannot be read.
    public static func readSmallText(_ path: String, limit: Int = 64 * 1024, truncating: Bool = true) -> String? {
        guard let bytes = try? readSmall(path, limit: limit, truncating: truncating) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces `path` with `contents`: writes `temporary` (mode `mode`), fsyncs it, renames it over
    /// `path`; with `syncDirectory`, then fsyncs the directory so that the rename is durable. The
    /// temporary is removed when a step before the rename fails. A failed directory sync is thrown
    /// too, after the file was replaced.
    public static func replaceAtomically(_ path: String, with contents: [UInt8], temporary: String, mode: UInt32 = 0o644,
                                         syncDirectory: Bool = false) throws(SysError) {
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SysError("create", temporary) }
        var written = 0
        while written < contents.count {
            let n = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = SysError("write", temporary, errno: n < 0 ? .current : .EIO)
                close(fd)
                unlink(temporary)
                throw error
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let error = SysError("fsync", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = SysError("rename", "\(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
        if syncDirectory { try sync(directoryOf: path) }
    }

    /// Fsyncs the directory holding `path`.
    public static func sync(directoryOf path: String) throws(SysError) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SysError("fsync directory", directory) }
    }

    /// Removes `path` (a file or socket); false with errno set when it could not.
    @discardableResult
    public static func remove(_ path: String) -> Bool { unlink(path) == 0 }

    /// What is at `path`, not following a symbolic link; nil when nothing is (or it cannot be looked at).
    public static func kind(at path: String) -> Kind? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFSOCK: return .socket
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// What a path names (lstat's S_IFMT), as far as switchd tells kinds apart.
    public enum Kind: Sendable { case socket, regular, directory, other }

    /// Sets the permission bits of `path` (chmod).
    public static func setMode(_ path: String, _ mode: UInt32) throws(SysError) {
        guard chmod(path, mode) == 0 else { throw SysError("chmod", path) }
    }

    /// Gives `path` to group `gid`, leaving its owner (chown with uid -1); `groupName` names it in the error.
    public static func setGroup(_ path: String, gid: UInt32, groupName: String) throws(SysError) {
        guard chown(path, uid_t.max, gid) == 0 else { throw SysError("chown(group \(groupName))", path) }
    }

    /// The id of group `name` (getgrnam), nil when there is no such group.
    public static func groupID(named name: String) -> UInt32? {
        getgrnam(name).map { $0.pointee.gr_gid }
    }
    /// Writes `bytes` to `path`: an existing file (a sysctl under /proc/sys) unless `creating`, which
    /// creates or truncates it (mode 0644); with `sync`, fsyncs it before closing. Not atomic (see
    /// `replaceAtomically`). Throws `open PATH`, `write PATH` (EIO for a write that took nothing) or
    /// `fsync PATH` errors.
    public static func write(_ path: String, _ bytes: [UInt8], creating: Bool = false, sync: Bool = false) throws(SysError) {
        let fd = creating ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) : open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open", path) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SysError("write", path, errno: n < 0 ? .current : .EIO) }
            written += n
        }
        if sync { guard fsync(fd) == 0 else { throw SysError("fsync", path) } }
    }

    /// Creates directory `path` with `mode`; an existing one is fine with `existingOK` (it is not
    /// checked to be a directory, as mkdir -p does not either).
    public static func makeDirectory(_ path: String, mode: UInt32 = 0o755, existingOK: Bool = true) throws(SysError) {
        guard mkdir(path, mode) == 0 else {
            let e = Errno.current
            if existingOK && e == .EEXIST { return }
            throw SysError("mkdir", path, errno: e)
        }
    }

    /// Removes the empty directory `path`; false with errno set when it could not.
    @discardableResult
    public static func removeDirectory(_ path: String) -> Bool { rmdir(path) == 0 }

    /// The names in directory `path` (without . and ..), nil when it cannot be read (or is not one).
    public static func entries(of path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Throws `access PATH` when the caller may not read `path` (access R_OK).
    public static func checkReadable(_ path: String) throws(SysError) {
        guard access(path, R_OK) == 0 else { throw SysError("access", path) }
    }

    /// True when something exists at `path` (access F_OK, following symbolic links).
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// True when `path` is a regular file the caller may execute (stat and access X_OK), as execvp
    /// looks for a program.
    public static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && access(path, X_OK) == 0
    }

    /// Which file `path` names and its size and modification time (stat, following links): what
    /// tells a changed file from the one read before.
    public struct Status: Equatable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public var size: Int64
        public var modifiedSeconds: Int
        public var modifiedNanoseconds: Int
    }

    /// `Status` of the file at `path`, a NUL-terminated C string (so a caller that asks often makes
    /// it once: no allocation here); nil when stat fails.
    public static func status(cString path: UnsafePointer<CChar>) -> Status? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Status(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                      modifiedSeconds: Int(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec))
    }

    /// Writes `text` to standard error (stdio's unbuffered stderr: one line stays one write).
    public static func writeStandardError(_ text: String) {
        _ = text.withCString { fputs($0, stderr) }
    }
}
