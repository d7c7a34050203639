// IOUring: the one io_uring the forwarding thread owns, the packed user_data of its requests, and
// typed prepares for every request the dataplane submits.
//
// SwitchSys is the only target that calls liburing: the forwarding loop submits through the typed
// prepares below (each returns a `Submission` to link or buffer-select). Completions carry a `Token`
// (operation, port slot, port generation, auxiliary value) packed into user_data, as SwiftNIO's
// LinuxUring does, so a completion for a port that has since been removed is stale by generation
// and dispatch is a `switch` on a small enum, with no closure or allocation.
//
// Why `public import CLiburing` (and not `internal`): the loop calls the prepares, `drain`
// and the token packing once or more per frame, from another module. Across modules only
// `@inlinable` bodies inline (and specialize `drain`'s closure), and an `@inlinable` body may only
// name declarations of publicly imported modules; liburing's get_sqe/prep_* are `static inline` C,
// so they must be visible where the loop is compiled. Importing CLiburing publicly here does not
// put liburing's names in scope of Switch's or switchd's files (imports are not re-exported); they
// see only what SwitchSys declares. The other SwitchSys files import the C modules `internal`ly.
public import CLiburing
public import Glibc

/// What a submitted request was for.
@frozen
public enum Operation: UInt8, Sendable {
    case deviceRead = 1
    case dgramReceive
    case streamAccept
    case streamReceive
    case send
    case eventRead
    case cancel
    case writable
    case serviceSocket
    /// POLLOUT on a stalled capture's socket (slot: network, aux: capture slot).
    case captureWritable
    /// vhost-user: an accept on vhost-user.sock, POLLIN on a connection (control messages), a read
    /// of a queue's kick eventfd (aux: queue | epoch << 1), a write of a queue's call eventfd.
    case vhostAccept
    case vhostControl
    case vhostKick
    case vhostCall
    /// The multishot recvmsg of a network's VXLAN socket.
    case vxlanReceive
}

/// The user_data of a request: operation (8 bits), port slot (16), generation (16), aux (24).
@frozen
public struct Token: Equatable, Sendable {
    public var operation: Operation
    public var slot: UInt16
    public var generation: UInt16
    public var aux: UInt32

    @inlinable
    public init(_ operation: Operation, slot: UInt16 = 0, generation: UInt16 = 0, aux: UInt32 = 0) {
        self.operation = operation
        self.slot = slot
        self.generation = generation
        self.aux = aux & 0xFF_FFFF
    }

    @inlinable
    public init?(packed: UInt64) {
        guard let op = Operation(rawValue: UInt8(truncatingIfNeeded: packed >> 56)) else { return nil }
        operation = op
        slot = UInt16(truncatingIfNeeded: packed >> 40)
        generation = UInt16(truncatingIfNeeded: packed >> 24)
        aux = UInt32(truncatingIfNeeded: packed) & 0xFF_FFFF
    }

    @inlinable
    public var packed: UInt64 {
        UInt64(operation.rawValue) << 56 | UInt64(slot) << 40 | UInt64(generation) << 24 | UInt64(aux)
    }
}

/// One completion, copied out of the ring.
@frozen
public struct Completion {
    public var token: Token
    public var result: Int32
    public var flags: UInt32

    @inlinable
    public init(token: Token, result: Int32, flags: UInt32) {
        self.token = token
        self.result = result
        self.flags = flags
    }
}

/// Completion flag bits (linux/io_uring.h) that Swift sees only as macros.
public enum CompletionFlag {
    public static let buffer: UInt32 = 1 << 0   // IORING_CQE_F_BUFFER
    public static let more: UInt32 = 1 << 1     // IORING_CQE_F_MORE
    public static let bufferShift: UInt32 = 16  // IORING_CQE_BUFFER_SHIFT
}

/// Owner of an io_uring instance. Not thread-safe: only the forwarding thread touches it.
public final class IOUring {
    @usableFromInline var ring = io_uring()
    @usableFromInline let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    public static let completionBatch = 128

    /// Whether the ring was created disabled and waits for `enable()`.
    @usableFromInline var disabled = false

