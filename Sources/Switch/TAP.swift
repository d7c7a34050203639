// TAP: creating a TAP device for a `tap` port (control thread only, never the forwarding loop).
import CSwitchShims
import Glibc
import Proto
import SwitchSys

enum TAP {
    // TUNSETOFFLOAD bits (linux/if_tun.h).
    static let checksum: UInt32 = 0x01, tsoV4: UInt32 = 0x02, tsoV6: UInt32 = 0x04, usoV4: UInt32 = 0x20, usoV6: UInt32 = 0x40
    static let offloads = checksum | tsoV4 | tsoV6 | usoV4 | usoV6
    /// On: super-frames that socket ports cannot take are segmented in software on egress
    /// (Loop/Egress.swift, Proto/Segmentation.swift); false asks the kernel for plain frames only.
    static let offloadsEnabled = true

    /// A locally administered unicast MAC derived from the TAP name (FNV-1a), so a guest behind a
    /// re-created TAP keeps its DHCP lease across restarts.
    static func stableMAC(name: String) -> MACAddress {
        let h = FNV1a.hash(name.utf8)
        return MACAddress(rawValue: 0x0200_0000_0000 | (h & 0xFF_FFFF_FFFF))
    }

    /// True for names the kernel accepts for an interface (IFNAMSIZ - 1, no '/', ':' or space).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }
    }

    /// Creates the TAP `name` with `mac` and `mtu`, moves it into `netns` when given, and brings it
    /// up. Returns the fd; closing it removes the device.
    static func create(name: String, netns: String?, mac: MACAddress, mtu: Int) throws(SwitchError) -> Int32 {
        guard isValidName(name) else { throw SwitchError("'\(name)' is not a valid interface name (1-15 characters, no '/', ':' or spaces)") }
        if let netns {
            guard !netns.isEmpty, !netns.contains("/"), access("/run/netns/\(netns)", F_OK) == 0 else {
                throw SwitchError("network namespace '\(netns)' does not exist")
            }
        }
        var actual = [CChar](repeating: 0, count: 16)
        let fd = sw_tap_open(name, &actual)
        guard fd >= 0 else {
            switch -fd {
            case EBUSY: throw SwitchError("interface \(name) exists and is in use")
            case EINVAL: throw SwitchError("interface \(name) exists and is not a TAP")
            case EPERM: throw SwitchError("creating TAP \(name) needs CAP_NET_ADMIN")
            default: throw SwitchError("cannot create TAP \(name): \(errnoText(-fd))")
            }
        }
        func fail(_ message: String) -> SwitchError {
            close(fd)
            return SwitchError("TAP \(name): \(message)")
        }
        // Accept what the kernel can hand over: partial checksums and TCP/UDP super-frames, passed
        // whole to every port that takes them and cut per egress for the others (docs/DESIGN.md §3).
        if !offloadsEnabled {
            _ = sw_tap_set_offload(fd, 0)
        } else if sw_tap_set_offload(fd, offloads) != 0 && sw_tap_set_offload(fd, offloads & ~(usoV4 | usoV6)) != 0 {
            _ = sw_tap_set_offload(fd, 0)
        }
        let octets = mac.octets
        var r = sw_if_set_mac(name, octets)
        guard r == 0 else { throw fail("cannot set MAC \(mac): \(errnoText(-r))") }
        r = sw_if_set_mtu(name, Int32(mtu))
        guard r == 0 else { throw fail("cannot set MTU \(mtu): \(errnoText(-r))") }
        if let netns {
            let move = Program.run(["ip", "link", "set", "dev", name, "netns", netns])
            guard move.status == 0 else { throw fail("cannot move into namespace \(netns): \(move.output)") }
            let up = Program.run(["ip", "-n", netns, "link", "set", "dev", name, "up"])
            guard up.status == 0 else { throw fail("cannot bring up in namespace \(netns): \(up.output)") }
        } else {
            r = sw_if_set_up(name)
            guard r == 0 else { throw fail("cannot bring up: \(errnoText(-r))") }
        }
        return fd
    }
}
