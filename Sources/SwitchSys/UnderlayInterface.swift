// UnderlayInterface: which interface holds a local address, and its MTU (a VXLAN tunnel's underlay
// check at config time).
internal import Glibc
public import Proto

/// The interface that holds an address (a tunnel's underlay), and its MTU.
public enum UnderlayInterface {
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
        defer { Glibc.close(fd) }
        var request = [UInt8](repeating: 0, count: 40)
        let bytes = Array(name.utf8.prefix(15))
        request.replaceSubrange(0..<bytes.count, with: bytes)
        let r = request.withUnsafeMutableBytes { ioctl(fd, UInt(0x8921), $0.baseAddress!) }
        guard r == 0 else { return nil }
        return Int(request.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) })
    }
}
