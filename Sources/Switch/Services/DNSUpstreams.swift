// DNSUpstreams: the DNS proxy's UDP transport towards the upstream resolvers, shared by both DNS servers (isolated and kernel-socket).
//
// One nonblocking UDP socket per address family, and one receive buffer allocated with them (a
// 64 KiB array per readable event was the isolated-mode cost before). What to do with a reply, and
// how to count a failure, stays with the caller: the isolated proxy on the forwarding thread ignores
// failures, the kernel-socket server counts and logs them.
import Glibc
import Proto
import SwitchSys

final class DNSUpstreams {
    /// The sockets, one per family (-1: none could be made).
    private(set) var ipv4: Int32
    private(set) var ipv6: Int32
    /// Where replies are read into; valid until the next `receive`.
    private let buffer: UnsafeMutableRawBufferPointer

    /// Opens both sockets; `failed` hears of a family whose socket could not be made (IPv4: AF_INET).
    init(failed: (_ family: Int32, _ error: Errno) -> Void = { _, _ in }) {
        ipv4 = Socket.udp(AF_INET)
        if ipv4 < 0 { failed(AF_INET, .current) }
        ipv6 = Socket.udp(AF_INET6)
        if ipv6 < 0 { failed(AF_INET6, .current) }
        buffer = .allocate(byteCount: 65_536, alignment: 8)
    }

    deinit {
        self.close()
        buffer.deallocate()
    }

    /// Closes both sockets (idempotent).
    func close() {
        if ipv4 >= 0 { Descriptor.close(ipv4) }
        if ipv6 >= 0 { Descriptor.close(ipv6) }
        ipv4 = -1
        ipv6 = -1
    }

    /// What a send came to.
    enum SendResult: Equatable {
        case sent
        /// No socket of the upstream's family.
        case noSocket
        /// The socket's buffer is full (EAGAIN, ENOBUFS): the datagram is dropped.
        case dropped
        case failed(Errno)
    }

    /// Sends `message` to `upstream` from the socket of its family.
    @discardableResult
    func send(_ message: [UInt8], to upstream: UpstreamAddress) -> SendResult {
        send(message, to: InetSocketAddress(upstream))
    }

    /// Sends `message` to `destination` from the socket of its family.
    @discardableResult
    func send(_ message: [UInt8], to destination: InetSocketAddress) -> SendResult {
        let fd = destination.family == AF_INET ? ipv4 : ipv6
        guard fd >= 0 else { return .noSocket }
        guard let e = message.withUnsafeBytes({ Datagram.send(fd, $0, to: destination) }) else { return .sent }
        return e.wouldBlock || e == .ENOBUFS ? .dropped : .failed(e)
    }

    /// One datagram waiting on upstream socket `fd`: `.datagram` with its bytes in `received(count)`.
    func receive(_ fd: Int32) -> Datagram.Received { Datagram.receive(fd, into: buffer) }

    /// The first `count` bytes of the last datagram received, as a new array (for the proxy).
    func received(_ count: Int) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
}

extension InetSocketAddress {
    init(_ upstream: UpstreamAddress) {
        switch upstream {
        case .ipv4(let a, let port): self.init(.v4(a), port: port)
        case .ipv6(let a, let port): self.init(.v6(a), port: port)
        }
    }

    /// The same address as an upstream (scope dropped, as resolv.conf's is).
    var upstream: UpstreamAddress {
        switch address {
        case .v4(let a): .ipv4(a, port: port)
        case .v6(let a): .ipv6(a, port: port)
        }
    }
}
