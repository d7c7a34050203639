// IOUring: the one io_uring the forwarding thread owns, and the packed user_data of its requests.
//
// Only this file and Socket.swift call liburing or libc for the dataplane. Completions carry a
// `Token` (operation, port slot, port generation, auxiliary value) packed into user_data, as
// SwiftNIO's LinuxUring does, so a completion for a port that has since been removed is stale by
// generation and dispatch is a `switch` on a small enum, with no closure or allocation.
import CLiburing
import Glibc

/// What a submitted request was for.
enum Operation: UInt8 {
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
}

/// The user_data of a request: operation (8 bits), port slot (16), generation (16), aux (24).
struct Token: Equatable {
    var operation: Operation
    var slot: UInt16
    var generation: UInt16
    var aux: UInt32

    init(_ operation: Operation, slot: UInt16 = 0, generation: UInt16 = 0, aux: UInt32 = 0) {
        self.operation = operation
        self.slot = slot
        self.generation = generation
        self.aux = aux & 0xFF_FFFF
    }

    init?(packed: UInt64) {
        guard let op = Operation(rawValue: UInt8(truncatingIfNeeded: packed >> 56)) else { return nil }
        operation = op
        slot = UInt16(truncatingIfNeeded: packed >> 40)
        generation = UInt16(truncatingIfNeeded: packed >> 24)
        aux = UInt32(truncatingIfNeeded: packed) & 0xFF_FFFF
    }

    var packed: UInt64 {
        UInt64(operation.rawValue) << 56 | UInt64(slot) << 40 | UInt64(generation) << 24 | UInt64(aux)
    }
}

/// One completion, copied out of the ring.
struct Completion {
    var token: Token
    var result: Int32
    var flags: UInt32
}

/// Owner of an io_uring instance. Not thread-safe: only the forwarding thread touches it.
final class IOUring {
    private var ring = io_uring()
    private let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    static let completionBatch = 128

    init(entries: UInt32) throws(SwitchError) {
        var params = io_uring_params()
        // Not SINGLE_ISSUER: the ring is created on the control thread and used by the loop thread.
        params.flags = IORING_SETUP_COOP_TASKRUN
        params.cq_entries = entries * 4
        params.flags |= IORING_SETUP_CQSIZE
        var r = io_uring_queue_init_params(entries, &ring, &params)
        if r == -EINVAL {  // older kernels: no SINGLE_ISSUER
            params = io_uring_params()
            r = io_uring_queue_init_params(entries, &ring, &params)
        }
        guard r == 0 else { throw SwitchError("io_uring setup failed: \(String(cString: strerror(-r)))") }
        cqes = .allocate(capacity: Self.completionBatch)
    }

    deinit {
        io_uring_queue_exit(&ring)
        cqes.deallocate()
    }

    /// A free submission entry, submitting queued ones first when the ring is full.
    @inline(__always)
    func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(&ring) { return s }
        _ = io_uring_submit(&ring)
        guard let s = io_uring_get_sqe(&ring) else { preconditionFailure("io_uring SQ full after submit") }
        return s
    }

    /// Submits what is queued and waits for at least one completion or `timeoutNanos`.
    func submitAndWait(timeoutNanos: Int64) {
        var ts = __kernel_timespec(tv_sec: timeoutNanos / 1_000_000_000, tv_nsec: timeoutNanos % 1_000_000_000)
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        _ = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nil)
    }

    /// Registers a provided-buffer ring; returns 0 or -errno.
    func registerBufferRing(_ registration: inout io_uring_buf_reg) -> Int32 {
        io_uring_register_buf_ring(&ring, &registration, 0)
    }

    /// Unregisters the provided-buffer ring of buffer group `group`; returns 0 or -errno.
    @discardableResult
    func unregisterBufferRing(group: UInt16) -> Int32 {
        io_uring_unregister_buf_ring(&ring, Int32(group))
    }

    /// Submits what is queued without waiting.
    func submit() { _ = io_uring_submit(&ring) }

    /// Calls `body` for every available completion (at most one batch), then marks them seen.
    @inline(__always)
    func drain(_ body: (Completion) -> Void) -> Int {
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

extension UnsafeMutablePointer where Pointee == io_uring_sqe {
    @inline(__always) func setToken(_ token: Token) { io_uring_sqe_set_data64(self, token.packed) }
    @inline(__always) func link() { pointee.flags |= 1 << 2 }  // IOSQE_IO_LINK (a macro Swift cannot import)

    /// A multishot read into the provided buffers of group `group` (IORING_OP_READ_MULTISHOT,
    /// Linux 6.7; liburing 2.3's headers predate it).
    @inline(__always) func prepareMultishotRead(fd: Int32, group: UInt16) {
        io_uring_prep_rw(49, self, fd, nil, 0, 0)
        selectBuffer(group: group)
    }
}
