// ShardTrunks: one network over several forwarding threads (`switchd run --threads N`).
//
// Design note (docs/decisions.md "Forwarding threads: shards joined by trunks", docs/DESIGN.md §3).
// A network runs N ForwardingLoops ("shards"), each with its own thread, io_uring, buffer pool,
// port table and MAC table. Shard 0 is the loop as it always was: services, uplink, listening
// sockets, VXLAN, vhost-user, captures. The other shards host ports that read their own fd (TAP,
// link, `switchd attach` dgram), placed round-robin as they are added. The shards are joined as a
// full mesh of switches: on every shard, each other shard is one port of kind `.shard`, a trunk.
// - A frame for a port on shard j is forwarded on the ingress shard to the trunk towards j, like
//   to any port: the whole decision (port security, learning, flood or unicast) runs there, and
//   the trunk's queue is flushed once per batch like the others. Flushing copies each frame into a
//   buffer of shard j's pool that j handed over in advance (`ShardChannel.buffers`, much as the
//   kernel fills io_uring's provided buffers) and publishes it on the SPSC ring; each pool is only
//   ever allocated from and released to by its own thread, and no buffer has to travel back. One
//   copy per crossing frame was chosen over lending the ingress pool's buffer: it keeps every
//   `pool.pointer` of the forwarding path on one pool, and a 64-byte copy costs less than the
//   cache line a return ring would bounce.
// - Shard j takes the frame as received on the trunk: it learns the source on the trunk and
//   decides again in its own table (its local ports, or a local flood). Split horizon: a frame from
//   a trunk never goes out on another trunk, so a flood reaches every shard once and never loops.
// - Tables are replicated by events on the same ring: a port learning a new MAC (or the first
//   frame of a second from its MAC) tells the other shards, which learn it on their trunk towards
//   it; a removed port's MACs are forgotten there. Until an event arrives, a shard floods, which
//   is ordinary L2 behaviour. Events never take the room frames need (`ShardChannel.events`).
// - Frames to the gateway MAC from shard j go to its trunk towards shard 0 (the services and the
//   uplink); multicast floods there too. A DHCP ACK the services send to a client on another
//   shard posts a lease event first, so that shard binds the address to the client's port.
// - Port security across shards: an address a port binds is announced (`bound`) and refused on the
//   other shards' guarded ports (`admitAcrossShards`); a removed port's go with `unbindPort`.
// Per-port order holds: a port's frames are in order in its trunk's queue, the ring and the
// egress queue. Nothing here allocates or locks per frame; a shard that got anything in a batch
// is woken once per batch through its eventfd.
import SwitchSys
import Proto

/// What crosses from one shard to another.
struct ShardMessage {
    enum Kind: UInt8 { case frame, learned, forget, lease, bound, unbindPort }

    var kind: Kind
    /// frame: the buffer of the receiving shard's pool that holds it at `BufferPool.headroom`.
    var buffer: UInt32 = 0
    var length: UInt32 = 0
    var header: VirtioNetHeader = .none
    /// learned, forget: the MAC; lease: the client's MAC.
    var mac: UInt64 = 0
    /// lease: the IPv4 address and the lease's seconds.
    var address: UInt32 = 0
    var seconds: UInt32 = 0
    /// bound: the address (`BoundAddress`: `mac` is its high half, `low` the low one) and the
    /// sender's port slot; unbindPort: the slot.
    var low: UInt64 = 0
    var port: UInt16 = 0
}

/// The one-way link from one shard to another: the messages, and the receiving shard's free buffers.
struct ShardChannel {
    /// Buffers of the receiving shard's pool lent to the sender at a time (and frames in flight).
    static let frames = 512
    /// Room kept in the message ring for table events beyond the frames.
    static let events = 512

    let messages: ShardRing<ShardMessage>
    /// Buffers of the receiving shard's pool, allocated there and handed to the sender to copy
    /// frames into; they come back in `.frame` messages.
    let buffers: ShardRing<UInt32>
    /// The receiving shard's pool memory and wake-up eventfd.
    let peerBase: UnsafeMutableRawPointer
    let wakeFD: Int32

