// ResponderTargets: the gateway's ARP, NDP, echo, RA, DHCP and DNS responders fed arbitrary frames and messages.
import Proto
import Switch

/// The gateway every responder target answers as (the one of Tests/SwitchTests' responders.py goldens).
let fuzzGateway = GatewayIdentity(
    mac: MACAddress("02:00:5e:a1:b2:c3")!, ipv4: IPv4Address(192, 168, 107, 1), subnet: IPv4Subnet("192.168.107.0/24")!,
    ipv6Prefix: IPv6Address("fd00:1234:5678:9abc::")!, mtu: 1500, domain: "test.internal", routesBeyondHost: false)

/// One frame for a responder: a control byte (bit 0: fix the checksums first, so the fuzzer gets
/// past them; bit 1: a reply buffer of the next byte's size instead of 2048 bytes), then the frame.
struct ResponderInput {
    var fixChecksums: Bool
    var replyCapacity: Int
    var frame: UnsafeRawBufferPointer

    init(_ reader: inout FuzzReader, frameLength: Int? = nil) {
        let control = reader.byte()
        fixChecksums = control & 1 != 0
        let small = reader.byte()
        replyCapacity = control & 2 != 0 ? Int(small) : 2048
        frame = frameLength.map { reader.take($0) } ?? reader.rest()
    }
}

/// Runs `respond` on the frame (checksums fixed when asked) with a reply buffer, and checks a reply:
/// its length is within the buffer, it is an Ethernet frame from the gateway, untagged (or with the
/// request's tags, `keepsTags`), and every checksum in it is already right (fixing them changes nothing).
func runResponder(_ input: ResponderInput, _ name: String, keepsTags: Bool = false,
                  _ respond: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Verdict) {
    withCopy(input.frame) { frame in
        if input.fixChecksums { fixChecksums(frame) }
        withBuffer(input.replyCapacity) { reply in
            let verdict = respond(UnsafeRawBufferPointer(frame), reply)
            guard case .reply(let length) = verdict else { return }
            require(length >= 14 && length <= reply.count, "\(name): reply length \(length) for a \(reply.count)-byte buffer")
            let bytes = UnsafeRawBufferPointer(rebasing: reply[0..<length])
            guard let ethernet = EthernetFrame(validating: bytes) else { return require(false, "\(name): reply is not Ethernet") }
            let tags = keepsTags ? EthernetFrame(validating: UnsafeRawBufferPointer(frame)).map { ($0.outerTag, $0.innerTag) } : nil
            require(ethernet.source == fuzzGateway.mac && ethernet.outerTag == tags?.0 && ethernet.innerTag == tags?.1,
                    "\(name): reply header")
            withCopy(bytes) { fixed in
                fixChecksums(fixed)
                require(same(UnsafeRawBufferPointer(fixed), bytes), "\(name): a checksum of the reply is wrong")
            }
        }
    }
}

func fuzzARPResponder(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    var responder = ARPResponder(gateway: fuzzGateway)
    runResponder(ResponderInput(&reader), "arp") { responder.respond(to: $0, into: $1) }
}

func fuzzNDPResponder(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    var responder = NDPResponder(gateway: fuzzGateway)
    runResponder(ResponderInput(&reader), "ndp") { responder.respond(to: $0, into: $1) }
}

/// The echo responder, isolated or not (control bit 2).
func fuzzEchoResponder(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let isolated = input.first.map { $0 & 4 == 0 } ?? true
    var responder = EchoResponder(gateway: fuzzGateway, isolated: isolated)
    runResponder(ResponderInput(&reader), "echo") { responder.respond(to: $0, into: $1) }
}

/// The RA responder, one to four solicitations in a row (its rate limit is state) at times the
/// input picks: [control, size, time step, length] then each frame.
func fuzzRAResponder(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    var responder = RouterAdvertiser(gateway: fuzzGateway)
    var now = 1000.0
    for _ in 0..<4 where !reader.isEmpty {
        var header = FuzzReader(reader.take(2))
        now += Double(header.byte()) / 16
        let length = Int(header.byte())
        runResponder(ResponderInput(&reader, frameLength: length == 0 ? nil : length), "ra") {
            responder.respond(to: $0, into: $1, now: now)
        }
    }
}

