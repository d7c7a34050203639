// VhostUserMessage: the vhost-user control-socket wire format (QEMU docs/interop/vhost-user.rst).
//
// A message is a 12-byte header {request u32, flags u32, size u32} and `size` bytes of payload, all
// in the machine's byte order ("All numbers are in the machine native byte order"). Flags: version
// in bits 0–1 (1), REPLY in bit 2 (set on every backend reply), NEED_REPLY in bit 3 (REPLY_ACK).

/// The numbers of the vhost-user frontend requests switchd knows (vhost-user.rst "Front-end message types").
struct VhostUserRequest: RawRepresentable, Hashable, CustomStringConvertible {
    var rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    static let getFeatures = Self(rawValue: 1)
    static let setFeatures = Self(rawValue: 2)
    static let setOwner = Self(rawValue: 3)
    static let resetOwner = Self(rawValue: 4)
    static let setMemTable = Self(rawValue: 5)
    static let setLogBase = Self(rawValue: 6)
    static let setLogFD = Self(rawValue: 7)
    static let setVringNum = Self(rawValue: 8)
    static let setVringAddr = Self(rawValue: 9)
    static let setVringBase = Self(rawValue: 10)
    static let getVringBase = Self(rawValue: 11)
    static let setVringKick = Self(rawValue: 12)
    static let setVringCall = Self(rawValue: 13)
    static let setVringErr = Self(rawValue: 14)
    static let getProtocolFeatures = Self(rawValue: 15)
    static let setProtocolFeatures = Self(rawValue: 16)
    static let getQueueNum = Self(rawValue: 17)
    static let setVringEnable = Self(rawValue: 18)
    static let sendRARP = Self(rawValue: 19)
    static let netSetMTU = Self(rawValue: 20)

    private static let names: [UInt32: String] = [
        1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER", 5: "SET_MEM_TABLE",
        6: "SET_LOG_BASE", 7: "SET_LOG_FD", 8: "SET_VRING_NUM", 9: "SET_VRING_ADDR", 10: "SET_VRING_BASE",
        11: "GET_VRING_BASE", 12: "SET_VRING_KICK", 13: "SET_VRING_CALL", 14: "SET_VRING_ERR",
        15: "GET_PROTOCOL_FEATURES", 16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM", 18: "SET_VRING_ENABLE",
        19: "SEND_RARP", 20: "NET_SET_MTU", 21: "SET_SLAVE_REQ_FD", 22: "IOTLB_MSG", 23: "SET_VRING_ENDIAN",
        24: "GET_CONFIG", 25: "SET_CONFIG", 26: "CREATE_CRYPTO_SESSION", 27: "CLOSE_CRYPTO_SESSION",
        28: "POSTCOPY_ADVISE", 29: "POSTCOPY_LISTEN", 30: "POSTCOPY_END", 31: "GET_INFLIGHT_FD",
        32: "SET_INFLIGHT_FD", 33: "GPU_SET_SOCKET", 34: "RESET_DEVICE", 35: "VRING_KICK",
        36: "GET_MAX_MEM_SLOTS", 37: "ADD_MEM_REG", 38: "REM_MEM_REG", 39: "SET_STATUS", 40: "GET_STATUS",
    ]

    /// "SET_VRING_NUM (8)", or "request 99" for numbers the spec text here does not name.
    var description: String {
        Self.names[rawValue].map { "\($0) (\(rawValue))" } ?? "request \(rawValue)"
    }
}

/// The 12-byte message header.
struct VhostUserHeader: Equatable {
    static let size = 12
    /// The protocol version in the low two flag bits.
    static let version: UInt32 = 0x1
    static let versionMask: UInt32 = 0x3
    static let replyFlag: UInt32 = 1 << 2
    static let needReplyFlag: UInt32 = 1 << 3
    /// The longest payload accepted. The largest message switchd handles is SET_MEM_TABLE
    /// (8 + 8 × 32 bytes); config-space messages carry up to 256 bytes more. Longer is malformed.
    static let maxPayload = 4096

    var request: VhostUserRequest
    var flags: UInt32
    var size: UInt32

    var needsReply: Bool { flags & Self.needReplyFlag != 0 }

