// Bridge: what happens to a received frame: ingress checks, learning, and the forwarding decision.
//
// Design note. `forward` runs stages in a fixed order (validate, capture tap, port security,
// learn, decide, act), and the decision is a value (`Decision`) computed by a pure function,
// `ForwardingPolicy.decide`, from the destination, the MAC table and the ports' generations. That
// keeps the policy (flood except the ingress port, hairpin, gateway MAC → services → uplink, stale
// generations) testable without sockets (ForwardingDecisionTests), as Snabb's bridge classifies
// into unicast / flood / discard before it acts. The decision allocates nothing.
import Proto

/// What to do with a frame that passed the ingress checks.
enum Decision: Equatable {
    /// Drop it and count `reason` on the ingress port.
    case drop(DropReason)
    /// Drop it without counting: a frame for the gateway of a network with no uplink that the
    /// services did not take (nobody else is the gateway).
    case discard
    /// Offer it to the gateway services first; when they decline, decide again with
    /// `servicesDeclined: true`.
    case services
    /// Send it to this port only.
    case unicast(UInt16)
    /// Send it to every port of the network but the ingress port.
    case flood
}

/// The network's side of the forwarding decision: what it reads besides the frame, the MAC table
/// and the ports.
struct ForwardingPolicy {
    /// The gateway's MAC, whose frames (and multicast) go to the services first; 0 without services.
    var gatewayMAC: UInt64 = 0
    var hasServices = false
    /// The uplink port of a host or shared network (`ForwardingLoop.noUplink` when there is none).
    var uplink: UInt16 = ForwardingLoop.noUplink
    /// On a shard past the first (`switchd run --threads N`): the trunk to shard 0, where the
    /// services and the uplink are; frames to `gatewayMAC` go there. `noUplink` otherwise.
    var remoteGateway: UInt16 = ForwardingLoop.noUplink

    /// Why a frame with this source MAC is refused at ingress, or nil: a multicast or zero source
    /// is never a station, and must not be learned.
    @inline(__always)
    static func refusedSource(_ source: MACAddress) -> DropReason? {
        source.isMulticast || source.isZero ? .badSource : nil
    }

    /// Where a frame to `destination` received on port `ingress` goes. `superFrame`: a GSO frame,
    /// bulk TCP/UDP that is never a service request. `ports` is the loop's port table, read for the
    /// liveness and generation of a learned destination's port.
    @inline(__always)
    func decide(destination: MACAddress, ingress: UInt16, superFrame: Bool, servicesDeclined: Bool,
                table: MACTable, ports: UnsafePointer<PortState>, now: UInt32) -> Decision {
        // The uplink's own frames come from the host's stack, which is the gateway: no service is for them.
        if hasServices && ingress != uplink && (destination.isMulticast || destination.rawValue == gatewayMAC) {
            if !superFrame && !servicesDeclined { return .services }
            if destination.rawValue == gatewayMAC {
                // Isolated: nobody else is the gateway. Host and shared: the host's stack behind the uplink is.
                return uplink != ForwardingLoop.noUplink ? .unicast(uplink) : .discard
            }
        } else if remoteGateway != ForwardingLoop.noUplink && gatewayMAC != 0 && destination.rawValue == gatewayMAC {
            // Shard 0 decides what the gateway's frames become; one that came from there is not ours.
            return ingress == remoteGateway ? .discard : .unicast(remoteGateway)
        }
        if !destination.isMulticast, let (out, generation) = table.lookup(destination, now: now),
           ports[Int(out)].generation == generation, ports[Int(out)].isActive {
            return out == ingress ? .drop(.hairpin) : .unicast(out)
        }
        return .flood
    }
}

