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
// The syscalls are Glibc calls made here on the control thread at start-up (docs/decisions.md
// "Targets and layers": direct calls still outside SwitchSys).
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
                dropAllReceived(fd)
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
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SwitchError("vxlan: socket: \(errnoText(errno))") }
        if v6 { setInt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        guard address.withSockaddr({ bind(fd, $0, $1) }) == 0 else {
            let reason = errnoText(errno)
            Glibc.close(fd)
            throw SwitchError("vxlan: cannot bind UDP \(address) (\(what)): \(reason)")
        }
        return fd
    }

    /// Closes them all.
    func close() {
        if receive >= 0 { Glibc.close(receive) }
        for fd in send { Glibc.close(fd) }
    }

    /// UDP_NO_CHECK6_RX (linux/udp.h): accept IPv6 UDP datagrams with checksum 0.
    static let udpNoCheck6Rx: Int32 = 102
    /// SO_ATTACH_FILTER (asm-generic/socket.h).
    static let attachFilter: Int32 = 26

    @discardableResult
    private static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        Socket.setOption(fd, level, name, value)
    }

    /// Attaches the classic BPF program `ret #0` (linux/filter.h: BPF_RET|BPF_K = 0x06): every
    /// datagram is refused before it is queued.
    private static func dropAllReceived(_ fd: Int32) {
        // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } and struct sock_fprog { u16 len; ptr }.
        var instruction: UInt64 = 0x06  // code 0x06, jt 0, jf 0, k 0 (little-endian layout)
        withUnsafeMutablePointer(to: &instruction) { filter in
            var program = (UInt64(1), UInt64(UInt(bitPattern: filter)))
            _ = setsockopt(fd, SOL_SOCKET, attachFilter, &program, socklen_t(16))
        }
    }
}

/// The interface that holds an underlay address, and its MTU.
public enum VXLANUnderlay {
    /// The name and MTU of the interface `address` is assigned to in this network namespace, or nil.
    public static func interface(holding address: IPAddress) -> (name: String, mtu: Int)? {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var name: String? = nil
        var entry = list
        while let current = entry, name == nil {
            defer { entry = current.pointee.ifa_next }
            guard let sa = current.pointee.ifa_addr else { continue }
            switch (Int32(sa.pointee.sa_family), address) {
            case (AF_INET, .v4(let wanted)):
                let sin = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
                if UInt32(bigEndian: sin.sin_addr.s_addr) == wanted.rawValue { name = String(cString: current.pointee.ifa_name) }
            case (AF_INET6, .v6(let wanted)):
                if IPv6Address(loading: UnsafeRawPointer(sa) + 8) == wanted { name = String(cString: current.pointee.ifa_name) }
            default:
                break
            }
        }
        guard let name, let mtu = mtu(of: name) else { return nil }
        return (name, mtu)
    }

    /// SIOCGIFMTU (linux/sockios.h 0x8921) on a struct ifreq laid out by hand: the name in the
    /// first 16 bytes, ifr_mtu an int at offset 16 (the shims' comment: ifreq's unions import badly).
    private static func mtu(of name: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var request = [UInt8](repeating: 0, count: 40)
        let bytes = Array(name.utf8.prefix(15))
        request.replaceSubrange(0..<bytes.count, with: bytes)
        let r = request.withUnsafeMutableBytes { ioctl(fd, UInt(0x8921), $0.baseAddress!) }
        guard r == 0 else { return nil }
        return Int(request.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) })
    }
}
