// VMArgsCommand: `switchd qemu-args` and `switchd krunkit-args`, device options that match a running network.
import ArgumentParser
import Proto
import Switch

/// What the two commands print: the options on stdout (one line, for `$(...)` or pasting) and notes on stderr.
struct VMArgs: Equatable {
    var options: String
    var notes: [String]
}

/// The recipes, as pure functions of a network's status (golden-tested).
enum VMRecipes {
    /// QEMU's netdev kinds that reach switchd.
    enum QEMUKind: String, CaseIterable, ExpressibleByArgument {
        case dgram, stream, tap
        case vhostUser = "vhost-user"
    }

    /// The default MAC: QEMU's locally administered 52:54:00 prefix (bit 1 of the first byte set) and 24
    /// bits of FNV-1a over "switchd-vm/NETWORK/NAME", so a VM name gives the same MAC every time.
    static func defaultMAC(network: String, name: String) -> MACAddress {
        let h = FNV1a.hash("switchd-vm/\(network)/\(name)".utf8)
        return MACAddress(rawValue: 0x5254_0000_0000 | (h & 0xFF_FFFF))
    }

    /// `aabbccddeeff`: the MAC without colons, for file and interface names.
    static func hex(_ mac: MACAddress) -> String { mac.description.replacingOccurrences(of: ":", with: "") }

    /// QEMU's own socket for a path-bound dgram netdev: unique per VM because the MAC must be.
    static func localPath(network: String, mac: MACAddress) -> String { "/tmp/switchd-\(network)-\(hex(mac)).sock" }

    /// The TAP QEMU creates for `--kind tap`: `vmtap` and the MAC's last three bytes (within 15 characters).
    static func tapName(mac: MACAddress) -> String { "vmtap" + String(hex(mac).suffix(6)) }

    static func device(id: String, mac: MACAddress, mtu: Int) -> String {
        "-device virtio-net-pci,netdev=\(id),mac=\(mac),host_mtu=\(mtu)"
    }

    /// `qemu-args`. `locate` follows the switchd commands of the notes (the caller's ` --run-dir DIR`, say).
    static func qemu(_ network: NetworkStatus, kind: QEMUKind, mac: MACAddress, id: String, attach: Bool,
                     ifname: String? = nil, memory: String = "1G", tcg: Bool = false, locate: String = "") -> VMArgs {
        let name = network.name
        let device = device(id: id, mac: mac, mtu: network.mtu)
        if attach {
            let netdev = kind == .stream ? "-netdev stream,id=\(id),addr.type=fd,addr.str=3"
                                         : "-netdev dgram,id=\(id),local.type=fd,local.str=3"
            let attachKind = kind == .stream ? "stream" : "dgram"
            return VMArgs(options: "\(netdev) \(device)", notes: [
                "run QEMU under switchd attach, which passes the port's socket as fd 3:",
                "  switchd attach \(name) --kind \(attachKind)\(locate) -- qemu-system-x86_64 ... \(netdev) \(device)",
            ])
        }
        switch kind {
        case .dgram:
            let path = network.sockets.dgram ?? "RUNDIR/\(name)/dgram.sock"
            let netdev = "-netdev dgram,id=\(id),local.type=unix,local.path=\(localPath(network: name, mac: mac))"
                + ",remote.type=unix,remote.path=\(path)"
            return VMArgs(options: "\(netdev) \(device)", notes: [
                "local.path is QEMU's own socket: it must be unique per VM (here it follows the MAC); QEMU replaces a file there.",
                "or let switchd pass a socket: switchd attach \(name) --kind dgram\(locate) -- qemu-system-x86_64 ... "
                    + "-netdev dgram,id=\(id),local.type=fd,local.str=3 \(device)",
            ])
        case .stream:
            let path = network.sockets.stream ?? "RUNDIR/\(name)/stream.sock"
            let netdev = "-netdev stream,id=\(id),server=off,addr.type=unix,addr.path=\(path)"
            return VMArgs(options: "\(netdev) \(device)", notes: [
                "QEMU 7.2 does not reconnect: restart the VM if switchd restarts (QEMU >= 9.2: add ,reconnect-ms=1000 to -netdev; 8.0-9.1: ,reconnect=1).",
                "or let switchd pass a socket: switchd attach \(name) --kind stream\(locate) -- qemu-system-x86_64 ... "
                    + "-netdev stream,id=\(id),addr.type=fd,addr.str=3 \(device)",
            ])
        case .tap:
            let tap = ifname ?? tapName(mac: mac)
            let netdev = "-netdev tap,id=\(id),ifname=\(tap),script=no,downscript=no,vnet_hdr=on"
            var notes = ["QEMU creates the TAP \(tap) (it needs CAP_NET_ADMIN); once it runs, join it to the switch:"]
            if network.mtu != 1500 { notes.append("  ip link set \(tap) mtu \(network.mtu)") }
            notes.append("  switchd port add \(name) --link \(tap)\(locate)")
            notes.append("the port goes when QEMU exits and its TAP with it.")
            return VMArgs(options: "\(netdev) \(device)", notes: notes)
        case .vhostUser:
            // vhost-user needs the guest's RAM in shared, fd-backed memory: the memfd backend, as the
            // guest's only NUMA node, the same size as -m (docs/PROTOCOLS.md §vhost-user).
            let path = network.sockets.vhostUser ?? "RUNDIR/\(name)/vhost-user.sock"
            let chardev = "chr-\(id)"
            let options = "-m \(memory) -object memory-backend-memfd,id=mem-\(id),size=\(memory),share=on "
                + "-numa node,memdev=mem-\(id) -chardev socket,id=\(chardev),path=\(path),reconnect=1 "
                + "-netdev vhost-user,id=\(id),chardev=\(chardev) "
                + "-device virtio-net-pci,netdev=\(id),mac=\(mac),mrg_rxbuf=on,host_mtu=\(network.mtu)"
                + (tcg ? ",vectors=0" : "")
            var notes = [
                "the guest's RAM is the shared memfd (-m and the backend's size must match: --memory SIZE); "
                    + "checksum and TSO offloads cross into the switch, the fastest way to join a VM.",
                "reconnect=1: QEMU rejoins within a second after switchd restarts.",
            ]
            if !tcg {
                notes.append("without KVM (-accel tcg) add --tcg: QEMU 7.2 crashes starting a vhost-user NIC with MSI-X under TCG; "
                             + "--tcg turns MSI-X off (vectors=0).")
            }
            return VMArgs(options: options, notes: notes)
        }
    }

