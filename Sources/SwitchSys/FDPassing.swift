// FDPassing: recvmsg with SCM_RIGHTS descriptors and a bounded send, for the vhost-user control socket.
//
// A vhost-user frontend passes guest-RAM and eventfd descriptors with its messages (QEMU
// `docs/interop/vhost-user.rst` "Communication": at most 8 per message). The control socket is
// driven from the forwarding loop, so reads never block (MSG_DONTWAIT) and a reply is written with
// a few short waits at most. The cmsg walk is done here in Swift (CMSG_* are macros Swift cannot
// import) following the Linux layout of `struct cmsghdr` (cmsg(3)): a size_t length, then level and
// type as int, data aligned to size_t.
internal import Glibc

/// Receiving bytes with passed descriptors, and sending replies, on a unix stream socket.
public enum FDPassing {
    /// The most descriptors one `receive` hands back; any beyond are closed.
    public static let maxDescriptors = 8

    /// What one `receive` got: bytes (0 at end of input) and how many descriptors it stored.
    public struct Received: Sendable, Equatable {
        public var byteCount: Int
        public var descriptorCount: Int
        /// More descriptors came than fit (the extra ones were closed) or the kernel cut the control data.
        public var descriptorsDropped: Bool

        public init(byteCount: Int, descriptorCount: Int, descriptorsDropped: Bool = false) {
            self.byteCount = byteCount
            self.descriptorCount = descriptorCount
            self.descriptorsDropped = descriptorsDropped
        }
    }

    // By value: Glibc declares these in anonymous enums the importer may attribute to another C module
    // (see Socket.noSignal). Linux values, <bits/socket.h>.
    @usableFromInline static let cmsgCloseOnExec: Int32 = 0x4000_0000  // MSG_CMSG_CLOEXEC
    @usableFromInline static let controlTruncated: Int32 = 0x8           // MSG_CTRUNC
    @usableFromInline static let rightsType: Int32 = 1                   // SCM_RIGHTS
    @usableFromInline static let socketLevel: Int32 = 1                  // SOL_SOCKET

    /// Room in the control buffer: twice the limit, so a sender that passes a few too many still has
    /// them delivered (and closed here) rather than cut by the kernel.
    private static let controlFDs = 2 * maxDescriptors
    private static let cmsgHeader = 16  // CMSG_LEN(0) on LP64: size_t length + int level + int type
    private static let controlBytes = cmsgHeader + controlFDs * 4  // CMSG_SPACE(16 fds), already 8-aligned

    /// Reads what is waiting on `socket` into `buffer` (at most its size), without blocking, and stores
    /// the descriptors passed with those bytes (close-on-exec) into `descriptors` (`capacity` slots,
    /// at most `maxDescriptors` used); descriptors beyond that are closed. nil when nothing is waiting
    /// (EAGAIN); a byte count of 0 at end of input. EINTR is retried; other errors throw.
    public static func receive(socket: Int32, into buffer: UnsafeMutableRawBufferPointer,
                               descriptors: UnsafeMutablePointer<Int32>, capacity: Int) throws(SysError) -> Received? {
        let limit = min(capacity, maxDescriptors)
        return try withUnsafeTemporaryAllocation(byteCount: controlBytes, alignment: 8) { control throws(SysError) -> Received? in
            var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
            var message = msghdr()
            let n: Int = withUnsafeMutablePointer(to: &vector) { vectorPointer in
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control.baseAddress
                message.msg_controllen = control.count
                while true {
                    let n = recvmsg(socket, &message, cmsgCloseOnExec | Socket.dontWait)
                    if n >= 0 || errno != EINTR { return n }
                }
            }
            if n < 0 {
                let e = Errno.current
                if e.wouldBlock { return nil }
                throw SysError("recvmsg", errno: e)
            }
            var received = Received(byteCount: n, descriptorCount: 0,
                                    descriptorsDropped: message.msg_flags & controlTruncated != 0)
            // Walk the control messages (cmsg(3) layout) and keep the SCM_RIGHTS descriptors.
            let controlLength = min(Int(message.msg_controllen), control.count)
            guard let base = control.baseAddress else { return received }
            var offset = 0
            while offset + cmsgHeader <= controlLength {
                let length = base.loadUnaligned(fromByteOffset: offset, as: Int.self)
                let level = base.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
                let type = base.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
                guard length >= cmsgHeader, length <= controlLength - offset else { break }
                if level == socketLevel && type == rightsType {
                    let count = (length - cmsgHeader) / 4
                    for i in 0..<count {
                        let fd = base.loadUnaligned(fromByteOffset: offset + cmsgHeader + 4 * i, as: Int32.self)
                        if received.descriptorCount < limit {
                            descriptors[received.descriptorCount] = fd
                            received.descriptorCount += 1
                        } else {
                            _ = close(fd)
                            received.descriptorsDropped = true
                        }
                    }
                }
                offset += (length + 7) & ~7  // CMSG_ALIGN
            }
            return received
        }
    }

    /// Writes all of `bytes` to `socket` (MSG_NOSIGNAL: a vanished peer is an error, not SIGPIPE),
    /// with `descriptors` (at most `maxDescriptors`) passed on the first byte (SCM_RIGHTS). A full
    /// socket is waited for with poll, up to `attempts` times `waitMilliseconds`; then it fails with
    /// EAGAIN. EINTR is retried.
    public static func send(socket: Int32, _ bytes: UnsafeRawBufferPointer, descriptors: [Int32] = [],
                            attempts: Int = 10, waitMilliseconds: Int32 = 100) throws(SysError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard descriptors.count <= maxDescriptors else { throw SysError("sendmsg", errno: .EINVAL) }
        var offset = 0
        var waits = 0
        while offset < bytes.count {
            let n: Int
            if offset == 0 && !descriptors.isEmpty {
                n = sendWithDescriptors(socket, base, bytes.count, descriptors)
            } else {
                n = Glibc.send(socket, base + offset, bytes.count - offset, Socket.noSignal | Socket.dontWait)
            }
            if n >= 0 {
                offset += n
                continue
            }
            let e = Errno.current
            if e == .EINTR { continue }
            guard e.wouldBlock else { throw SysError(descriptors.isEmpty ? "send" : "sendmsg", errno: e) }
            waits += 1
            guard waits <= attempts else { throw SysError("send", errno: e, message: "send: the peer reads nothing") }
            var entry = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, waitMilliseconds)
        }
    }

    /// One sendmsg of `count` bytes at `base` with `descriptors` in an SCM_RIGHTS control message
    /// (built by hand in the cmsg(3) layout). Returns sendmsg's result (errno set when -1).
    static func sendWithDescriptors(_ socket: Int32, _ base: UnsafeRawPointer, _ count: Int,
                                            _ descriptors: [Int32]) -> Int {
        let length = cmsgHeader + 4 * descriptors.count            // CMSG_LEN
        let space = (length + 7) & ~7                               // CMSG_SPACE
        return withUnsafeTemporaryAllocation(byteCount: space, alignment: 8) { control -> Int in
            let c = control.baseAddress!
            memset(c, 0, space)
            c.storeBytes(of: length, as: Int.self)
            c.storeBytes(of: socketLevel, toByteOffset: 8, as: Int32.self)
            c.storeBytes(of: rightsType, toByteOffset: 12, as: Int32.self)
            for (i, fd) in descriptors.enumerated() { c.storeBytes(of: fd, toByteOffset: cmsgHeader + 4 * i, as: Int32.self) }
            var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = c
                message.msg_controllen = space
                return Glibc.sendmsg(socket, &message, Socket.noSignal | Socket.dontWait)
            }
        }
    }
}
