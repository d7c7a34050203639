// Port: the per-port state the forwarding loop owns: kind, fd, counters and a bounded send queue.
//
// Ports live in one preallocated table indexed by slot; a generation counter per slot makes
// completions and MAC entries of a removed port stale. Everything here is plain data: no class,
// no string, no existential, so touching a port per frame costs no reference counting. Names and
// paths for `status` sit in a side table the loop reads only on control requests.
import Glibc
import Proto
import SwitchSys

/// What kind of peer a port talks to; decides how frames are received and sent.
enum PortKind: UInt8 {
    /// A TAP device: virtio-net header + frame per read/write.
    case tap
    /// An existing interface through AF_PACKET with PACKET_VNET_HDR: the same framing as a TAP.
    case link
    /// A sender on the network's dgram.sock, answered through its own connected socket.
    case dgramPeer
    /// A sender on dgram.sock that only accepts datagrams from dgram.sock (it connected to it,
    /// or sent VFKT): answered with sendmsg on dgram.sock itself, one datagram in flight.
    case dgramShared
    /// An accepted connection on stream.sock: 4-byte length + frame.
    case stream
    /// A connected datagram socket of its own (a `switchd attach` socketpair end): receives with a
    /// multishot read of its fd like a TAP (no header), sends like `dgramPeer`.
    case dgramConnected
    /// A QEMU vhost-user connection on vhost-user.sock: frames move through virtqueues in the
    /// guest's memory (VhostUser/, Ports/VhostUserPort.swift), not through the socket.
    case vhostUser
    /// A remote VTEP of the network's VXLAN tunnel: frames go out through the shared VXLAN send
    /// socket encapsulated to its address, and come in through the VXLAN socket (Ports/VXLANPort.swift).
    case vxlan
    /// A trunk to another forwarding thread of the same network (`switchd run --threads N`): frames
    /// go through the shards' SPSC rings (Shards/ShardTrunks.swift). Not listed in `status`.
    case shard

    /// Frames carry a virtio-net header (TAP and AF_PACKET ports).
    var hasVnetHeader: Bool { self == .tap || self == .link }

    var name: String {
        switch self {
        case .tap: "tap"
        case .link: "link"
        case .dgramPeer, .dgramShared, .dgramConnected: "dgram"
        case .stream: "stream"
        case .vhostUser: "vhost-user"
        case .vxlan: "vxlan"
        case .shard: "shard"
        }
    }

    /// The port's own fd is read with a multishot read into the buffer ring (`headerSize` bytes of
    /// virtio-net header before each frame: 0 for `dgramConnected`).
    var readsOwnFD: Bool { self == .tap || self == .link || self == .dgramConnected }
}

/// Why a frame was dropped; the counters behind `drops` in `status`.
enum DropReason: Int, CaseIterable {
    /// The egress port's send queue was full.
    case queueFull
    /// Source MAC multicast or zero (ingress).
    case badSource
    /// Shorter than an Ethernet header, or longer than the MTU allows (ingress).
    case oversize
    case runt
    /// Destination learned on the port the frame came from.
    case hairpin
    /// No free frame buffer.
    case noBuffer
    /// The send failed (ENOBUFS, EMSGSIZE, or cancelled with the peer going away).
    case sendError
    /// Offload metadata that does not fit the frame (checksum offsets outside it, say).
    case badHeader
    // Port security (PortSecurity.swift), counted on the port that sent the frame.
    /// A source MAC learned on another live port.
    case spoofedMac
    /// A new source MAC past the port's `macLimit` (or a full table) on a port with the MAC guard.
    case macLimit
    /// An IPv4/IPv6 source outside the network, or bound to another port or the gateway.
    case spoofedIp
    /// An ARP sender address bound elsewhere, or a sender MAC that is not the frame's source.
    case spoofedArp
    /// A neighbor advertisement for an address bound to another port or the gateway.
    case spoofedNd
    /// A DHCP server message (UDP from port 67, or DHCPv6 from 547) from a guest.
    case rogueDhcp
    /// A router advertisement or redirect from a guest.
    case rogueRa
    /// The port's receive share of a loop turn ran out (ReceiveShares): its read paused until the
    /// next turn. Counted once per pause; the frames wait in the port's own kernel queue.
    case rxBudget

    var name: String { "\(self)" }

    /// The reasons port security counts (logged together, `ForwardingLoop.logSecurityDrops`).
    static let security: [DropReason] = [.spoofedMac, .macLimit, .spoofedIp, .spoofedArp, .spoofedNd, .rogueDhcp, .rogueRa]
}

/// A frame in a pool buffer with its offload metadata: what the forwarding path passes around.
struct Frame {
    var buffer: UInt32
    var offset: Int
    var length: Int
    var header: VirtioNetHeader
}

/// One frame waiting in a send queue.
struct TxEntry {
    var buffer: UInt32
    var offset: UInt32
    var length: UInt32
    var header: VirtioNetHeader
    /// The virtio-net header (TAP) or length prefix (stream) written for this send.
    var prefix: (UInt64, UInt64) = (0, 0)
    var iov: (iovec, iovec) = (iovec(), iovec())
    var message = msghdr()
}

/// State of one port slot.
struct PortState {
    enum Phase: UInt8 { case free, active, closing }