    init(to peer: ForwardingLoop) {
        messages = ShardRing(capacity: Self.frames + Self.events, empty: ShardMessage(kind: .frame))
        buffers = ShardRing(capacity: Self.frames, empty: 0)
        peerBase = peer.pool.base
        wakeFD = peer.shardWakeFD
    }

    func deallocate() {
        messages.deallocate()
        buffers.deallocate()
    }
}

/// A loop's place among the shards of its network.
struct ShardState {
    var index = 0
    var count = 1
    /// Channels to and from shard j, at index j (nil at the loop's own index).
    var outgoing: UnsafeMutablePointer<ShardChannel?>? = nil
    var incoming: UnsafeMutablePointer<ShardChannel?>? = nil
    /// The trunk port towards shard j, at index j.
    var trunks: UnsafeMutablePointer<UInt16>? = nil
    /// Buffers lent to shard j's sender through `incoming[j].buffers` and not yet back.
    var lent: UnsafeMutablePointer<Int>? = nil
    /// Shards to wake at the end of the batch (bit j).
    var wake: UInt32 = 0
    /// Table and lease events lost to a full ring.
    var lostEvents: UInt64 = 0
    /// Addresses ports of the other shards are bound to, by the global id of their port
    /// (`globalID`): a guarded port here may not use them (port security across shards).
    var remoteBindings: UnsafeMutablePointer<AddressBindings>? = nil

    /// A port's id across the shards: shard index × 4096 + slot.
    @inline(__always)
    func globalID(_ slot: UInt16, shard k: Int? = nil) -> UInt16 {
        UInt16(truncatingIfNeeded: (k ?? index) &* ForwardingLoop.maxPorts &+ Int(slot))
    }

    var isSharded: Bool { count > 1 }

    mutating func allocate(index: Int, count: Int) {
        self.index = index
        self.count = count
        outgoing = .allocate(capacity: count)
        outgoing!.initialize(repeating: nil, count: count)
        incoming = .allocate(capacity: count)
        incoming!.initialize(repeating: nil, count: count)
        trunks = .allocate(capacity: count)
        trunks!.initialize(repeating: ForwardingLoop.noUplink, count: count)
        lent = .allocate(capacity: count)
        lent!.initialize(repeating: 0, count: count)
        remoteBindings = .allocate(capacity: 1)
        remoteBindings!.initialize(to: AddressBindings(maxPorts: 1 << 16))
    }

    func deallocate() {
        outgoing?.deallocate()
        incoming?.deallocate()
        trunks?.deallocate()
        lent?.deallocate()
        remoteBindings?.pointee.deallocate()
        remoteBindings?.deallocate()
    }
}

extension ForwardingLoop {
    /// The most forwarding threads one network may have (`switchd run --threads`).
    /// (At most 8, so a port's id across shards, shard × 4096 + slot, stays below
    /// `AddressBindings.gateway`.)
    static let maxShards = 8

    /// Joins the loops of one network into shards (before any port is added and any thread runs):
    /// a channel each way between every two, and a trunk port per peer on each. Returns the
    /// channels, which the caller frees after every loop has stopped.
    static func joinShards(_ loops: [ForwardingLoop]) -> [ShardChannel] {
        let n = loops.count
        precondition(n >= 1 && n <= maxShards)
        guard n > 1 else { return [] }
        var channels: [ShardChannel] = []
        for (i, loop) in loops.enumerated() {
            loop.shard.allocate(index: i, count: n)
            loop.nextPortNumber = i + 1
            loop.portNumberStep = n
        }
        for i in 0..<n {
            for j in 0..<n where i != j {
                let channel = ShardChannel(to: loops[j])
                loops[i].shard.outgoing![j] = channel
                loops[j].shard.incoming![i] = channel
                channels.append(channel)
            }
        }
        for (i, loop) in loops.enumerated() {
            for j in 0..<n where i != j {
                // Trunks are the first ports, so they hold slots 0..<n-1 (the MAC table's
                // per-port limit does not apply to them: every station of the other shards is there).
                guard let slot = loop.addPort(kind: .shard, fd: -1, info: PortInfo(id: "", peer: "thread \(j)")) else { continue }
                loop.ports[Int(slot)].guards = []
                loop.ports[Int(slot)].takesOffloads = true  // frames cross as received, offload metadata and all
                loop.ports[Int(slot)].peerShard = Int32(j)
                loop.shard.trunks![j] = slot
            }
            loop.table.unlimitedBelow = n - 1
            if i > 0 {
                // Frames to the gateway MAC go to shard 0, where the services and the uplink are.
                loop.policy.gatewayMAC = loops[0].policy.gatewayMAC
                loop.policy.remoteGateway = loop.shard.trunks![0]
            }
            loop.pool.setLimit(loop.pool.limit + (n - 1) * ShardChannel.frames)
            loop.lendBuffers()
        }
        return channels
    }

