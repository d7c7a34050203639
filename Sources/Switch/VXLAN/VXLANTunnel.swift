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
    /// The socket address sends name (sockaddr_in or sockaddr_in6, with the tunnel's port).
    var name = sockaddr_in6()
    var nameLength: socklen_t = 0
    /// Its port, and the port's generation when it was made (a removed port's remote is unknown).
    var slot: UInt16 = 0
    var generation: UInt16 = 0
    var hasPort = false
    /// The send chain in flight: per sendmsg its header, control message (UDP_SEGMENT) and iovecs
    /// (VXLAN header, frame, VXLAN header, frame, ...), and how many queued frames it carries.
    var messages: UnsafeMutablePointer<msghdr>? = nil
    var controls: UnsafeMutableRawPointer? = nil
    var iovecs: UnsafeMutablePointer<iovec>? = nil
    var frameCounts: UnsafeMutablePointer<Int32>? = nil
    /// The chain's next completion (they arrive in order).
    var nextCompletion: Int32 = 0
}

/// A network's VXLAN tunnel as the loop sees it; `isEnabled` false for networks without one.
struct VXLANTunnel {
    let isEnabled: Bool
    let encapsulation: VXLANEncapsulation
    let sockets: VXLANSocketPair
    /// `sockets.send`, where the forwarding path reads them without touching an array.
    let sendFDs: UnsafeMutablePointer<Int32>
    let sendCount: Int
    /// The VXLAN header every datagram starts with (one network, one VNI).
    let header: UnsafeMutableRawPointer
    /// UDP GSO (UDP_SEGMENT) for runs of equal-size segments; off once the kernel refused it.
    var gso = true
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
        sockets = VXLANSocketPair(receive: -1, send: [])
        sendFDs = .allocate(capacity: 1)
        sendCount = 0
        header = .allocate(byteCount: 8, alignment: 8)
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
        sendCount = sockets.send.count
        sendFDs = .allocate(capacity: max(1, sendCount))
        for (i, fd) in sockets.send.enumerated() { sendFDs[i] = fd }
        header = .allocate(byteCount: 8, alignment: 8)
        encapsulation.emitHeader(into: header)
        remoteCount = spec.remotes.count
        remotes = .allocate(capacity: max(1, remoteCount))
        for (i, address) in spec.remotes.enumerated() {
            var remote = VXLANRemote(key: Self.key(address))
            remote.messages = .allocate(capacity: Int(Self.chainMessages))
            remote.controls = .allocate(byteCount: Int(Self.chainMessages) * Self.controlSpace, alignment: 8)
            remote.iovecs = .allocate(capacity: 2 * Int(Self.chainFrames))
            remote.frameCounts = .allocate(capacity: Int(Self.chainMessages))
            InetSocketAddress(address, port: spec.port).withSockaddr { sa, length in
                withUnsafeMutableBytes(of: &remote.name) { $0.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(length))) }
                remote.nameLength = length
            }
            (remotes + i).initialize(to: remote)
        }
        receive = .allocate(capacity: 1)
        receive.initialize(to: DgramReceive())
    }

    /// Sendmsgs per chain, and queued frames per chain.
    static let chainMessages: Int32 = 64
    static let chainFrames: Int32 = 256
    /// Segments per GSO send: the kernel's UDP_MAX_SEGMENTS (64 before Linux 6.5), and the most
    /// UDP payload one datagram may carry before it is cut.
    static let maxSegments = 64
    static let maxGSOPayload = 65_000
    /// CMSG_SPACE(sizeof(u16)): a cmsghdr (16 bytes) and the gso size, padded to 8.
    static let controlSpace = 24

    func deallocate() {
        for i in 0..<remoteCount {
            remotes[i].messages?.deallocate()
            remotes[i].controls?.deallocate()
            remotes[i].iovecs?.deallocate()
            remotes[i].frameCounts?.deallocate()
        }
        sendFDs.deallocate()
        header.deallocate()
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