    /// A ring of `queueDepth` submission entries and four times as many completion entries.
    ///
    /// `deferTaskRun`: the ring is for one thread that is not the creating one (the forwarding
    /// thread; the control thread creates the loop). It is created disabled, with SINGLE_ISSUER and
    /// DEFER_TASKRUN, and that thread calls `enable()` before its first submission and becomes the
    /// ring's only submitter. Requests may be prepared before (they are submitted once enabled), and
    /// buffer rings registered, but nothing may be submitted by another thread afterwards. What
    /// DEFER_TASKRUN buys: the kernel's completion work for the multishot reads (a TAP frame that
    /// arrived, read into a provided buffer, a CQE posted) runs in one batch when the loop enters
    /// io_uring to wait, instead of as task work run whenever the thread enters the kernel.
    /// docs/decisions.md has the measurements (io_uring's share of the core down, throughput
    /// gain below the noise of bench/pps.sh on the 2-core test machine).
    /// On kernels before 6.1 (no DEFER_TASKRUN), the ring is created as without `deferTaskRun`.
    public init(queueDepth entries: UInt32, deferTaskRun: Bool = false) throws(SysError) {
        // Each set of flags in turn while the kernel refuses it (EINVAL): without DEFER_TASKRUN
        // (before 6.1), without COOP_TASKRUN (5.19) or CQSIZE, the defaults.
        let deferred = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE
        let candidates = (deferTaskRun ? [deferred] : []) + [IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE, 0]
        var r: Int32 = -EINVAL
        for flags in candidates where r == -EINVAL {
            var params = io_uring_params()
            params.flags = flags
            params.cq_entries = entries * 4
            r = io_uring_queue_init_params(entries, &ring, &params)
            disabled = r == 0 && flags == deferred
        }
        guard r == 0 else { throw SysError("io_uring setup failed", errno: Errno(result: r)) }
        cqes = .allocate(capacity: Self.completionBatch)
    }

    /// Enables a ring created with `deferTaskRun`: the calling thread becomes its only submitter.
    /// Does nothing for other rings.
    public func enable() throws(SysError) {
        guard disabled else { return }
        let r = io_uring_register(UInt32(ring.ring_fd), UInt32(IORING_REGISTER_ENABLE_RINGS), nil, 0)
        guard r == 0 else { throw SysError("io_uring enable failed", errno: Errno(result: r)) }
        disabled = false
    }

    deinit {
        io_uring_queue_exit(&ring)
        cqes.deallocate()
    }

    /// A free submission entry, submitting queued ones first when the ring is full. Internal: only
    /// the typed prepares below take entries (inlinable, so usable from their inlined bodies).
    @inlinable @inline(__always)
    internal func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(&ring) { return s }
        _ = io_uring_submit(&ring)
        guard let s = io_uring_get_sqe(&ring) else { preconditionFailure("io_uring SQ full after submit") }
        return s
    }

    /// Submits what is queued and waits for at least one completion or `timeoutNanos`.
    @inlinable
    public func submitAndWait(timeoutNanos: Int64) {
        var ts = __kernel_timespec(tv_sec: timeoutNanos / 1_000_000_000, tv_nsec: timeoutNanos % 1_000_000_000)
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        _ = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nil)
    }

    /// Registers a provided-buffer ring; returns 0 or -errno.
    public func registerBufferRing(_ registration: inout io_uring_buf_reg) -> Int32 {
        io_uring_register_buf_ring(&ring, &registration, 0)
    }

    /// Unregisters the provided-buffer ring of buffer group `group`; returns 0 or -errno.
    @discardableResult
    public func unregisterBufferRing(group: UInt16) -> Int32 {
        io_uring_unregister_buf_ring(&ring, Int32(group))
    }

    /// Submits what is queued without waiting.
    @inlinable
    public func submit() { _ = io_uring_submit(&ring) }

    /// Calls `body` for every available completion (at most one batch), then marks them seen.
    @inlinable @inline(__always)
    public func drain(_ body: (Completion) -> Void) -> Int {
        let n = Int(io_uring_peek_batch_cqe(&ring, cqes, UInt32(Self.completionBatch)))
        for i in 0..<n {
            let c = cqes[i]!.pointee
            if let token = Token(packed: c.user_data) {
                body(Completion(token: token, result: c.res, flags: c.flags))
            }
        }
        io_uring_cq_advance(&ring, UInt32(n))
        return n
    }
}

// MARK: - Typed prepares
//
// Each takes a free entry (`sqe()`), prepares one request exactly as the liburing call named in its
// comment does, and tags it with `token`. The returned `Submission` can still be linked to the next
// request or made to select a provided buffer. Flags are the raw MSG_*/POLL* bits the caller passes
// today (see `Socket.noSignal`, `Socket.dontWait`: Glibc's MSG_* constants are not always in scope).

