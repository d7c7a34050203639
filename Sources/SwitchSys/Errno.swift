// Errno and SysError: the errno values the code tells apart by name, and the one error a failed syscall throws.
public import Glibc

/// An errno value. Named for the ones switchd compares against; any other value is carried as is.
///
/// EBADF and EFAULT are programming errors (a closed or never-opened fd, a bad pointer), as SwiftNIO's
/// `isUnacceptableErrno` treats them: `isProgrammingError` says so, for callers that would rather stop
/// than go on. Nothing here changes how a caller handles them.
@frozen
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32

    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The errno of a failed io_uring completion or liburing call (a negative result: -errno).
    @inlinable public init(result: Int32) {
        precondition(result < 0, "not a failed io_uring result: \(result)")
        rawValue = -result
    }

    /// The errno of an io_uring completion's `result`, nil when it succeeded (`result` >= 0).
    @inlinable public init?(completion result: Int32) {
        guard result < 0 else { return nil }
        rawValue = -result
    }

    /// The calling thread's current errno.
    @inlinable public static var current: Errno { Errno(rawValue: Glibc.errno) }

    public static let EPERM = Errno(rawValue: Glibc.EPERM)
    public static let ENOENT = Errno(rawValue: Glibc.ENOENT)
    public static let EINTR = Errno(rawValue: Glibc.EINTR)
    public static let EIO = Errno(rawValue: Glibc.EIO)
    public static let EBADF = Errno(rawValue: Glibc.EBADF)
    public static let EAGAIN = Errno(rawValue: Glibc.EAGAIN)
    public static let ENOMEM = Errno(rawValue: Glibc.ENOMEM)
    public static let EACCES = Errno(rawValue: Glibc.EACCES)
    public static let EFAULT = Errno(rawValue: Glibc.EFAULT)
    public static let EEXIST = Errno(rawValue: Glibc.EEXIST)
    public static let EINVAL = Errno(rawValue: Glibc.EINVAL)
    public static let EMSGSIZE = Errno(rawValue: Glibc.EMSGSIZE)
    public static let EPIPE = Errno(rawValue: Glibc.EPIPE)
    public static let ENAMETOOLONG = Errno(rawValue: Glibc.ENAMETOOLONG)
    public static let EFBIG = Errno(rawValue: Glibc.EFBIG)
    public static let ENOBUFS = Errno(rawValue: Glibc.ENOBUFS)
    public static let ENOTCONN = Errno(rawValue: Glibc.ENOTCONN)
    public static let ECONNREFUSED = Errno(rawValue: Glibc.ECONNREFUSED)
    public static let ECONNRESET = Errno(rawValue: Glibc.ECONNRESET)
    public static let ECANCELED = Errno(rawValue: Glibc.ECANCELED)
    public static let ETIMEDOUT = Errno(rawValue: Glibc.ETIMEDOUT)
    public static let EADDRINUSE = Errno(rawValue: Glibc.EADDRINUSE)
    public static let ENETDOWN = Errno(rawValue: Glibc.ENETDOWN)
    public static let EOPNOTSUPP = Errno(rawValue: Glibc.EOPNOTSUPP)
    public static let EBADFD = Errno(rawValue: Glibc.EBADFD)
    public static let ENODEV = Errno(rawValue: Glibc.ENODEV)
    public static let ENXIO = Errno(rawValue: Glibc.ENXIO)

    /// EAGAIN/EWOULDBLOCK: try again when the fd is ready.
    @inlinable public var wouldBlock: Bool { rawValue == Glibc.EAGAIN || rawValue == Glibc.EWOULDBLOCK }

    /// EBADF or EFAULT: the caller passed a bad fd or pointer (SwiftNIO's "unacceptable errno").
    @inlinable public var isProgrammingError: Bool { rawValue == Glibc.EBADF || rawValue == Glibc.EFAULT }

    /// A raw errno constant (Glibc's `ECONNRESET`) matches its Errno, in `==` and `switch`, for code
    /// written against the Int32 errno of the error types SysError replaced.
    @inlinable public static func == (lhs: Errno, rhs: Int32) -> Bool { lhs.rawValue == rhs }
    @inlinable public static func ~= (pattern: Int32, value: Errno) -> Bool { pattern == value.rawValue }

    /// strerror's text.
    public var description: String { String(cString: strerror(rawValue)) }
}

/// The text of an errno value (strerror).
public func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// A failed system call: which call, on what (a path, an interface, a program), and the errno.
///
/// `description` is "CALL ARGUMENT: strerror" (the argument left out when there is none), or
/// `message` where a caller needs other words (which it then says in full).
public struct SysError: Error, CustomStringConvertible, Sendable, Equatable {
    public var call: String
    public var argument: String?
    public var errno: Errno
    /// Replaces the "CALL ARGUMENT: strerror" text where that would not read right.
    public var message: String?

    public init(_ call: String, _ argument: String? = nil, errno: Errno, message: String? = nil) {
        self.call = call
        self.argument = argument
        self.errno = errno
        self.message = message
    }

    /// The call failed with the thread's current errno.
    public init(_ call: String, _ argument: String? = nil) {
        self.init(call, argument, errno: .current)
    }

    public var description: String {
        message ?? "\(call)\(argument.map { " \($0)" } ?? ""): \(errno)"
    }
}
