// VXLANTunnel: what the forwarding loop keeps of its network's VXLAN tunnel: the encapsulation, the
// sockets, the remote VTEPs (address → port, and the sockaddr each send names) and the drop counters.
//
// Design note. Remote VTEPs are few and fixed by the config, so a received datagram's sender is
// found by a linear scan of a small preallocated array (no hashing, no allocation); each remote is
// one `vxlan` port, which gives MAC learning per VTEP, ageing and counters from the existing port
// and MAC table machinery, and makes flooding to every VTEP port head-end replication (RFC 7348
// §4.2 leaves BUM delivery to the implementation; Linux's vxlan does the same with all-zero FDB
// entries). Everything here is plain data owned by the loop thread.
import Glibc
import Proto
import SwitchSys

/// One remote VTEP.
struct VXLANRemote {
    /// Its address as a lookup key (IPv4 as ::ffff:a.b.c.d).
    var key: BoundAddress
    /// The socket address sends name (sockaddr_in or sockaddr_in6; port 0: a raw socket ignores it
    /// over IPv4 and takes 0 over IPv6, and the UDP header switchd writes carries the port).
    var name = sockaddr_in6()
    var nameLength: socklen_t = 0
    /// Its port, and the port's generation when it was made (a removed port's remote is unknown).
    var slot: UInt16 = 0
    var generation: UInt16 = 0
    var hasPort = false
}

/// A network's VXLAN tunnel as the loop sees it; `isEnabled` false for networks without one.
struct VXLANTunnel {
    let isEnabled: Bool
    let encapsulation: VXLANEncapsulation
    let sockets: VXLANSocketPair
    let remotes: UnsafeMutablePointer<VXLANRemote>
    let remoteCount: Int
    /// The multishot recvmsg on the receive socket (shared buffer ring, as dgram.sock's).
    let receive: UnsafeMutablePointer<DgramReceive>
    /// The receive ended for want of buffers: re-arm it once the shared ring is refilled.
    var starved = false

    // Drops before a frame belongs to a port (status `drops`, docs/status-json.md).
    /// Shorter than VXLAN + Ethernet headers, I flag clear, or truncated (`vxlanMalformed`).
    var malformed: UInt64 = 0
    /// Another VNI (`vxlanWrongVni`).
    var wrongVNI: UInt64 = 0
    /// From an address that is not a configured remote (`vxlanUnknownVtep`).
    var unknownVTEP: UInt64 = 0

    /// No tunnel.
    init() {
        isEnabled = false
        encapsulation = VXLANEncapsulation(vni: 0)
        sockets = VXLANSocketPair(receive: -1, send: -1, writesUDPHeader: false)
        remotes = .allocate(capacity: 1)
        remoteCount = 0
        receive = .allocate(capacity: 1)
        receive.initialize(to: DgramReceive())
    }

    /// The tunnel of `spec` over the sockets the control thread opened.
    init(spec: VXLANSpec, sockets: VXLANSocketPair) {
        isEnabled = true
        encapsulation = VXLANEncapsulation(vni: spec.vni, port: spec.port)
        self.sockets = sockets
        remoteCount = spec.remotes.count
        remotes = .allocate(capacity: max(1, remoteCount))
        for (i, address) in spec.remotes.enumerated() {
            var remote = VXLANRemote(key: Self.key(address))
            // Over IPv4 the kernel UDP socket (no raw socket) needs the port; the raw socket ignores it.
            let port = sockets.writesUDPHeader ? 0 : spec.port
            InetSocketAddress(address, port: port).withSockaddr { sa, length in
                withUnsafeMutableBytes(of: &remote.name) { $0.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(length))) }
                remote.nameLength = length
            }
            (remotes + i).initialize(to: remote)
        }
        receive = .allocate(capacity: 1)
        receive.initialize(to: DgramReceive())
    }

    func deallocate() {
        remotes.deallocate()
        receive.deallocate()
    }

    /// The lookup key of an address.
    static func key(_ address: IPAddress) -> BoundAddress {
        switch address {
        case .v4(let a): BoundAddress(a)
        case .v6(let a): BoundAddress(a)
        }
    }

    /// The remote whose address is the sender `name` (sockaddr_in or sockaddr_in6) names, if any.
    @inline(__always)
    func remote(sender name: UnsafeRawPointer, length: Int) -> UnsafeMutablePointer<VXLANRemote>? {
        guard length >= MemoryLayout<sockaddr_in>.size else { return nil }
        let key: BoundAddress
        switch Int32(name.load(as: sa_family_t.self)) {
        case AF_INET:
            // sin_addr at offset 4, network byte order.
            key = BoundAddress(IPv4Address(loading: name + 4))
        case AF_INET6:
            guard length >= MemoryLayout<sockaddr_in6>.size else { return nil }
            key = BoundAddress(IPv6Address(loading: name + 8))  // sin6_addr at offset 8
        default:
            return nil
        }
        for i in 0..<remoteCount where remotes[i].key == key { return remotes + i }
        return nil
    }
}