/// A prepared submission entry, for the flags that are set after the prepare.
@frozen
public struct Submission {
    public let sqe: UnsafeMutablePointer<io_uring_sqe>

    @inlinable @inline(__always)
    public init(_ sqe: UnsafeMutablePointer<io_uring_sqe>) { self.sqe = sqe }

    /// Links the next submitted request to this one (IOSQE_IO_LINK): it starts when this one succeeds.
    @inlinable @inline(__always)
    public func link() { sqe.link() }

    /// Makes the request pick its buffer from provided-buffer group `group` (IOSQE_BUFFER_SELECT).
    @inlinable @inline(__always)
    public func selectBuffer(group: UInt16) { sqe.selectBuffer(group: group) }
}

extension IOUring {
    /// `read(fd, buffer, length)` at offset 0 (io_uring_prep_read).
    @inlinable @inline(__always) @discardableResult
    public func prepareRead(fd: Int32, into buffer: UnsafeMutableRawPointer, length: UInt32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_read(s, fd, buffer, length, 0)
        s.setToken(token)
        return Submission(s)
    }

    /// `write(fd, bytes, length)` at offset 0 (io_uring_prep_write), e.g. 8 bytes to an eventfd.
    @inlinable @inline(__always) @discardableResult
    public func prepareWrite(fd: Int32, from bytes: UnsafeRawPointer, length: UInt32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_write(s, fd, bytes, length, 0)
        s.setToken(token)
        return Submission(s)
    }

    /// A multishot read into the provided buffers of group `group` (IORING_OP_READ_MULTISHOT, Linux 6.7).
    @inlinable @inline(__always) @discardableResult
    public func prepareReadMultishot(fd: Int32, group: UInt16, token: Token) -> Submission {
        let s = sqe()
        s.prepareMultishotRead(fd: fd, group: group)
        s.setToken(token)
        return Submission(s)
    }

    /// `recv(fd, buffer, length, 0)` (io_uring_prep_recv).
    @inlinable @inline(__always) @discardableResult
    public func prepareRecv(fd: Int32, into buffer: UnsafeMutableRawPointer, length: Int, flags: Int32 = 0,
                            token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_recv(s, fd, buffer, length, flags)
        s.setToken(token)
        return Submission(s)
    }

    /// A multishot recvmsg into the provided buffers of group `group`; `message` gives the name and
    /// control lengths each buffer is laid out with (io_uring_prep_recvmsg_multishot, flags 0, then
    /// IOSQE_BUFFER_SELECT). See `ReceivedMessage` for reading a completed buffer.
    @inlinable @inline(__always) @discardableResult
    public func prepareRecvMsgMultishot(fd: Int32, message: UnsafeMutablePointer<msghdr>, group: UInt16,
                                        token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_recvmsg_multishot(s, fd, message, 0)
        s.selectBuffer(group: group)
        s.setToken(token)
        return Submission(s)
    }

    /// `send(fd, bytes, length, flags)` (io_uring_prep_send).
    @inlinable @inline(__always) @discardableResult
    public func prepareSend(fd: Int32, bytes: UnsafeRawPointer, length: Int, flags: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_send(s, fd, bytes, length, flags)
        s.setToken(token)
        return Submission(s)
    }

    /// `sendmsg(fd, message, flags)` (io_uring_prep_sendmsg).
    @inlinable @inline(__always) @discardableResult
    public func prepareSendMsg(fd: Int32, message: UnsafePointer<msghdr>, flags: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_sendmsg(s, fd, message, UInt32(bitPattern: flags))
        s.setToken(token)
        return Submission(s)
    }

    /// `writev(fd, iovecs, count)` at offset 0 (io_uring_prep_writev).
    @inlinable @inline(__always) @discardableResult
    public func prepareWritev(fd: Int32, iovecs: UnsafePointer<iovec>, count: UInt32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_writev(s, fd, iovecs, count, 0)
        s.setToken(token)
        return Submission(s)
    }

    /// `accept4(fd, NULL, NULL, flags)` (io_uring_prep_accept), e.g. flags SOCK_CLOEXEC.
    @inlinable @inline(__always) @discardableResult
    public func prepareAccept(fd: Int32, flags: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_accept(s, fd, nil, nil, flags)
        s.setToken(token)
        return Submission(s)
    }