    /// `krunkit-args`: offload on by default (krunkit's fast path, which switchd completes for plain ports).
    static func krunkit(_ network: NetworkStatus, kind: AttachKind, offload: Bool, mac: MACAddress, attach: Bool,
                        locate: String = "") -> VMArgs {
        let name = network.name
        let type = kind == .stream ? "unixstream" : "unixgram"
        let offloading = offload ? ",offloading=on" : ""
        let mtuNote = "krunkit has no MTU option: the guest takes the network's MTU (\(network.mtu)) from DHCP."
        if attach {
            let device = "--device virtio-net,type=\(type),fd=3,mac=\(mac)\(offloading)"
            return VMArgs(options: device, notes: [
                "run krunkit under switchd attach, which passes the port's socket as fd 3:",
                "  switchd attach \(name) --kind \(kind.rawValue)\(offload ? " --offload" : "")\(locate) -- krunkit ... \(device)",
                mtuNote,
            ])
        }
        let sockets = network.sockets
        let device: String
        var notes: [String] = []
        switch (kind, offload) {
        case (.dgram, true):
            // vfkit style: unixgram with offloading and the VFKT handshake, which marks the peer as offloading.
            device = "--device virtio-net,unixSocketPath=\(sockets.dgram ?? "RUNDIR/\(name)/dgram.sock"),mac=\(mac)"
            notes.append("vfkit style: offloading on and the VFKT handshake, so switchd treats the VM as a header-less offload peer.")
        case (.dgram, false):
            device = "--device virtio-net,type=unixgram,path=\(sockets.dgram ?? "RUNDIR/\(name)/dgram.sock"),mac=\(mac)"
        case (.stream, true):
            device = "--device virtio-net,type=unixstream,path=\(sockets.streamOffload ?? "RUNDIR/\(name)/stream-offload.sock"),mac=\(mac),offloading=on"
        case (.stream, false):
            device = "--device virtio-net,type=unixstream,path=\(sockets.stream ?? "RUNDIR/\(name)/stream.sock"),mac=\(mac)"
        }
        notes.append(mtuNote)
        notes.append("or let switchd pass a socket: switchd attach \(name) --kind \(kind.rawValue)\(offload ? " --offload" : "")\(locate) -- krunkit ... "
                     + "--device virtio-net,type=\(type),fd=3,mac=\(mac)\(offloading)")
        return VMArgs(options: device, notes: notes)
    }
}

/// Options shared by the two commands.
struct VMIdentity: ParsableArguments {
    @Option(help: ArgumentHelp("The VM's MAC (default: derived from the network and --name).", valueName: "MAC"))
    var mac: String?

    @Option(help: ArgumentHelp("A name for the VM, from which the default MAC is derived (give each VM its own).", valueName: "NAME"))
    var name = "vm0"

    @Flag(help: "Print the fd form for running under `switchd attach` instead of a socket path.")
    var attach = false

    func validate() throws {
        if let mac, MACAddress(mac).map({ $0.isMulticast || $0.isZero }) ?? true {
            throw ValidationError("\"\(mac)\" is not a unicast MAC address like 52:54:00:12:34:56")
        }
    }