/// The DHCP server of a ten-address pool with one reservation, fed up to eight frames in a row
/// (DISCOVER, REQUEST, RELEASE, DECLINE, INFORM sequences): each is [time step, length, control,
/// size] then the frame. Checksums are fixed when the control byte asks, and each reply is
/// checked like the others'.
func fuzzDHCPServer(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let server = DHCPServer(gateway: fuzzGateway, range: IPv4Address(192, 168, 107, 100)...IPv4Address(192, 168, 107, 109),
                            leaseTime: 600, reservations: fuzzReservations, store: nil)
    var now: Int64 = 1_000
    for _ in 0..<8 where !reader.isEmpty {
        now += Int64(reader.byte()) * 16
        let length = Int(reader.u16())
        runResponder(ResponderInput(&reader, frameLength: length), "dhcp", keepsTags: true) { server.respond(to: $0, into: $1, now: now) }
    }
}

/// The DHCP target's one reservation (parsed once: text parsing per input would dominate the run).
let fuzzReservations = [MACAddress("52:54:00:00:00:01")!: IPv4Address(192, 168, 107, 50)]

/// The DNS proxy target's upstream lists and domain, parsed once.
let fuzzUpstreamLists: [[UpstreamAddress]] = [
    [UpstreamAddress("10.0.0.53:53")!, UpstreamAddress("[fd00::53]:53")!],
    [UpstreamAddress("10.0.0.54:53")!],
    [],
]
let fuzzDomain = DNSName("test.internal")!
let fuzzGuest6 = IPv6Address("fd00:1234:5678:9abc::23")!

/// Host names for the DNS proxy target: one guest with both families.
struct FuzzHostTable: DNSHostTable {
    func address(of hostname: String) -> IPv4Address? { hostname == "guest" ? IPv4Address(192, 168, 107, 23) : nil }
    func ipv6Address(of hostname: String) -> IPv6Address? { hostname == "guest" ? fuzzGuest6 : nil }
    func hostname(of address: IPv4Address) -> String? { address == IPv4Address(192, 168, 107, 23) ? "guest" : nil }
}

/// The DNS proxy with two upstreams, fed up to eight operations: [op, length] then the bytes.
/// op & 3: 0 a query from client op >> 2 & 3; 1 an upstream reply (op bit 4: with the ID of the
/// last forwarded query, so replies match); 2 the clock moves on by a second per length unit and
/// expires; 3 the upstream list changes (op bit 4) or a client is forgotten.
func fuzzDNSProxy(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let upstreamLists = fuzzUpstreamLists
    var nextID: UInt16 = 0x1000
    var lastForwarded: UInt16 = 0
    var proxy = DNSProxy<Int>(config: DNSProxyConfig(domain: fuzzDomain, gatewayIPv4: fuzzGateway.ipv4,
                                                     gatewayIPv6: fuzzGateway.ipv6Address, subnet: fuzzGateway.subnet,
                                                     upstreams: upstreamLists[0], maxOutstanding: 4),
                              hostTable: FuzzHostTable(), makeID: { nextID &+= 1; return nextID })
    var upstreams = upstreamLists[0]
    var now: Int64 = 1_000_000_000
    func check(_ actions: [DNSAction<Int>]) {
        for action in actions {
            switch action {
            case .answer(_, let bytes):
                require(bytes.count >= 12, "DNS answer of \(bytes.count) bytes")
            case .forward(let upstream, let bytes):
                require(upstream >= 0 && upstream < upstreams.count, "forward to upstream \(upstream) of \(upstreams.count)")
                require(bytes.count >= 12, "forwarded query of \(bytes.count) bytes")
                lastForwarded = DNSMessage.id(of: bytes) ?? 0
            }
        }
        require(proxy.outstandingCount <= 4, "\(proxy.outstandingCount) outstanding, limit 4")
        require(upstreams.isEmpty ? proxy.outstandingCount == 0 : proxy.preferredUpstream < upstreams.count, "preferred upstream")
    }
    for _ in 0..<8 where !reader.isEmpty {
        let op = reader.byte()
        let length = Int(reader.byte())
        var bytes = Array(reader.take(length))
        switch op & 3 {
        case 0:
            check(proxy.handleQuery(bytes, from: Int(op >> 2 & 3), now: now))
        case 1:
            guard !upstreams.isEmpty else { continue }
            if op & 16 != 0 { DNSMessage.setID(lastForwarded, in: &bytes) }
            check(proxy.handleUpstreamReply(bytes, from: Int(op >> 2 & 1) % upstreams.count, now: now))
        case 2:
            now += Int64(length) * 1_000_000_000
            check(proxy.expire(now: now))
        default:
            if op & 16 != 0 {
                upstreams = upstreamLists[Int(op >> 5) % upstreamLists.count]
                check(proxy.setUpstreams(upstreams, now: now))
            } else {
                proxy.forget(client: Int(op >> 2 & 3))
                check([])
            }
        }
    }
}