    /// A one-shot poll for `events` (POLLIN, POLLOUT, ...) on `fd` (io_uring_prep_poll_add).
    @inlinable @inline(__always) @discardableResult
    public func preparePoll(fd: Int32, events: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_poll_add(s, fd, UInt32(bitPattern: events))
        s.setToken(token)
        return Submission(s)
    }

    /// A multishot poll for `events` on `fd` (io_uring_prep_poll_multishot): one completion per
    /// readiness, with IORING_CQE_F_MORE while it stays armed.
    @inlinable @inline(__always) @discardableResult
    public func preparePollMultishot(fd: Int32, events: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_poll_multishot(s, fd, UInt32(bitPattern: events))
        s.setToken(token)
        return Submission(s)
    }

    /// Removes the poll that was submitted with token `target` (io_uring_prep_poll_remove).
    @inlinable @inline(__always) @discardableResult
    public func preparePollRemove(_ target: Token, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_poll_remove(s, target.packed)
        s.setToken(token)
        return Submission(s)
    }

    /// Cancels every request in flight on `fd` (io_uring_prep_cancel_fd with IORING_ASYNC_CANCEL_ALL).
    @inlinable @inline(__always) @discardableResult
    public func prepareCancel(fd: Int32, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_cancel_fd(s, fd, UInt32(IORING_ASYNC_CANCEL_ALL))
        s.setToken(token)
        return Submission(s)
    }

    /// Cancels the request submitted with `target` (its fd may be closed already).
    @inlinable @discardableResult
    public func prepareCancel(_ target: Token, token: Token) -> Submission {
        let s = sqe()
        io_uring_prep_cancel64(s, target.packed, 0)
        s.setToken(token)
        return Submission(s)
    }
}

/// A datagram that a multishot recvmsg left in a provided buffer (io_uring_recvmsg_out, the sender's
/// address, the payload), read with the `msghdr` the request was prepared with.
@frozen
public struct ReceivedMessage {
    @usableFromInline let out: UnsafeMutablePointer<io_uring_recvmsg_out>
    @usableFromInline let message: UnsafeMutablePointer<msghdr>
    @usableFromInline let result: Int32

    /// The message in `buffer` of a completion with `result` bytes; nil when it does not hold a
    /// complete header (io_uring_recvmsg_validate).
    @inlinable @inline(__always)
    public init?(buffer: UnsafeMutableRawPointer, result: Int32, message: UnsafeMutablePointer<msghdr>) {
        guard let out = io_uring_recvmsg_validate(buffer, result, message) else { return nil }
        self.out = out
        self.message = message
        self.result = result
    }

    /// The recvmsg flags (MSG_TRUNC when the payload did not fit).
    @inlinable public var flags: UInt32 { out.pointee.flags }
    /// The sender address's length as the kernel gave it (may exceed the room the request left).
    @inlinable public var nameLength: UInt32 { out.pointee.namelen }
    /// The sender address (io_uring_recvmsg_name).
    @inlinable public var name: UnsafeMutableRawPointer { io_uring_recvmsg_name(out)! }
    /// The payload (io_uring_recvmsg_payload).
    @inlinable public var payload: UnsafeMutableRawPointer { io_uring_recvmsg_payload(out, message)! }
    /// The payload's length (io_uring_recvmsg_payload_length).
    @inlinable public var payloadLength: Int { Int(io_uring_recvmsg_payload_length(out, result, message)) }
}

extension UnsafeMutablePointer where Pointee == io_uring_sqe {
    @inlinable @inline(__always)
    public func setToken(_ token: Token) { io_uring_sqe_set_data64(self, token.packed) }

    /// IOSQE_IO_LINK (a macro Swift cannot import).
    @inlinable @inline(__always)
    public func link() { pointee.flags |= 1 << 2 }

    /// Makes the request pick its buffer from provided-buffer group `group` (IOSQE_BUFFER_SELECT).
    @inlinable @inline(__always)
    public func selectBuffer(group: UInt16) {
        pointee.flags |= 1 << 5
        pointee.buf_group = group
    }

    /// A multishot read into the provided buffers of group `group` (IORING_OP_READ_MULTISHOT,
    /// Linux 6.7; liburing 2.3's headers predate it).
    @inlinable @inline(__always)
    public func prepareMultishotRead(fd: Int32, group: UInt16) {
        io_uring_prep_rw(49, self, fd, nil, 0, 0)
        selectBuffer(group: group)
    }
}
