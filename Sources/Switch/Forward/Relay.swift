// Relay: the userspace engine of port forwards (README "Port forwarding"): host TCP and UDP
// sockets relayed to the guest through the host's kernel, for the forwards DNAT cannot serve
// (loopback host addresses, which the kernel never routes out, `host` mode, which does not forward).
//
// Design note. Plain poll(2) over nonblocking kernel sockets on the thread of `PortForwards`:
// forwards carry control and service traffic, not the switch's bulk path, so one 64 KiB buffer
// per direction of a TCP connection and one UDP socket per client (so replies find their client)
// are enough. The guest sees the gateway's address (the kernel picks the uplink's address as the
// source); a forward without a guest refuses at once: a TCP client gets a reset, a UDP datagram is
// dropped (an ordinary socket cannot send ICMP). Nothing here runs on the forwarding thread.
import Glibc
import Proto
import SwitchSys

final class Relay {
    /// One relayed TCP connection: the client's socket and the one to the guest.
    final class Connection {
        let client: Int32
        let server: Int32
        var connecting: Bool
        /// Client to guest, and guest to client.
        let up = Pipe(), down = Pipe()
        init(client: Int32, server: Int32, connecting: Bool) {
            self.client = client; self.server = server; self.connecting = connecting
        }
    }

    /// One direction of a connection: bytes read from one side, not yet written to the other.
    final class Pipe {
        var bytes = [UInt8](repeating: 0, count: 65536)
        var start = 0, end = 0
        /// The source sent its FIN; `shut`: it was passed on (shutdown of the other side's writes).
        var eof = false, shut = false
        var isEmpty: Bool { start == end }
    }

    /// One UDP client of a forward: its own socket to the guest, so that replies find it.
    final class Session {
        let listener: Int32
        let client: InetSocketAddress
        let fd: Int32
        let target: InetSocketAddress
        var lastActive: Int64
        init(listener: Int32, client: InetSocketAddress, fd: Int32, target: InetSocketAddress, now: Int64) {
            self.listener = listener; self.client = client; self.fd = fd; self.target = target; lastActive = now
        }
    }

    /// Bounds on what clients can make the relay hold (fds, memory).
    static let maxConnections = 1024
    static let maxSessions = 1024
    /// A UDP client's socket is closed after this long without a datagram either way.
    static let sessionIdleNanoseconds: Int64 = 60_000_000_000

    let network: String
    private var connections: [Connection] = []
    private var sessions: [Session] = []
    private var buffer = [UInt8](repeating: 0, count: 65536)

    init(network: String) { self.network = network }

    /// Binds the relay's listening sockets of `spec`, one per host port, in port order.
    static func listen(_ spec: PortForwardSpec) throws(SwitchError) -> [Int32] {
        var fds: [Int32] = []
        for port in spec.hostPorts.first...spec.hostPorts.last {
            let address = InetSocketAddress(spec.hostAddress, port: port)
            do {
                fds.append(try openListener(spec.proto, at: address))
            } catch {
                for fd in fds { Descriptor.close(fd) }
                let why: String = switch error.errno {
                case .EADDRINUSE: "\(address) is in use on the host (by a listening socket or another forward)"
                case Errno(rawValue: EADDRNOTAVAIL): "\(spec.hostAddress) is not an address of this host"
                default: "cannot listen on \(address): \(error)"
                }
                throw SwitchError("forward \(spec.summary): \(why)")
            }
        }
        return fds
    }

