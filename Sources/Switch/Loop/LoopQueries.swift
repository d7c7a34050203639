// LoopQueries: the loop's answers to control commands: status, fdb, DNS host lookups, attach, idle count.
//
// These run on the loop thread between batches (CommandQueue.swift), once per request; they may
// allocate and format strings, the forwarding path never does.
import Proto

extension ForwardingLoop {
    /// Answers a DNS host-table question from the network's DHCP leases (for the kernel-socket DNS
    /// server of host and shared networks, which runs on its own thread).
    func lookup(_ question: HostQuestion) -> HostAnswer {
        guard let dhcp = services?.dhcp else { return .none }
        switch question {
        case .address(let name): return dhcp.hostAddress(named: name).map(HostAnswer.address) ?? .none
        case .hostname(let address): return dhcp.hostName(for: address).map(HostAnswer.hostname) ?? .none
        }
    }

    /// The status of the network and its ports, built on the loop thread.
    func snapshot() -> NetworkStatus {
        let macs = table.snapshot(now: now)
        var list: [PortStatus] = []
        var crossShard: UInt64 = 0
        for i in 0..<portCount {
            let slot = portList[i]
            let p = ports[Int(slot)]
            if p.kind == .shard {
                // A trunk to another forwarding thread: not a port of the network; its drops are the network's.
                crossShard &+= p.dropCount(.queueFull)
                continue
            }
            guard let info = infos[Int(slot)] else { continue }
            var drops: [String: UInt64] = [:]
            for reason in DropReason.allCases where p.dropCount(reason) > 0 {
                drops[reason.name] = p.dropCount(reason)
            }
            list.append(PortStatus(
                id: info.id, kind: p.kind.name, peer: info.peer,
                macs: macs.filter { $0.port == slot }.map { $0.mac.description },
                offloads: p.kind.hasVnetHeader ? ["csum", "tso4", "tso6", "uso"]
                    : p.takesOffloads ? ["csum", "tso4", "tso6"] : p.offloadPeer ? ["headerless"] : [],
                rx: TrafficCount(packets: p.rxPackets, bytes: p.rxBytes),
                tx: TrafficCount(packets: p.txPackets, bytes: p.txBytes),
                drops: drops, segmented: p.segmented, superFrames: p.superFrames, security: p.guards.names))
        }
        var status = NetworkStatus(name: spec.name, mode: spec.mode.rawValue, subnet: spec.subnet.description,
                                   gateway: spec.gateway.description,
                                   ipv6Prefix: spec.ipv6Prefix.map { "\($0)/64" }, mtu: spec.mtu, uplink: spec.uplink,
                                   sockets: SocketPaths(), ports: list, leases: services?.leaseStatus() ?? [])
        if unaddressable > 0 { status.drops["unaddressable"] = unaddressable }
        if truncated > 0 { status.drops["truncated"] = truncated }
        if portLimit > 0 { status.drops["portLimit"] = portLimit }
        if crossShard > 0 { status.drops["crossShard"] = crossShard }
        if shard.lostEvents > 0 { status.drops["crossShardEvents"] = shard.lostEvents }
        if vxlan.malformed > 0 { status.drops["vxlanMalformed"] = vxlan.malformed }
        if vxlan.wrongVNI > 0 { status.drops["vxlanWrongVni"] = vxlan.wrongVNI }
        if vxlan.unknownVTEP > 0 { status.drops["vxlanUnknownVtep"] = vxlan.unknownVTEP }
        for (name, count) in services?.dhcpDrops ?? [] { status.drops[name] = count }
        if captures.count > 0 { status.captures = captures.count }
        return status
    }

    /// Adds one end of a `switchd attach` socketpair as a port: a stream port, or a dgram port that
    /// reads its own fd (multishot read, one datagram per completion) and sends like a connected
    /// dgram peer. `offload`: a header-less offload peer (as on the offload sockets).
    /// Returns the new port's id, nil when no slot is left (the caller still owns `fd` then).
    func addAttachedPort(kind: AttachKind, fd: Int32, offload: Bool, peer: String) -> String? {
        let id = "\(kind.rawValue)-\(nextPortNumber)"
        nextPortNumber += portNumberStep
        let portKind: PortKind = kind == .stream ? .stream : .dgramConnected
        guard let slot = addPort(kind: portKind, fd: fd, info: PortInfo(id: id, peer: peer)) else { return nil }
        ports[Int(slot)].offloadPeer = offload
        if kind == .stream {
            armStreamReceive(slot)
        } else {
            ports[Int(slot)].headerSize = 0
            armDeviceRead(slot)
        }
        Log.info("network \(spec.name): \(peer) joined as \(id)\(offload ? " (offload)" : "")")
        return id
    }

    /// The learned MACs with the id of their port and their age in seconds.
    func fdb() -> [FDBEntry] {
        table.snapshot(now: now).compactMap { entry in
            guard ports[Int(entry.port)].isActive, ports[Int(entry.port)].kind != .shard,
                  let info = infos[Int(entry.port)] else { return nil }
            return FDBEntry(mac: entry.mac.description, port: info.id, age: Int(entry.age))
        }
    }

    /// Ports of the network, the uplink not counted (what `--exit-when-idle` watches).
    func clientPortCount() -> Int {
        portCount - (policy.uplink == Self.noUplink ? 0 : 1) - (shard.count - 1)
    }
}
