// Link: joining an existing interface (a TAP QEMU opened, a veth end) as a `link` port (control thread).
//
// AF_PACKET with PACKET_VNET_HDR gives the same header + frame framing as a TAP, offload metadata
// included. PACKET_IGNORE_OUTGOING keeps the frames switchd itself sends (and the host's own) out of
// the receive side; IPv6 is turned off on the interface so the host stack does not autoconfigure it
// and talk on the guest's network, and ARP replies from the host on it are off (`arp_ignore` 8): in
// host and shared modes the uplink's gateway address is local to the same host, and the kernel
// would otherwise answer the guest's ARP for the gateway with the link's MAC, pulling the guest's
// gateway traffic away from the uplink. Both are restored when the port goes (docs/DESIGN.md §2).
import SwitchSys

enum Link {
    /// True when an interface of that name exists in switchd's namespace.
    static func exists(_ name: String) -> Bool { NetworkInterface.index(name) != nil }

    /// Opens interface `name`: returns the fd, the virtio-net header size, and whether IPv6 was on
    /// (and has been turned off).
    static func open(interface name: String) throws(SwitchError) -> (fd: Int32, headerSize: Int, hadIPv6: Bool, arpIgnore: String?) {
        guard TAP.isValidName(name) else { throw SwitchError("'\(name)' is not a valid interface name") }
        guard exists(name) else { throw SwitchError("interface \(name) does not exist") }
        let hadIPv6 = ipv6Enabled(interface: name)
        if hadIPv6 { setIPv6(interface: name, enabled: false) }
        var arpIgnore = Sysctl.read(arpIgnorePath(name))
        if arpIgnore == "8" || (try? Sysctl.write(arpIgnorePath(name), "8")) == nil { arpIgnore = nil }
        // QEMU leaves a TAP it opened with script=no down; frames written to a down TAP are lost.
        do {
            try NetworkInterface.setUp(name)
            let socket = try PacketSocket.open(interface: name)
            return (socket.fd, socket.headerSize, hadIPv6, arpIgnore)
        } catch {
            if hadIPv6 { setIPv6(interface: name, enabled: true) }
            if let arpIgnore { try? Sysctl.write(arpIgnorePath(name), arpIgnore) }
            throw SwitchError(error.errno == .EPERM ? "joining \(name) needs CAP_NET_ADMIN and CAP_NET_RAW"
                                                    : "cannot join interface \(name): \(error.errno)")
        }
    }

    private static func arpIgnorePath(_ name: String) -> String { "/proc/sys/net/ipv4/conf/\(name)/arp_ignore" }

    /// Gives the interface of a link port back its IPv6 and ARP settings.
    static func restore(_ info: PortInfo) {
        guard let interface = info.interface else { return }
        if info.restoreIPv6 { setIPv6(interface: interface, enabled: true) }
        if let value = info.restoreARPIgnore { try? Sysctl.write(arpIgnorePath(interface), value) }
    }

    private static func ipv6Path(_ name: String) -> String { "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6" }

    static func ipv6Enabled(interface name: String) -> Bool { Sysctl.read(ipv6Path(name)) == "0" }

    static func setIPv6(interface name: String, enabled: Bool) {
        try? Sysctl.write(ipv6Path(name), enabled ? "0" : "1")
    }
}