    private static func openListener(_ proto: ForwardProtocol, at address: InetSocketAddress) throws(SysError) -> Int32 {
        let type = proto == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd = try Socket.open(type | Int32(SOCK_NONBLOCK.rawValue), domain: address.family)
        do {
            if address.family == AF_INET6 { Socket.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            if proto == .tcp { Socket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }  // past TIME_WAIT of a restart
            try Socket.bind(fd, to: address)
            if proto == .tcp { try Socket.listen(fd, backlog: 128) }
        } catch {
            Descriptor.close(fd)
            throw error
        }
        return fd
    }

    // MARK: - One turn of the loop (the thread of `PortForwards`)

    /// Polls `listeners`, the connections, the sessions and `wake` once (up to `timeoutMilliseconds`)
    /// and serves what is ready.
    func turn(listeners: [(fd: Int32, proto: ForwardProtocol)], wake: Int32, timeoutMilliseconds: Int32, targets: PortForwards) {
        var fds: [pollfd] = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        for l in listeners { fds.append(pollfd(fd: l.fd, events: Int16(POLLIN), revents: 0)) }
        let connectionsStart = fds.count
        for c in connections {
            var clientEvents: Int32 = 0, serverEvents: Int32 = 0
            if !c.connecting {
                if wantsRead(c.up) { clientEvents |= Int32(POLLIN) }
                if !c.down.isEmpty { clientEvents |= Int32(POLLOUT) }
                if wantsRead(c.down) { serverEvents |= Int32(POLLIN) }
                if !c.up.isEmpty { serverEvents |= Int32(POLLOUT) }
            } else {
                serverEvents = Int32(POLLOUT)
            }
            fds.append(pollfd(fd: c.client, events: Int16(clientEvents), revents: 0))
            fds.append(pollfd(fd: c.server, events: Int16(serverEvents), revents: 0))
        }
        let sessionsStart = fds.count
        for s in sessions { fds.append(pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)) }
        let ready: Int
        do { ready = try Poll.wait(&fds, milliseconds: timeoutMilliseconds) } catch {
            Log.warning("network \(network): port-forward relay: \(error)")
            PosixThread.sleep(milliseconds: 100)
            return
        }
        guard ready > 0 else { return }
        let now = Clock.monotonicNanoseconds()
        // What was polled; accepting and receiving below add to the lists.
        let polled = connections, polledSessions = sessions
        for (i, l) in listeners.enumerated() where fds[1 + i].revents != 0 {
            if l.proto == .tcp { acceptClients(l.fd, targets: targets) } else { receive(listener: l.fd, targets: targets, now: now) }
        }
        var finished: [ObjectIdentifier] = []
        for (i, c) in polled.enumerated() {
            let clientEvents = Int32(fds[connectionsStart + 2 * i].revents)
            let serverEvents = Int32(fds[connectionsStart + 2 * i + 1].revents)
            guard clientEvents != 0 || serverEvents != 0 else { continue }
            if !serve(c, clientEvents: clientEvents, serverEvents: serverEvents) { finished.append(ObjectIdentifier(c)) }
        }
        if !finished.isEmpty { connections.removeAll { finished.contains(ObjectIdentifier($0)) } }
        for (i, s) in polledSessions.enumerated() where fds[sessionsStart + i].revents != 0 { reply(s, now: now) }
    }

    private func wantsRead(_ pipe: Pipe) -> Bool { !pipe.eof && pipe.isEmpty }

    // MARK: TCP