    // MARK: - Sending (the ingress shard)

    /// Hands the queued frames of trunk `port` to its shard: each copied into a buffer that shard
    /// lent, then published on the ring. No buffer lent (the peer is behind by `ShardChannel.frames`
    /// frames): the frame is dropped and counted as `queueFull` on the trunk.
    func submitShardSends(_ port: UnsafeMutablePointer<PortState>) {
        let peer = Int(port.pointee.peerShard)
        guard let channel = shard.outgoing?[peer] else { return }
        while port.pointee.queueCount > 0 {
            let entry = port.pointee.queue! + port.pointee.queueIndex(0)
            guard let target = channel.buffers.pop() else {
                port.pointee.count(.queueFull)
                popHead(port, sent: false)
                continue
            }
            let length = Int(entry.pointee.length)
            (channel.peerBase + Int(target) * BufferPool.slotSize + BufferPool.headroom)
                .copyMemory(from: pool.pointer(entry.pointee.buffer, Int(entry.pointee.offset)), byteCount: length)
            // Always room: at most `frames` buffers are lent, and events leave that much free.
            if !channel.messages.push(ShardMessage(kind: .frame, buffer: target, length: UInt32(length),
                                                   header: entry.pointee.header)) {
                port.pointee.count(.queueFull)
            }
            popHead(port, sent: true)
        }
        shard.wake |= 1 << UInt32(peer)
    }

    /// Posts a table or lease event to shard `peer`; counted and lost when its ring has no room
    /// beyond what lent buffers may need.
    func postShardEvent(_ message: ShardMessage, to peer: Int) {
        guard let channel = shard.outgoing?[peer] else { return }
        guard channel.messages.space > ShardChannel.frames, channel.messages.push(message) else {
            shard.lostEvents &+= 1
            return
        }
        shard.wake |= 1 << UInt32(peer)
    }

    /// A local port learned (or refreshed, once a second) `mac`: tells every other shard.
    @inline(__always)
    func announceLearned(_ mac: MACAddress) {
        for j in 0..<shard.count where j != shard.index {
            postShardEvent(ShardMessage(kind: .learned, mac: mac.rawValue), to: j)
        }
    }

    /// Port `slot` is going: the other shards forget the MACs it had (they point at their trunk to us).
    func announceForgotten(port slot: UInt16) {
        guard shard.isSharded, ports[Int(slot)].kind != .shard else { return }
        for j in 0..<shard.count where j != shard.index {
            postShardEvent(ShardMessage(kind: .unbindPort, port: slot), to: j)
        }
        for entry in table.snapshot(now: now) where entry.port == slot {
            for j in 0..<shard.count where j != shard.index {
                postShardEvent(ShardMessage(kind: .forget, mac: entry.mac.rawValue), to: j)
            }
        }
    }

