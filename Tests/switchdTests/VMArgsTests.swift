// VMArgsTests: the exact options `qemu-args` and `krunkit-args` print (golden strings); how `attach` finds COMMAND.
import Foundation
import Glibc
import Proto
import Switch
import XCTest
@testable import switchd

final class VMArgsTests: XCTestCase {
    private let lab = NetworkStatus(
        name: "lab", mode: "isolated", subnet: "10.77.0.0/24", gateway: "10.77.0.1", mtu: 9000,
        sockets: SocketPaths(dgram: "/run/switchd/lab/dgram.sock", stream: "/run/switchd/lab/stream.sock",
                             dgramOffload: "/run/switchd/lab/dgram-offload.sock", streamOffload: "/run/switchd/lab/stream-offload.sock",
                             vhostUser: "/run/switchd/lab/vhost-user.sock"),
        ports: [])
    private let mac = MACAddress("52:54:00:12:34:56")!

    func testDefaultMACIsStableLocallyAdministeredAndPerName() {
        let a = VMRecipes.defaultMAC(network: "lab", name: "vm0")
        XCTAssertEqual(a, VMRecipes.defaultMAC(network: "lab", name: "vm0"))
        XCTAssertEqual(a.description, "52:54:00:3f:d4:a7")  // FNV-1a 64 of "switchd-vm/lab/vm0", low 24 bits
        XCTAssertNotEqual(a, VMRecipes.defaultMAC(network: "lab", name: "vm1"))
        XCTAssertNotEqual(a, VMRecipes.defaultMAC(network: "dev", name: "vm0"))
        XCTAssertEqual(a.rawValue >> 40 & 0x02, 0x02, "locally administered")
        XCTAssertFalse(a.isMulticast)
    }

    func testQEMUDgram() {
        let args = VMRecipes.qemu(lab, kind: .dgram, mac: mac, id: "n0", attach: false)
        XCTAssertEqual(args.options, "-netdev dgram,id=n0,local.type=unix,local.path=/tmp/switchd-lab-525400123456.sock,"
                       + "remote.type=unix,remote.path=/run/switchd/lab/dgram.sock "
                       + "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=9000")
        XCTAssertEqual(args.notes, [
            "local.path is QEMU's own socket: it must be unique per VM (here it follows the MAC); QEMU replaces a file there.",
            "or let switchd pass a socket: switchd attach lab --kind dgram -- qemu-system-x86_64 ... "
                + "-netdev dgram,id=n0,local.type=fd,local.str=3 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=9000",
        ])
    }

    func testQEMUStream() {
        let args = VMRecipes.qemu(lab, kind: .stream, mac: mac, id: "net1", attach: false, locate: " --run-dir /tmp/sw")
        XCTAssertEqual(args.options, "-netdev stream,id=net1,server=off,addr.type=unix,addr.path=/run/switchd/lab/stream.sock "
                       + "-device virtio-net-pci,netdev=net1,mac=52:54:00:12:34:56,host_mtu=9000")
        XCTAssertEqual(args.notes.last, "or let switchd pass a socket: switchd attach lab --kind stream --run-dir /tmp/sw -- "
                       + "qemu-system-x86_64 ... -netdev stream,id=net1,addr.type=fd,addr.str=3 "
                       + "-device virtio-net-pci,netdev=net1,mac=52:54:00:12:34:56,host_mtu=9000")
    }

    func testQEMUTap() {
        let args = VMRecipes.qemu(lab, kind: .tap, mac: mac, id: "n0", attach: false)
        XCTAssertEqual(args.options, "-netdev tap,id=n0,ifname=vmtap123456,script=no,downscript=no,vnet_hdr=on "
                       + "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=9000")
        XCTAssertEqual(args.notes, [
            "QEMU creates the TAP vmtap123456 (it needs CAP_NET_ADMIN); once it runs, join it to the switch:",
            "  ip link set vmtap123456 mtu 9000",
            "  switchd port add lab --link vmtap123456",
            "the port goes when QEMU exits and its TAP with it.",
        ])
        var standard = lab
        standard.mtu = 1500
        let named = VMRecipes.qemu(standard, kind: .tap, mac: mac, id: "n0", attach: false, ifname: "vm7")
        XCTAssertEqual(named.options, "-netdev tap,id=n0,ifname=vm7,script=no,downscript=no,vnet_hdr=on "
                       + "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=1500")
        XCTAssertFalse(named.notes.contains { $0.contains("mtu") }, "MTU 1500 is a TAP's default")
    }