    private func acceptClients(_ listener: Int32, targets: PortForwards) {
        for _ in 0..<64 {
            let fd: Int32
            do { fd = try Socket.accept(listener) } catch { return }  // EAGAIN: none left
            Descriptor.setCloseOnExec(fd)
            guard (try? Descriptor.setNonBlocking(fd)) != nil, connections.count < Self.maxConnections,
                  let target = targets.relayTarget(listener: listener) else {
                refuse(fd)
                continue
            }
            guard let server = try? Socket.open(Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), domain: target.family) else {
                refuse(fd)
                continue
            }
            switch Socket.connect(server, to: target) {
            case nil:
                connections.append(Connection(client: fd, server: server, connecting: false))
            case Errno(rawValue: EINPROGRESS):
                connections.append(Connection(client: fd, server: server, connecting: true))
            default:
                Descriptor.close(server)
                refuse(fd)
            }
        }
    }

    /// Closes a client connection with a reset: the client fails at once.
    private func refuse(_ fd: Int32) {
        Socket.reset(fd)
        Descriptor.close(fd)
    }

    /// Serves one connection's events; false when it is over (its sockets closed).
    private func serve(_ c: Connection, clientEvents: Int32, serverEvents: Int32) -> Bool {
        let readable = Int32(POLLIN | POLLHUP | POLLERR)
        if c.connecting {
            // A client that gave up while we connect: nothing to wait for (and its hang-up would
            // wake every poll until the connect ends).
            if clientEvents & Int32(POLLHUP | POLLERR) != 0 { return abort(c) }
            guard serverEvents != 0 else { return true }
            guard Socket.pendingError(c.server) == 0 else { return abort(c) }  // refused, unreachable: reset the client
            c.connecting = false
        }
        if clientEvents & Int32(POLLERR) != 0 || serverEvents & Int32(POLLERR) != 0 { return abort(c) }
        if clientEvents & readable != 0, wantsRead(c.up), !fill(c.up, from: c.client) { return abort(c) }
        if serverEvents & readable != 0, wantsRead(c.down), !fill(c.down, from: c.server) { return abort(c) }
        if !drain(c.up, to: c.server) || !drain(c.down, to: c.client) { return abort(c) }
        // A peer that hung up entirely cannot take what is still queued for it.
        if clientEvents & Int32(POLLHUP) != 0, c.up.eof, !c.down.isEmpty { return abort(c) }
        if serverEvents & Int32(POLLHUP) != 0, c.down.eof, !c.up.isEmpty { return abort(c) }
        for (pipe, destination) in [(c.up, c.server), (c.down, c.client)] where pipe.eof && pipe.isEmpty && !pipe.shut {
            Socket.shutdownWrite(destination)
            pipe.shut = true
        }
        guard c.up.shut && c.down.shut else { return true }
        Descriptor.close(c.client)
        Descriptor.close(c.server)
        return false
    }

    /// Resets both sides of a connection; false, for `serve`.
    private func abort(_ c: Connection) -> Bool {
        refuse(c.client)
        refuse(c.server)
        return false
    }

    /// Reads what `fd` has into the empty `pipe`; false on an error.
    private func fill(_ pipe: Pipe, from fd: Int32) -> Bool {
        do {
            let n = try pipe.bytes.withUnsafeMutableBytes { raw throws(SysError) in try Socket.receive(fd, into: raw) }
            if n == 0 { pipe.eof = true } else { pipe.start = 0; pipe.end = n }
            return true
        } catch {
            return (error as? SysError)?.errno.wouldBlock ?? false
        }
    }

    /// Writes what `pipe` holds to `fd` as far as it takes it; false on an error.
    private func drain(_ pipe: Pipe, to fd: Int32) -> Bool {
        guard !pipe.isEmpty else { return true }
        do {
            let n = try pipe.bytes.withUnsafeBytes { raw throws(SysError) in
                try Socket.send(fd, UnsafeRawBufferPointer(rebasing: raw[pipe.start..<pipe.end]))
            }
            pipe.start += n
            if pipe.isEmpty { pipe.start = 0; pipe.end = 0 }
            return true
        } catch {
            return (error as? SysError)?.errno.wouldBlock ?? false
        }
    }

    // MARK: UDP

    /// Datagrams from clients to a forward's listener: each to the guest from the client's session.
    private func receive(listener: Int32, targets: PortForwards, now: Int64) {
        for _ in 0..<64 {
            let received = buffer.withUnsafeMutableBytes { Datagram.receive(listener, into: $0) }
            guard case .datagram(let count, let sender?) = received else {
                if case .datagram = received { continue }
                return
            }
            var session = sessions.first { $0.listener == listener && $0.client == sender }
            if session == nil {
                guard sessions.count < Self.maxSessions, let target = targets.relayTarget(listener: listener) else { continue }
                let fd = Socket.udp(target.family)
                guard fd >= 0 else { continue }
                session = Session(listener: listener, client: sender, fd: fd, target: target, now: now)
                sessions.append(session!)
            }
            guard let session else { continue }
            session.lastActive = now
            _ = buffer.withUnsafeBytes { Datagram.send(session.fd, UnsafeRawBufferPointer(rebasing: $0[0..<count]), to: session.target) }
        }
    }

    /// Datagrams from the guest to a session: back to its client from the forward's address.
    private func reply(_ session: Session, now: Int64) {
        for _ in 0..<64 {
            let received = buffer.withUnsafeMutableBytes { Datagram.receive(session.fd, into: $0) }
            switch received {
            case .datagram(let count, let sender):
                guard sender?.address == session.target.address else { continue }
                session.lastActive = now
                _ = buffer.withUnsafeBytes {
                    Datagram.send(session.listener, UnsafeRawBufferPointer(rebasing: $0[0..<count]), to: session.client)
                }
            case .wouldBlock: return
            case .failed: continue  // an ICMP error queued for an earlier datagram
            }
        }
    }

    /// Closes UDP sessions that were idle too long or whose forward now goes elsewhere (a host
    /// name that moved to another lease), about once a second.
    func expire(now: Int64, targets: PortForwards) {
        sessions.removeAll { s in
            guard now - s.lastActive > Self.sessionIdleNanoseconds || targets.relayTarget(listener: s.listener) != s.target else { return false }
            Descriptor.close(s.fd)
            return true
        }
    }

    /// A listener is about to be closed: its sessions go with it.
    func listenerClosed(_ fd: Int32) {
        sessions.removeAll { s in
            guard s.listener == fd else { return false }
            Descriptor.close(s.fd)
            return true
        }
    }

    /// Closes every connection and session (the thread has ended).
    func closeAll() {
        for c in connections { Descriptor.close(c.client); Descriptor.close(c.server) }
        for s in sessions { Descriptor.close(s.fd) }
        connections = []
        sessions = []
    }
}