    init(request: VhostUserRequest, flags: UInt32, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }

    /// The header at the start of `bytes` (at least 12).
    init(loading bytes: UnsafeRawBufferPointer) {
        request = VhostUserRequest(rawValue: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        flags = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        size = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    }

    /// The reason a header is malformed (wrong version, payload too long), or nil.
    var malformation: String? {
        if flags & Self.versionMask != Self.version {
            return "message with protocol version \(flags & Self.versionMask) (only 1 exists)"
        }
        if size > UInt32(Self.maxPayload) {
            return "\(request) with a \(size)-byte payload (more than \(Self.maxPayload))"
        }
        return nil
    }

    /// The bytes of this header followed by `payload`.
    func encoded(payload: [UInt8] = []) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(Self.size + payload.count)
        withUnsafeBytes(of: request.rawValue) { bytes += $0 }
        withUnsafeBytes(of: flags) { bytes += $0 }
        withUnsafeBytes(of: UInt32(payload.count)) { bytes += $0 }
        return bytes + payload
    }

    /// A reply to `request` carrying `payload`.
    static func reply(to request: VhostUserRequest, payload: [UInt8]) -> [UInt8] {
        VhostUserHeader(request: request, flags: version | replyFlag, size: UInt32(payload.count)).encoded(payload: payload)
    }
}

/// Payload encodings (vhost-user.rst "Payload").
enum VhostUserPayload {
    /// A u64 payload.
    static func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// A vring state description {index u32, num u32}.
    static func state(index: UInt32, num: UInt32) -> [UInt8] {
        withUnsafeBytes(of: index) { Array($0) } + withUnsafeBytes(of: num) { Array($0) }
    }

    /// A vring address description {index u32, flags u32, descriptor, used, available, log u64}.
    static func address(index: UInt32, flags: UInt32 = 0, descriptor: UInt64, used: UInt64, available: UInt64,
                        log: UInt64 = 0) -> [UInt8] {
        state(index: index, num: flags) + u64(descriptor) + u64(used) + u64(available) + u64(log)
    }

    /// One memory region {guest address, size, user address, mmap offset}.
    struct Region: Equatable {
        var guestAddress: UInt64
        var size: UInt64
        var userAddress: UInt64
        var mmapOffset: UInt64
    }

    /// A memory regions description {num regions u32, padding u32, regions}.
    static func memory(_ regions: [Region]) -> [UInt8] {
        var bytes = state(index: UInt32(regions.count), num: 0)
        for r in regions { bytes += u64(r.guestAddress) + u64(r.size) + u64(r.userAddress) + u64(r.mmapOffset) }
        return bytes
    }
}

/// Feature bits (virtio 1.x §6 and §5.1.3; vhost-user.rst "Protocol features").
enum VirtioFeature {
    static let netChecksum: UInt64 = 1 << 0        // VIRTIO_NET_F_CSUM: the guest sends partial checksums
    static let netGuestChecksum: UInt64 = 1 << 1   // VIRTIO_NET_F_GUEST_CSUM: the guest takes them
    static let netMTU: UInt64 = 1 << 3             // VIRTIO_NET_F_MTU
    static let netGuestTSO4: UInt64 = 1 << 7
    static let netGuestTSO6: UInt64 = 1 << 8
    static let netHostTSO4: UInt64 = 1 << 11
    static let netHostTSO6: UInt64 = 1 << 12
    static let netMergeableRxBuffers: UInt64 = 1 << 15  // VIRTIO_NET_F_MRG_RXBUF
    static let ringIndirectDescriptors: UInt64 = 1 << 28
    static let ringEventIndex: UInt64 = 1 << 29
    /// VHOST_USER_F_PROTOCOL_FEATURES: the reused bit 30 (vhost-user.rst "Communication").
    static let protocolFeatures: UInt64 = 1 << 30
    static let version1: UInt64 = 1 << 32
}

/// vhost-user protocol feature bits switchd offers.
enum VhostUserProtocolFeature {
    static let multipleQueues: UInt64 = 1 << 0   // MQ
    static let replyAck: UInt64 = 1 << 3         // REPLY_ACK
    static let mtu: UInt64 = 1 << 4              // NET_MTU
}
