// VXLANSockets: the underlay sockets of a network's VXLAN tunnel, and the underlay interface's MTU.
//
// The sockets (docs/decisions.md "VXLAN source ports"):
// - receive: a plain UDP socket bound to local:port. The kernel checks the outer IP and UDP headers
//   (checksum 0 over IPv4 is valid, RFC 768; over IPv6 UDP_NO_CHECK6_RX accepts it too, as Linux's
//   `udp6zerocsumrx` does), and port 4789 is then "in use", so no ICMP port unreachable goes back.
// - send: `sendSockets` UDP sockets bound to `local` on ephemeral ports. A frame goes out through
//   the one its inner flow's hash picks, so one flow keeps one outer source port and flows spread
//   over many (RFC 7348 §5), without privileges; the kernel writes the UDP header and checksum, and
//   UDP GSO (UDP_SEGMENT) carries a super-frame's segments in one sendmsg. Nothing should arrive
//   on those ports: a one-instruction socket filter refuses anything that does.
//
// Opened on the control thread at start-up, through SwitchSys (Socket, Descriptor); the underlay
// interface's MTU is `UnderlayInterface` there.
import Glibc
import Proto
import SwitchSys

/// The sockets of one network's VXLAN tunnel.
struct VXLANSocketPair {
    /// The UDP socket bound to local:port that datagrams arrive on.
    var receive: Int32
    /// The UDP sockets datagrams go out on, each bound to `local` on a port of the kernel's
    /// choosing (the ephemeral range): a frame leaves through the one its flow hash picks.
    var send: [Int32]

    /// Send sockets per tunnel: distinct outer source ports for underlay ECMP and RSS.
    static let sendSockets = 32

    /// Opens them for `spec`; a clear error naming the address when a bind fails.
    static func open(_ spec: VXLANSpec) throws(SwitchError) -> VXLANSocketPair {
        let v6: Bool
        if case .v6 = spec.local { v6 = true } else { v6 = false }
        let family = v6 ? AF_INET6 : AF_INET
        var opened = VXLANSocketPair(receive: -1, send: [])
        do throws(SwitchError) {
            let local = InetSocketAddress(spec.local, port: spec.port)
            opened.receive = try udpSocket(family, v6: v6, bound: local, what: "vxlan.local, vxlan.port")
            if v6 { setInt(opened.receive, Int32(IPPROTO_UDP), Self.udpNoCheck6Rx, 1) }
            // A burst from several remotes waits here until the loop's next turn.
            if !setInt(opened.receive, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20) { setInt(opened.receive, SOL_SOCKET, SO_RCVBUF, 8 << 20) }
            for _ in 0..<sendSockets {
                let fd = try udpSocket(family, v6: v6, bound: InetSocketAddress(spec.local, port: 0), what: "vxlan.local")
                opened.send.append(fd)
                // Nothing is meant to arrive on these ports: refuse it before it is queued.
                Socket.refuseAllInput(fd)
                if !setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, 2 << 20) { setInt(fd, SOL_SOCKET, SO_SNDBUF, 2 << 20) }
            }
        } catch {
            opened.close()
            throw error
        }
        return opened
    }

    /// A blocking, close-on-exec UDP socket bound to `address` (IPv6 only, for IPv6).
    private static func udpSocket(_ family: Int32, v6: Bool, bound address: InetSocketAddress,
                                  what: String) throws(SwitchError) -> Int32 {
        let fd: Int32
        do { fd = try Socket.open(Int32(SOCK_DGRAM.rawValue), domain: family) } catch {
            throw SwitchError("vxlan: socket: \(error)")
        }
        if v6 { setInt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        do { try Socket.bind(fd, to: address) } catch {
            Descriptor.close(fd)
            throw SwitchError("vxlan: cannot bind UDP \(address) (\(what)): \(error.errno)")
        }
        return fd
    }

    /// Closes them all.
    func close() {
        if receive >= 0 { Descriptor.close(receive) }
        for fd in send { Descriptor.close(fd) }
    }

    /// UDP_NO_CHECK6_RX (linux/udp.h): accept IPv6 UDP datagrams with checksum 0.
    static let udpNoCheck6Rx: Int32 = 102
    @discardableResult
    private static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        Socket.setOption(fd, level, name, value)
    }
}
