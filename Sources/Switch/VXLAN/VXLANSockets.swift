// VXLANSockets: the underlay sockets of a network's VXLAN tunnel, and the underlay interface's MTU.
//
// Two sockets (docs/decisions.md "VXLAN source ports"):
// - receive: a plain UDP socket bound to local:port. The kernel checks the outer IP and UDP headers
//   (checksum 0 over IPv4 is valid, RFC 768; over IPv6 UDP_NO_CHECK6_RX accepts it too, as Linux's
//   `udp6zerocsumrx` does), and port 4789 is then "in use", so no ICMP port unreachable goes back.
// - send: a raw socket of protocol UDP bound to `local`, for which switchd writes the UDP header
//   itself, so the source port can be a hash of the inner flow (RFC 7348 §5) while a plain socket
//   bound to 4789 could only send from 4789. IPv4: checksum 0 (RFC 7348 §5 "SHOULD be transmitted as
//   zero", what Linux's vxlan sends); IPv6: the kernel fills the checksum in (IPV6_CHECKSUM 6, RFC
//   8200 §8.1 forbids zero). A raw socket also receives a copy of every UDP datagram of the
//   namespace: a one-instruction "drop everything" socket filter keeps its queue empty.
//   Without CAP_NET_RAW the receive socket sends as well, every datagram from `port` (logged).
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
    /// The socket datagrams go out on: the raw UDP socket, or `receive` itself without CAP_NET_RAW.
    var send: Int32
    /// `send` is the raw socket: switchd writes the UDP header (and picks the source port).
    var writesUDPHeader: Bool

    /// Opens both for `spec`; a clear error naming the address when the bind fails.
    static func open(_ spec: VXLANSpec) throws(SwitchError) -> VXLANSocketPair {
        let v6: Bool
        if case .v6 = spec.local { v6 = true } else { v6 = false }
        let family = v6 ? AF_INET6 : AF_INET
        let local = InetSocketAddress(spec.local, port: spec.port)
        let receive = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard receive >= 0 else { throw SwitchError("vxlan: socket: \(errnoText(errno))") }
        if v6 {
            setInt(receive, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
            setInt(receive, Int32(IPPROTO_UDP), Self.udpNoCheck6Rx, 1)
        }
        // A burst from several remotes waits here until the loop's next turn.
        if !setInt(receive, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20) { setInt(receive, SOL_SOCKET, SO_RCVBUF, 8 << 20) }
        let bound = local.withSockaddr { bind(receive, $0, $1) }
        guard bound == 0 else {
            let reason = errnoText(errno)
            Glibc.close(receive)
            throw SwitchError("vxlan: cannot bind UDP \(local) (vxlan.local, vxlan.port): \(reason)")
        }
        let raw = socket(family, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_UDP))
        guard raw >= 0 else {
            Log.warning("vxlan: no raw socket (\(errnoText(errno))): every datagram goes out from UDP port "
                        + "\(spec.port), not from a port hashed from its flow")
            setInt(receive, SOL_SOCKET, SO_SNDBUF, 4 << 20)
            return VXLANSocketPair(receive: receive, send: receive, writesUDPHeader: false)
        }
        if v6 { setInt(raw, Int32(IPPROTO_IPV6), Self.ipv6Checksum, 6) }  // the UDP checksum's offset (RFC 768)
        dropAllReceived(raw)
        if !setInt(raw, SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20) { setInt(raw, SOL_SOCKET, SO_SNDBUF, 4 << 20) }
        setInt(raw, SOL_SOCKET, SO_RCVBUF, 0)
        // Inner frames are cut to the network MTU, which the config checked against the underlay;
        // like Linux's vxlan (`df` unset) the outer packet may still be fragmented on the way.
        if v6 { setInt(raw, Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, 0) } else { setInt(raw, Int32(IPPROTO_IP), IP_MTU_DISCOVER, 0) }
        let rawBound = InetSocketAddress(spec.local, port: 0).withSockaddr { bind(raw, $0, $1) }
        guard rawBound == 0 else {
            let reason = errnoText(errno)
            Glibc.close(raw)
            Glibc.close(receive)
            throw SwitchError("vxlan: cannot bind a raw socket to \(spec.local) (vxlan.local): \(reason)")
        }
        return VXLANSocketPair(receive: receive, send: raw, writesUDPHeader: true)
    }

    /// Closes both (once when they are the same fd).
    func close() {
        if receive >= 0 { Glibc.close(receive) }
        if send >= 0 && send != receive { Glibc.close(send) }
    }

    /// UDP_NO_CHECK6_RX (linux/udp.h): accept IPv6 UDP datagrams with checksum 0.
    static let udpNoCheck6Rx: Int32 = 102
    /// IPV6_CHECKSUM (linux/in6.h, RFC 3542 §3.1): the kernel computes the checksum at this offset.
    static let ipv6Checksum: Int32 = 7
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
