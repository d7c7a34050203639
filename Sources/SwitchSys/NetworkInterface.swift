// NetworkInterface: the interface ioctls (TAP creation and offloads, MAC, MTU, up, index) and the AF_PACKET socket that joins an interface.
//
// The ifreq unions these need import badly into Swift, so the calls stay in CSwitchShims; these
// wrappers give them typed results (SysError with the errno) so Switch need not import the shims.
internal import CSwitchShims

/// A TAP device opened on /dev/net/tun.
public enum TAPDevice {
    /// Opens /dev/net/tun as TAP `name` (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, vnet header size 12,
    /// close-on-exec, blocking), creating it if it does not exist. Returns the fd; closing it
    /// removes a device it created.
    public static func open(name: String) throws(SysError) -> Int32 {
        var actual = [CChar](repeating: 0, count: 16)
        let fd = sw_tap_open(name, &actual)
        guard fd >= 0 else { throw SysError("TUNSETIFF", name, errno: Errno(result: fd)) }
        return fd
    }

    /// TUNSETOFFLOAD with TUN_F_* bits; false when the kernel refused them.
    @discardableResult
    public static func setOffload(fd: Int32, _ flags: UInt32) -> Bool { sw_tap_set_offload(fd, flags) == 0 }
}

/// Settings of a network interface in switchd's namespace, by name.
public enum NetworkInterface {
    /// The interface index of `name`, nil when there is no such interface.
    public static func index(_ name: String) -> Int32? {
        let r = sw_if_index(name)
        return r > 0 ? r : nil
    }

    /// Sets the hardware address (SIOCSIFHWADDR).
    public static func setMAC(_ name: String, _ octets: [UInt8]) throws(SysError) {
        let r = sw_if_set_mac(name, octets)
        guard r == 0 else { throw SysError("SIOCSIFHWADDR", name, errno: Errno(result: r)) }
    }

    /// Sets the MTU (SIOCSIFMTU).
    public static func setMTU(_ name: String, _ mtu: Int32) throws(SysError) {
        let r = sw_if_set_mtu(name, mtu)
        guard r == 0 else { throw SysError("SIOCSIFMTU", name, errno: Errno(result: r)) }
    }

    /// Sets IFF_UP.
    public static func setUp(_ name: String) throws(SysError) {
        let r = sw_if_set_up(name)
        guard r == 0 else { throw SysError("SIOCSIFFLAGS", name, errno: Errno(result: r)) }
    }
}

/// An AF_PACKET socket joined to one interface.
public enum PacketSocket {
    /// Opens an AF_PACKET socket bound to `interface` with a virtio-net header on every frame
    /// (PACKET_VNET_HDR), PACKET_IGNORE_OUTGOING and promiscuous membership; blocking and
    /// close-on-exec. Returns the fd and the header size (12, or 10 on kernels without
    /// PACKET_VNET_HDR_SZ).
    public static func open(interface name: String) throws(SysError) -> (fd: Int32, headerSize: Int) {
        var headerSize: Int32 = 0
        let fd = sw_packet_open(name, &headerSize)
        guard fd >= 0 else { throw SysError("AF_PACKET", name, errno: Errno(result: fd)) }
        return (fd, Int(headerSize))
    }
}