extension ForwardingLoop {
    /// Forwards the frame at `offset` of `buffer`, received on port `slot`. The caller keeps its own
    /// reference to the buffer and releases it afterwards.
    @inline(__always)
    func forward(buffer: UInt32, offset: Int, length: Int, header: VirtioNetHeader, from slot: UInt16) {
        let port = ports + Int(slot)
        port.pointee.rxPackets &+= 1
        port.pointee.rxBytes &+= UInt64(length)
        guard length >= 14 else { port.pointee.count(.runt); return }
        let frame = pool.pointer(buffer, offset)
        // A frame from another shard was captured there, at its ingress.
        if captures.count > 0 && port.pointee.kind != .shard { capture(frame, length: length, header: header, from: slot) }
        guard let header = validateOffload(frame: frame, length: length, header: header, port: port) else { return }
        let source = MACAddress(loading: frame + 6)
        if let refused = ForwardingPolicy.refusedSource(source) { port.pointee.count(refused); return }
        let guards = port.pointee.guards
        if source.rawValue != port.pointee.lastSource || now != port.pointee.lastReceive {
            var learned = MACTable.Learned.known
            if guards.contains(.mac) {
                if let refused = admitSource(source, from: slot, learned: &learned) { port.pointee.count(refused); return }
            } else {
                learned = table.learn(source, port: slot, generation: port.pointee.generation, now: now)
            }
            port.pointee.lastSource = source.rawValue
            if shard.isSharded && port.pointee.kind != .shard {
                // The other shards learn it on their trunk to us: when it is new here, and once a
                // second after that so it does not age out there (Shards/ShardTrunks.swift).
                switch learned {
                case .learned, .moved: announceLearned(source)
                case .known: if now != port.pointee.lastReceive { announceLearned(source) }
                case .limitReached, .tableFull: break
                }
            }
        }
        port.pointee.lastReceive = now
        if !guards.isDisjoint(with: PortGuards.headerGuards),
           let refused = admitHeaders(frame: frame, length: length, source: source, from: slot) {
            port.pointee.count(refused)
            return
        }
        let destination = MACAddress(loading: frame)
        let original = Frame(buffer: buffer, offset: offset, length: length, header: header)
        var decision = policy.decide(destination: destination, ingress: slot, superFrame: header.isGSO,
                                     servicesDeclined: false, table: table, ports: ports, now: now)
        if case .services = decision {
            if serve(frame: frame, length: length, from: slot) { return }
            decision = policy.decide(destination: destination, ingress: slot, superFrame: header.isGSO,
                                     servicesDeclined: true, table: table, ports: ports, now: now)
        }
        var variants = EgressVariants()
        defer { release(&variants) }
        switch decision {
        case .drop(let reason): port.pointee.count(reason)
        case .discard, .services: break
        case .unicast(let out):
            if !crossesTunnels(from: slot, to: out) { deliver(original, to: out, unicast: true, variants: &variants) }
        case .flood:
            for i in 0..<portCount {
                let out = portList[i]
                if out != slot && !crossesTunnels(from: slot, to: out) { deliver(original, to: out, unicast: false, variants: &variants) }
            }
        }
    }

    /// The frame's offload metadata, checked: from its headers for a header-less offload peer, as
    /// received otherwise; nil (counted) when it does not fit the frame or the frame is too long.
    @inline(__always)
    private func validateOffload(frame: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader,
                                 port: UnsafeMutablePointer<PortState>) -> VirtioNetHeader? {
        var header = header
        if port.pointee.offloadPeer {
            // Header-less offload (krunkit offloading=on, the offload sockets): work out what the
            // frame needs from its headers; its L4 checksum may be partial (docs/DESIGN.md §2).
            guard let described = Segmentation.describeHeaderless(
                frame: UnsafeMutableRawBufferPointer(start: frame, count: length), mtu: mtu) else {
                port.pointee.count(.badHeader)
                return nil
            }
            header = described
        } else if header.flags & VirtioNetHeader.needsChecksum != 0 || header.isGSO {
            guard header.checksumFieldFits(frameLength: length),
                  !header.isGSO || (header.gsoSize > 0 && Int(header.headerLength) <= length) else {
                port.pointee.count(.badHeader)
                return nil
            }
        }
        guard header.isGSO || length <= (port.pointee.offloadPeer ? Self.maxOffloadFrame : maxFrame) else {
            port.pointee.count(.oversize)
            return nil
        }
        return header
    }

