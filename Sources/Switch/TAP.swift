// TAP: creating a TAP device for a `tap` port (control thread only, never the forwarding loop).
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
            guard !netns.isEmpty, !netns.contains("/"), File.exists("/run/netns/\(netns)") else {
                throw SwitchError("network namespace '\(netns)' does not exist")
            }
        }
        let fd: Int32
        do { fd = try TAPDevice.open(name: name) } catch {
            switch error.errno.rawValue {
            case EBUSY: throw SwitchError("interface \(name) exists and is in use")
            case EINVAL: throw SwitchError("interface \(name) exists and is not a TAP")
            case EPERM: throw SwitchError("creating TAP \(name) needs CAP_NET_ADMIN")
            default: throw SwitchError("cannot create TAP \(name): \(error.errno)")
            }
        }
        func fail(_ message: String) -> SwitchError {
            Descriptor.close(fd)
            return SwitchError("TAP \(name): \(message)")
        }
        // Accept what the kernel can hand over: partial checksums and TCP/UDP super-frames, passed
        // whole to every port that takes them and cut per egress for the others (docs/DESIGN.md §3).
        if !offloadsEnabled {
            TAPDevice.setOffload(fd: fd, 0)
        } else if !TAPDevice.setOffload(fd: fd, offloads) && !TAPDevice.setOffload(fd: fd, offloads & ~(usoV4 | usoV6)) {
            TAPDevice.setOffload(fd: fd, 0)
        }
        do { try NetworkInterface.setMAC(name, mac.octets) } catch { throw fail("cannot set MAC \(mac): \(error.errno)") }
        do { try NetworkInterface.setMTU(name, Int32(mtu)) } catch { throw fail("cannot set MTU \(mtu): \(error.errno)") }
        if let netns {
            let move = Program.run(["ip", "link", "set", "dev", name, "netns", netns])
            guard move.status == 0 else { throw fail("cannot move into namespace \(netns): \(move.output)") }
            let up = Program.run(["ip", "-n", netns, "link", "set", "dev", name, "up"])
            guard up.status == 0 else { throw fail("cannot bring up in namespace \(netns): \(up.output)") }
        } else {
            do { try NetworkInterface.setUp(name) } catch { throw fail("cannot bring up: \(error.errno)") }
        }
        return fd
    }
}