    func testQEMUVhostUser() {
        let args = VMRecipes.qemu(lab, kind: .vhostUser, mac: mac, id: "n0", attach: false, memory: "512M")
        XCTAssertEqual(args.options, "-m 512M -object memory-backend-memfd,id=mem-n0,size=512M,share=on -numa node,memdev=mem-n0 "
                       + "-chardev socket,id=chr-n0,path=/run/switchd/lab/vhost-user.sock,reconnect=1 "
                       + "-netdev vhost-user,id=n0,chardev=chr-n0 "
                       + "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,mrg_rxbuf=on,host_mtu=9000")
        XCTAssertEqual(args.notes.count, 3)
        XCTAssertTrue(args.notes[2].contains("--tcg"))
        let tcg = VMRecipes.qemu(lab, kind: .vhostUser, mac: mac, id: "n0", attach: false, memory: "512M", tcg: true)
        XCTAssertTrue(tcg.options.hasSuffix(",mrg_rxbuf=on,host_mtu=9000,vectors=0"))
        XCTAssertEqual(tcg.notes.count, 2)
        var unnamed = lab
        unnamed.sockets = SocketPaths()
        XCTAssertTrue(VMRecipes.qemu(unnamed, kind: .vhostUser, mac: mac, id: "n0", attach: false).options
                        .contains("path=RUNDIR/lab/vhost-user.sock,"))
    }

    func testQEMUArgsVhostUserOptions() throws {
        XCTAssertNoThrow(try QEMUArgsCommand.parse(["lab", "--vhost-user", "--memory", "2G"]))
        XCTAssertThrowsError(try QEMUArgsCommand.parse(["lab", "--vhost-user", "--attach"]))
        XCTAssertThrowsError(try QEMUArgsCommand.parse(["lab", "--vhost-user", "--kind", "tap"]))
        XCTAssertThrowsError(try QEMUArgsCommand.parse(["lab", "--kind", "vhost-user", "--memory", "0G"]))
        XCTAssertThrowsError(try QEMUArgsCommand.parse(["lab", "--kind", "vhost-user", "--memory", "lots"]))
    }

    func testQEMUAttachForms() {
        XCTAssertEqual(VMRecipes.qemu(lab, kind: .dgram, mac: mac, id: "n0", attach: true).options,
                       "-netdev dgram,id=n0,local.type=fd,local.str=3 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=9000")
        let stream = VMRecipes.qemu(lab, kind: .stream, mac: mac, id: "n0", attach: true)
        XCTAssertEqual(stream.options,
                       "-netdev stream,id=n0,addr.type=fd,addr.str=3 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,host_mtu=9000")
        XCTAssertEqual(stream.notes[1], "  switchd attach lab --kind stream -- qemu-system-x86_64 ... " + stream.options)
    }

    func testKrunkit() {
        func device(_ kind: AttachKind, _ offload: Bool, attach: Bool = false) -> String {
            VMRecipes.krunkit(lab, kind: kind, offload: offload, mac: mac, attach: attach).options
        }
        XCTAssertEqual(device(.dgram, true), "--device virtio-net,unixSocketPath=/run/switchd/lab/dgram.sock,mac=52:54:00:12:34:56")
        XCTAssertEqual(device(.dgram, false), "--device virtio-net,type=unixgram,path=/run/switchd/lab/dgram.sock,mac=52:54:00:12:34:56")
        XCTAssertEqual(device(.stream, true),
                       "--device virtio-net,type=unixstream,path=/run/switchd/lab/stream-offload.sock,mac=52:54:00:12:34:56,offloading=on")
        XCTAssertEqual(device(.stream, false), "--device virtio-net,type=unixstream,path=/run/switchd/lab/stream.sock,mac=52:54:00:12:34:56")
        XCTAssertEqual(device(.dgram, true, attach: true), "--device virtio-net,type=unixgram,fd=3,mac=52:54:00:12:34:56,offloading=on")
        XCTAssertEqual(device(.stream, false, attach: true), "--device virtio-net,type=unixstream,fd=3,mac=52:54:00:12:34:56")
        let notes = VMRecipes.krunkit(lab, kind: .dgram, offload: true, mac: mac, attach: false).notes
        XCTAssertEqual(notes, [
            "vfkit style: offloading on and the VFKT handshake, so switchd treats the VM as a header-less offload peer.",
            "krunkit has no MTU option: the guest takes the network's MTU (9000) from DHCP.",
            "or let switchd pass a socket: switchd attach lab --kind dgram --offload -- krunkit ... "
                + "--device virtio-net,type=unixgram,fd=3,mac=52:54:00:12:34:56,offloading=on",
        ])
        XCTAssertEqual(VMRecipes.krunkit(lab, kind: .stream, offload: false, mac: mac, attach: true).notes[1],
                       "  switchd attach lab --kind stream -- krunkit ... --device virtio-net,type=unixstream,fd=3,mac=52:54:00:12:34:56")
    }

    func testResolvesCommandsLikeExecvp() throws {
        XCTAssertEqual(AttachCommand.resolve("sh", path: "/nonexistent:/bin"), "/bin/sh")
        XCTAssertEqual(AttachCommand.resolve("/bin/sh", path: nil), "/bin/sh")
        XCTAssertNil(AttachCommand.resolve("no-such-command-here", path: "/bin:/usr/bin"))
        let plain = NSTemporaryDirectory() + "/switchd-plain-\(getpid())"
        XCTAssertTrue(FileManager.default.createFile(atPath: plain, contents: Data(), attributes: [.posixPermissions: 0o644]))
        defer { unlink(plain) }
        XCTAssertNil(AttachCommand.resolve(plain, path: nil), "not executable")
        XCTAssertNil(AttachCommand.resolve("/bin", path: nil), "a directory")
        XCTAssertNil(AttachCommand.resolve("", path: "/bin"))
    }
}