    /// The MAC guard: learns `source` on port `slot` unless it belongs to another live port or the
    /// port is at its `macLimit`; the reason to drop the frame otherwise.
    private func admitSource(_ source: MACAddress, from slot: UInt16, learned: inout MACTable.Learned) -> DropReason? {
        if let (owner, generation) = table.lookup(source, now: now),
           owner != slot, ports[Int(owner)].isActive, ports[Int(owner)].generation == generation {
            return .spoofedMac
        }
        learned = table.learn(source, port: slot, generation: ports[Int(slot)].generation, now: now)
        switch learned {
        case .known, .learned, .moved: return nil
        case .limitReached, .tableFull: return .macLimit
        }
    }

    /// The IP, neighbor, DHCP-server and RA guards of port `slot` (PortSecurity.swift); the reason
    /// to drop the frame, or nil. A source address admitted this second is not looked up again.
    @inline(__always)
    private func admitHeaders(frame: UnsafeMutableRawPointer, length: Int, source: MACAddress,
                              from slot: UInt16) -> DropReason? {
        let port = ports + Int(slot)
        let claims = FrameClaims.read(UnsafeRawBufferPointer(start: frame, count: length))
        if claims.kind != .arp && claims.advertised == nil && claims.probed == nil && !claims.dhcpServer
            && !claims.routerMessage && claims.source == port.pointee.lastAddress && now == port.pointee.lastAddressTime {
            return nil
        }
        var refused = security.admit(claims, sourceMAC: source.rawValue, guards: port.pointee.guards, port: slot, now: now)
        if refused == nil && shard.isSharded {
            refused = admitAcrossShards(claims, guards: port.pointee.guards, from: slot)
        }
        if refused == nil && claims.kind != .other {
            port.pointee.lastAddress = claims.source
            port.pointee.lastAddressTime = now
        }
        return refused
    }

    /// DHCP snooping: an ACK the services send binds the leased address to the client's port.
    func snoopLease(_ frame: UnsafeRawBufferPointer) {
        guard let lease = acknowledgedLease(in: frame) else { return }
        if shard.isSharded, let (owner, _) = table.lookup(lease.client, now: now), ports[Int(owner)].kind == .shard {
            // The client is on another shard: it binds there, before the ACK (behind this on the ring) arrives.
            postShardEvent(ShardMessage(kind: .lease, mac: lease.client.rawValue, address: lease.address.rawValue,
                                        seconds: lease.seconds), to: Int(ports[Int(owner)].peerShard))
            return
        }
        bindLease(client: lease.client, address: lease.address, seconds: lease.seconds)
    }

    /// Binds a leased address to the port its client's MAC is on.
    func bindLease(client: MACAddress, address: IPv4Address, seconds: UInt32) {
        guard let (owner, generation) = table.lookup(client, now: now),
              ports[Int(owner)].isActive, ports[Int(owner)].generation == generation,
              ports[Int(owner)].kind != .shard else { return }
        security.leased(address, to: owner, leaseSeconds: seconds, now: now)
        if shard.isSharded {
            // The server is the authority: another shard's binding of the address ends here at once
            // (bound to our own id, lapsed), and the client's frames announce the new one.
            shard.remoteBindings!.pointee.bind(BoundAddress(address), to: shard.globalID(owner), until: now)
        }
    }

    /// Logs, at most once per ten seconds per port, the frames port security refused since the
    /// last line (on the tick, never per frame).
    func logSecurityDrops() {
        for i in 0..<portCount {
            let slot = portList[i]
            let port = ports + Int(slot)
            // The first report comes at the first tick after a refusal, later ones ten seconds apart.
            guard !port.pointee.guards.isEmpty,
                  port.pointee.loggedSecurityDrops == 0 || now &- port.pointee.lastSecurityLog >= 10 else { continue }
            var total: UInt64 = 0
            for reason in DropReason.security { total &+= port.pointee.dropCount(reason) }
            guard total != port.pointee.loggedSecurityDrops else { continue }
            let counts = DropReason.security.filter { port.pointee.dropCount($0) > 0 }
                .map { "\($0.name) \(port.pointee.dropCount($0))" }.joined(separator: ", ")
            Log.warning("network \(spec.name): port \(infos[Int(slot)]?.id ?? "?"): port security refused "
                        + "\(total &- port.pointee.loggedSecurityDrops) frames since the last report (totals: \(counts))")
            port.pointee.loggedSecurityDrops = total
            port.pointee.lastSecurityLog = now
        }
    }
}