    var phase: Phase = .free
    var kind: PortKind = .tap
    var generation: UInt16 = 0
    /// The fd this port reads and/or writes (-1: none of its own, e.g. a shared dgram peer).
    var fd: Int32 = -1
    /// Bytes of virtio-net header before each frame (TAP 12; AF_PACKET 12, or 10 on older kernels).
    var headerSize: Int32 = 12

    /// A header-less offload peer (VFKT, or joined through an offload socket): its frames may be
    /// super-frames with partial checksums, and it takes super-frames with complete checksums.
    var offloadPeer = false
    /// Joined through dgram-offload.sock / stream-offload.sock (else dgram.sock / stream.sock).
    var viaOffloadSocket = false
    /// Takes frames as received, virtio-net header and all (super-frames, partial checksums): TAP and
    /// link ports, and a vhost-user guest that negotiated GUEST_CSUM and GUEST_TSO4/6.
    var takesOffloads = false

    // Counters.
    /// Super-frames cut in software for this port, and super-frames sent to it whole.
    var segmented: UInt64 = 0
    var superFrames: UInt64 = 0
    var rxPackets: UInt64 = 0
    var rxBytes: UInt64 = 0
    var txPackets: UInt64 = 0
    var txBytes: UInt64 = 0
    /// One counter per `DropReason` (room for 16).
    var drops: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    // Send queue: a ring of `queueCapacity` entries; the first `inFlight` from `queueHead` are submitted.
    var queue: UnsafeMutablePointer<TxEntry>? = nil
    var queueCapacity: Int32 = 0
    var queueHead: Int32 = 0
    var queueCount: Int32 = 0
    var inFlight: Int32 = 0
    /// Stream: bytes of the head entry (prefix included) already written.
    var partial: Int32 = 0
    var dirty = false
    /// A shared dgram peer's send hit EAGAIN: retry on the short timer.
    var retryPending = false
    /// A send of the chain in flight stopped it (EAGAIN or an error): the rest stay queued.
    var chainStopped = false
    /// A send of the chain in flight found the peer full (EAGAIN): wait for POLLOUT.
    var peerFull = false
    /// A POLLOUT is armed on `fd`: sends resume when the peer has room.
    var waitingWritable = false

    // Receive side.
    var receivePending = false
    /// Stream reassembly buffer (2 × max frame) and how much of it is filled.
    var streamBuffer: UnsafeMutableRawPointer? = nil
    var streamFill: Int32 = 0
    /// Stream: the iovec array and message header of the one sendmsg in flight.
    var streamIOV: UnsafeMutablePointer<iovec>? = nil
    var streamMessage: UnsafeMutablePointer<msghdr>? = nil

    /// vhost-user: the connection's device (control state, guest memory, virtqueues), the kick
    /// reads in flight (`VhostUserPort.swift`).
    var vhost: UnsafeMutablePointer<VhostUserPortState>? = nil
    /// vxlan ports: the index of the remote VTEP in the loop's `VXLANTunnel`.
    var vxlanRemote: Int32 = -1
    /// shard ports: the index of the shard the trunk leads to.
    var peerShard: Int32 = -1

    /// dgram peers: the peer's address (replies and probes).
    var address: UnsafeMutablePointer<UnixAddress>? = nil
    /// Loop time (seconds) of the last frame received, for probes.
    var lastReceive: UInt32 = 0

    /// The last source MAC learned here, to skip the table on repeats (netmap VALE does the same).
    var lastSource: UInt64 = UInt64.max

    // Port security.
    /// The guards that are on (none for the uplink; `PortGuards`).
    var guards = PortGuards()
    /// The last IP source address admitted (IPv4 as ::ffff:a.b.c.d) and the second it was, so a flow
    /// costs one binding look-up per second.
    var lastAddress = BoundAddress(high: 0, low: 0)
    var lastAddressTime: UInt32 = UInt32.max
    /// Security drops already logged, and when (rate-limited log lines, `ForwardingLoop.logSecurityDrops`).
    var loggedSecurityDrops: UInt64 = 0
    var lastSecurityLog: UInt32 = 0

    var isActive: Bool { phase == .active }

    @inline(__always)
    mutating func count(_ reason: DropReason, _ n: UInt64 = 1) {
        withUnsafeMutableBytes(of: &drops) { raw in
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
            p[reason.rawValue] &+= n
        }
    }

    func dropCount(_ reason: DropReason) -> UInt64 {
        withUnsafeBytes(of: drops) { $0.load(fromByteOffset: reason.rawValue * 8, as: UInt64.self) }
    }

    /// Index in `queue` of the `i`-th entry from the head.
    @inline(__always)
    func queueIndex(_ i: Int32) -> Int { Int((queueHead + i) % queueCapacity) }
}

/// Names and paths of a port, for `status` (never read on the forwarding path).
struct PortInfo {
    var id: String
    var peer: String
    /// A TAP's interface name and namespace.
    var interface: String? = nil
    var netns: String? = nil
    /// A link port's interface had IPv6 on: turn it back on when the port goes.
    var restoreIPv6 = false
    /// A link port's interface's `arp_ignore` before switchd set it to 8 (nil: unchanged).
    var restoreARPIgnore: String? = nil
    /// The uplink of a host or shared network: frames to the gateway MAC that no service takes go
    /// here; its own frames skip the services; it cannot be removed by request.
    var isUplink = false
    /// Port security for this port; nil: the network's default for its kind (`PortGuards.defaults`).
    var security: PortSecuritySpec? = nil
}
