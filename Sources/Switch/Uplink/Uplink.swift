// Uplink: the TAP interface of a host or shared network in switchd's own namespace (docs/DESIGN.md §1),
// the `bridge100` of vmnet. It is a port like any other for forwarding; the kernel side holds the
// gateway's addresses, so whatever the services do not answer reaches the host's own stack.
import Glibc
import Proto
import SwitchSys

enum Uplink {
    /// Creates the uplink of `spec`: a TAP with offloads, the network's MTU and the gateway MAC (so
    /// the services and the kernel answer as one gateway), the gateway IPv4 address and prefix and,
    /// with IPv6, the gateway's ULA address. Returns the device, ready to become a port.
    static func open(_ spec: NetworkSpec) throws(SwitchError) -> OpenedDevice {
        guard let name = spec.uplink else { throw SwitchError("network \(spec.name) is isolated: it has no uplink") }
        let fd = try TAP.create(name: name, netns: nil, mac: spec.gatewayMAC, mtu: spec.mtu)
        func fail(_ message: String) -> SwitchError {
            Descriptor.close(fd)
            return SwitchError("uplink \(name): \(message)")
        }
        // The kernel side is the gateway, not a host on the guests' network: it takes no router
        // advertisements (ours would make it route through itself), autoconfigures nothing, and
        // skips duplicate address detection (the services answer for the gateway addresses too).
        let settings: [(String, String)] = spec.ipv6Prefix == nil
            ? [("disable_ipv6", "1")]
            : [("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0"), ("dad_transmits", "0")]
        for (key, value) in settings {
            let path = "/proc/sys/net/ipv6/conf/\(name)/\(key)"
            do { try Sysctl.write(path, value) } catch { throw fail("cannot set \(path) to \(value): \(error.errno)") }
        }
        let v4 = Program.run(["ip", "addr", "add", "\(spec.gateway)/\(spec.subnet.prefixLength)", "brd", "+", "dev", name])
        guard v4.status == 0 else { throw fail("cannot add \(spec.gateway)/\(spec.subnet.prefixLength): \(v4.output)") }
        if let prefix = spec.ipv6Prefix {
            let address = IPv6Address(high: prefix.high, low: 1)
            let v6 = Program.run(["ip", "-6", "addr", "add", "\(address)/64", "dev", name, "nodad"])
            guard v6.status == 0 else { throw fail("cannot add \(address)/64: \(v6.output)") }
        }
        return OpenedDevice(kind: .tap, fd: fd, headerSize: VirtioNetHeader.size,
                            info: PortInfo(id: name, peer: name, interface: name, isUplink: true))
    }
}