    /// Port security across shards (PortSecurity.swift, which the local shard already applied): an
    /// address a port of another shard is bound to is refused as a source (`spoofedIp`, IP guard),
    /// ARP sender (`spoofedArp`) or advertised target (`spoofedNd`, both the neighbor guard); an
    /// address bound here is announced to the others (at most once a second per port and address
    /// for a flow: `admitHeaders` caches the last one).
    func admitAcrossShards(_ claims: FrameClaims, guards: PortGuards, from slot: UInt16) -> DropReason? {
        guard ports[Int(slot)].kind != .shard else { return nil }
        switch claims.kind {
        case .other: return nil
        case .arp:
            guard guards.contains(.neighbor) else { return nil }
            return claimAcrossShards(claims.source, from: slot, refuse: .spoofedArp)
        case .ipv4, .ipv6:
            if guards.contains(.neighbor), let target = claims.advertised,
               let refused = claimAcrossShards(target, from: slot, refuse: .spoofedNd) { return refused }
            guard guards.contains(.ip) else { return nil }
            return claimAcrossShards(claims.source, from: slot, refuse: .spoofedIp)
        }
    }

    private func claimAcrossShards(_ address: BoundAddress, from slot: UInt16, refuse reason: DropReason) -> DropReason? {
        // Unspecified (DHCP, DAD) and 0.0.0.0 (ARP probes) bind nothing.
        guard !address.isUnspecified, address.low != 0xFFFF_0000_0000 else { return nil }
        if let owner = shard.remoteBindings!.pointee.owner(of: address, now: now), owner != shard.globalID(slot) {
            return reason
        }
        guard security.bindings.owner(of: address, now: now) == slot else { return nil }
        for j in 0..<shard.count where j != shard.index {
            postShardEvent(ShardMessage(kind: .bound, mac: address.high, low: address.low, port: slot), to: j)
        }
        return nil
    }

    /// Wakes the shards that got messages in this batch, once each.
    func wakeShards() {
        var bits = shard.wake
        shard.wake = 0
        while bits != 0 {
            let j = bits.trailingZeroBitCount
            bits &= bits - 1
            if let channel = shard.outgoing?[j] { EventFD.signal(channel.wakeFD) }
        }
    }

    // MARK: - Receiving (the egress shard)

    /// Once per turn: takes what the other shards sent (as many messages as were there when it
    /// looked, so a busy peer cannot hold the loop), then lends them buffers again.
    func drainShards() {
        for k in 0..<shard.count where k != shard.index {
            guard let channel = shard.incoming?[k] else { continue }
            let trunk = shard.trunks![k]
            var n = channel.messages.count
            while n > 0, let message = channel.messages.pop() {
                n -= 1
                switch message.kind {
                case .frame:
                    shard.lent![k] -= 1
                    forward(buffer: message.buffer, offset: BufferPool.headroom, length: Int(message.length),
                            header: message.header, from: trunk)
                    pool.release(message.buffer)
                case .learned:
                    _ = table.learn(MACAddress(rawValue: message.mac), port: trunk,
                                    generation: ports[Int(trunk)].generation, now: now)
                case .forget:
                    let mac = MACAddress(rawValue: message.mac)
                    if table.lookup(mac, now: now)?.port == trunk { table.forget(mac) }
                case .bound:
                    shard.remoteBindings!.pointee.bind(BoundAddress(high: message.mac, low: message.low),
                                                       to: shard.globalID(message.port, shard: k),
                                                       until: now &+ security.ageing)
                case .unbindPort:
                    shard.remoteBindings!.pointee.flush(port: shard.globalID(message.port, shard: k))
                case .lease:
                    bindLease(client: MACAddress(rawValue: message.mac), address: IPv4Address(rawValue: message.address),
                              seconds: message.seconds)
                }
            }
        }
        lendBuffers()
    }

    /// Tops up, for every other shard, the buffers it may copy frames into.
    func lendBuffers() {
        for k in 0..<shard.count where k != shard.index {
            guard let channel = shard.incoming?[k] else { continue }
            while shard.lent![k] < ShardChannel.frames, let buffer = pool.allocate() {
                guard channel.buffers.push(buffer) else { pool.release(buffer); break }
                shard.lent![k] += 1
            }
        }
    }

    /// The shard wake-up eventfd was read: arm the next read (the rings are drained every turn).
    func shardWoken() {
        if running { armShardWake() }
    }

    func armShardWake() {
        ring.prepareRead(fd: shardWakeFD, into: shardWakeValue, length: 8, token: Token(.eventRead, aux: 1))
    }
}