    func resolvedMAC(network: String) -> MACAddress {
        mac.flatMap { MACAddress($0) } ?? VMRecipes.defaultMAC(network: network, name: name)
    }
}

extension LocateOptions {
    /// What the printed notes add to switchd commands to reach the same daemon (empty, or ` --run-dir DIR`).
    var arguments: String {
        if let runDir { return " --run-dir \(runDir)" }
        if let config { return " --config \(config)" }
        return ""
    }

    /// The status of `network`, or an error naming the networks there are.
    func network(_ name: String) throws -> NetworkStatus {
        let networks = try client().send(.status).networks ?? []
        guard let found = networks.first(where: { $0.name == name }) else {
            throw ValidationError("no network named \(name) (there are: \(networks.map(\.name).joined(separator: ", ")))")
        }
        return found
    }
}

/// Prints `args`: options on stdout, notes on stderr.
private func emit(_ args: VMArgs) {
    print(args.options)
    for note in args.notes { printError(note) }
}

struct QEMUArgsCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu-args",
        abstract: "Print QEMU options that join a VM to a network, matching its MTU.",
        discussion: """
        The options go to stdout on one line (qemu-system-x86_64 ... $(switchd qemu-args NET)); notes, such as \
        the switchd attach form or the port add that a tap needs, go to stderr.
        """
    )

    @Argument(help: "The network.")
    var network: String

    @Option(help: "How QEMU joins: dgram (dgram.sock), stream (stream.sock), tap (QEMU's TAP joined as a link port) or vhost-user (vhost-user.sock, shared memory, offloads).")
    var kind: VMRecipes.QEMUKind = .dgram

    @Flag(name: .customLong("vhost-user"), help: "Same as --kind vhost-user.")
    var vhostUser = false

    @Option(help: ArgumentHelp("--kind vhost-user: the guest's RAM (QEMU size, e.g. 512M, 2G): printed as -m and the shared backend's size.",
                               valueName: "SIZE"))
    var memory = "1G"

    @Flag(help: "--kind vhost-user: the VM runs without KVM (-accel tcg); adds vectors=0 (QEMU 7.2 crashes setting up MSI-X for vhost-user under TCG).")
    var tcg = false

    @Option(help: ArgumentHelp("The netdev id.", valueName: "ID"))
    var id = "n0"

    @Option(help: ArgumentHelp("--kind tap: the TAP's name (default: vmtap and the MAC's last 3 bytes).", valueName: "NAME"))
    var ifname: String?

    @OptionGroup var vm: VMIdentity
    @OptionGroup var locate: LocateOptions

    func validate() throws {
        if vm.attach && kind == .tap { throw ValidationError("--attach is for dgram and stream (a TAP cannot be passed to QEMU on Linux)") }
        if vm.attach && (kind == .vhostUser || vhostUser) {
            throw ValidationError("--attach is for dgram and stream (QEMU connects to vhost-user.sock itself, and reconnects)")
        }
        if vhostUser && kind != .dgram && kind != .vhostUser { throw ValidationError("--vhost-user and --kind \(kind.rawValue) contradict") }
        let digits = memory.last.map { "MGT".contains($0) } == true ? memory.dropLast() : Substring(memory)
        guard let first = digits.first, first != "0", digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
            throw ValidationError("--memory \"\(memory)\" is not a QEMU size like 512M or 2G")
        }
        if let ifname, let problem = Names.interfaceProblem(ifname) { throw ValidationError(problem) }
    }

    func execute() throws {
        let status = try locate.network(network)
        emit(VMRecipes.qemu(status, kind: vhostUser ? .vhostUser : kind, mac: vm.resolvedMAC(network: network), id: id,
                            attach: vm.attach, ifname: ifname, memory: memory, tcg: tcg, locate: locate.arguments))
    }
}

struct KrunkitArgsCommand: SwitchdCommand {
    static let configuration = CommandConfiguration(
        commandName: "krunkit-args",
        abstract: "Print the krunkit --device option that joins a VM to a network.",
        discussion: """
        Default: vfkit-style unixSocketPath= on dgram.sock (offloading on, VFKT handshake). --kind stream uses \
        stream-offload.sock; --no-offload the plain sockets. The option goes to stdout; notes to stderr.
        """
    )

    @Argument(help: "The network.")
    var network: String

    @Option(help: "unixgram (dgram) or unixstream (stream).")
    var kind: AttachKind = .dgram

    @Flag(inversion: .prefixedNo, help: "Header-less offloading (krunkit offloading=on).")
    var offload = true

    @OptionGroup var vm: VMIdentity
    @OptionGroup var locate: LocateOptions

    func execute() throws {
        let status = try locate.network(network)
        emit(VMRecipes.krunkit(status, kind: kind, offload: offload, mac: vm.resolvedMAC(network: network),
                               attach: vm.attach, locate: locate.arguments))
    }
}
