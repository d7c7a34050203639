// ControlProtocol: the control socket's messages, one JSON object per line each way (docs/status-json.md).
import Foundation
import Proto
import Switch

/// A request, decoded and checked; the dataplane only ever sees these typed values.
enum ControlRequest: Equatable {
    /// `{"op":"status"}`
    case status
    /// `{"op":"portAdd","network":N,"tap":NAME,"netns":NS?,"mac":MAC?}` or `{"op":"portAdd","network":N,"link":IFACE}`
    case portAdd(network: String, spec: PortSpec)
    /// `{"op":"portDel","network":N,"port":ID}`
    case portDel(network: String, port: String)
    /// `{"op":"attach","network":N,"kind":"dgram"|"stream","offload":BOOL?}`: a socketpair end comes back
    /// with the reply (SCM_RIGHTS) and the connection is the port's lease.
    case attach(network: String, kind: AttachKind, offload: Bool)
    /// `{"op":"fdb","network":N}`
    case fdb(network: String)
    /// `{"op":"capture","network":N,"port":ID?,"filter":[[code,jt,jf,k],...]?}`: the reply passes the
    /// reading end of the capture's socket; the capture lasts as long as this connection.
    case capture(network: String, port: String?, filter: CaptureFilter?)
    /// `{"op":"captureStats"}`: the counters of the capture this connection holds.
    case captureStats
    /// `{"op":"forwardAdd","network":N,"proto":"tcp"|"udp","hostAddress":A?,"hostPort":"N[-M]","guest":G,"guestPort":"N[-M]"?}`:
    /// without hostAddress, forwards from 127.0.0.1 and ::1; guestPort defaults to hostPort.
    case forwardAdd(network: String, forward: ForwardRequest)
    /// `{"op":"forwardDel","network":N,"id":ID}` or `{"op":"forwardDel","network":N,"proto":P,"hostAddress":A?,"hostPort":"N[-M]"}`.
    case forwardDel(network: String, selector: ForwardSelector)
    /// `{"op":"forwardList","network":N}`
    case forwardList(network: String)

    /// Whether the request changes the switch (and so needs a privileged peer). Reading is open to all.
    var changesSwitch: Bool {
        switch self {
        case .status, .fdb, .forwardList: return false
        default: return true
        }
    }

    /// The request's `op`, for messages.
    var op: String {
        switch self {
        case .status: "status"
        case .portAdd: "portAdd"
        case .portDel: "portDel"
        case .attach: "attach"
        case .fdb: "fdb"
        case .capture: "capture"
        case .captureStats: "captureStats"
        case .forwardAdd: "forwardAdd"
        case .forwardDel: "forwardDel"
        case .forwardList: "forwardList"
        }
    }

    /// The `op` names, for messages.
    static let ops = ["status", "portAdd", "portDel", "attach", "fdb", "capture", "captureStats", "forwardAdd",
                      "forwardDel", "forwardList"]

    /// Decodes one request line (without its newline).
    /// Input that is not a JSON object throws an error that closes the connection (`closesConnection`).
    init(line: [UInt8]) throws(ControlError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
        } catch {
            throw ControlError("malformed request: not valid JSON", closesConnection: true)
        }
        guard let fields = object as? [String: Any] else {
            throw ControlError("malformed request: not a JSON object", closesConnection: true)
        }
        let request = Fields(fields)
        let op = try request.required("op")
        switch op {
        case "status":
            try request.allow([])
            self = .status
        case "portAdd":
            let network = try request.required("network")
            if let link = try request.string("link") {
                try request.allow(["network", "link"], reason: "a link port takes only network and link")
                try Self.checkInterface(link)
                self = .portAdd(network: network, spec: .link(interface: link))
            } else if let tap = try request.string("tap") {
                try request.allow(["network", "tap", "netns", "mac"])
                try Self.checkInterface(tap)
                let netns = try request.string("netns")
                if let netns, let problem = Names.netnsProblem(netns) { throw ControlError(problem) }
                var mac: MACAddress?
                if let text = try request.string("mac") {
                    guard let parsed = MACAddress(text), !parsed.isMulticast, !parsed.isZero else {
                        throw ControlError("\"\(text)\" is not a unicast MAC address like 02:00:00:00:00:01")
                    }
                    mac = parsed
                }
                self = .portAdd(network: network, spec: .tap(name: tap, netns: netns, mac: mac))
            } else {
                throw ControlError("portAdd needs tap or link")
            }
        case "portDel":
            try request.allow(["network", "port"])
            self = .portDel(network: try request.required("network"), port: try request.required("port"))
        case "attach":
            try request.allow(["network", "kind", "offload"])
            let network = try request.required("network")
            let kindName = try request.string("kind") ?? AttachKind.dgram.rawValue
            guard let kind = AttachKind(rawValue: kindName) else {
                throw ControlError("attach kind must be dgram or stream, not \"\(kindName)\"")
            }
            self = .attach(network: network, kind: kind, offload: try request.bool("offload") ?? false)
        case "fdb":
            try request.allow(["network"])
            self = .fdb(network: try request.required("network"))
        case "capture":
            try request.allow(["network", "port", "filter"])
            self = .capture(network: try request.required("network"), port: try request.string("port"),
                            filter: try Self.captureFilter(request.fields["filter"]))
        case "captureStats":
            try request.allow([])
            self = .captureStats
        case "forwardAdd":
            try request.allow(["network", "proto", "hostAddress", "hostPort", "guest", "guestPort"])
            let network = try request.required("network")
            let proto = try Self.forwardProtocol(try request.required("proto"))
            let hostAddress = try request.string("hostAddress").map { text throws(ControlError) in try Self.address(text) }
            let hostPorts = try Self.portRange(try request.required("hostPort"), key: "hostPort")
            let guestText = try request.required("guest")
            guard let guest = ForwardTarget(guestText) else {
                throw ControlError("guest \"\(guestText)\" is neither an IP address nor a DHCP host name")
            }
            let guestPorts = try request.string("guestPort").map { text throws(ControlError) in try Self.portRange(text, key: "guestPort") } ?? hostPorts
            self = .forwardAdd(network: network, forward: ForwardRequest(proto: proto, hostAddress: hostAddress, hostPorts: hostPorts,
                                                                        guest: guest, guestPorts: guestPorts))
        case "forwardDel":
            let network = try request.required("network")
            if let id = try request.string("id") {
                try request.allow(["network", "id"], reason: "forwardDel takes network and id, or network, proto, hostAddress and hostPort")
                self = .forwardDel(network: network, selector: .id(id))
            } else {
                try request.allow(["network", "proto", "hostAddress", "hostPort"])
                let proto = try Self.forwardProtocol(try request.required("proto"))
                let hostAddress = try request.string("hostAddress").map { text throws(ControlError) in try Self.address(text) }
                let hostPorts = try Self.portRange(try request.required("hostPort"), key: "hostPort")
                self = .forwardDel(network: network, selector: .ports(proto: proto, hostAddress: hostAddress, hostPorts: hostPorts))
            }
        case "forwardList":
            try request.allow(["network"])
            self = .forwardList(network: try request.required("network"))
        default:
            throw ControlError("unknown op \"\(op)\" (expected \(Self.ops.joined(separator: ", ")))")
        }
    }

    /// The request as one JSON line with its newline, as the client sends it.
    var line: [UInt8] {
        var fields: [String: String] = [:]
        switch self {
        case .status:
            fields["op"] = "status"
        case .portAdd(let network, .tap(let name, let netns, let mac)):
            fields = ["op": "portAdd", "network": network, "tap": name]
            fields["netns"] = netns
            fields["mac"] = mac?.description
        case .portAdd(let network, .link(let interface)):
            fields = ["op": "portAdd", "network": network, "link": interface]
        case .portDel(let network, let port):
            fields = ["op": "portDel", "network": network, "port": port]
        case .attach(let network, let kind, let offload):
            struct Attach: Encodable { var op = "attach", network: String, kind: AttachKind, offload: Bool }
            return ControlReply.encodeLine(Attach(network: network, kind: kind, offload: offload))
        case .fdb(let network):
            fields = ["op": "fdb", "network": network]
        case .capture(let network, let port, let filter):
            return ControlReply.encodeLine(CaptureLine(network: network, port: port, filter: filter?.instructions.map {
                [UInt32($0.code), UInt32($0.jt), UInt32($0.jf), $0.k]
            }))
        case .captureStats:
            fields["op"] = "captureStats"
        case .forwardAdd(let network, let forward):
            fields = ["op": "forwardAdd", "network": network, "proto": forward.proto.rawValue,
                      "hostPort": forward.hostPorts.description, "guest": forward.guest.description,
                      "guestPort": forward.guestPorts.description]
            fields["hostAddress"] = forward.hostAddress?.description
        case .forwardDel(let network, .id(let id)):
            fields = ["op": "forwardDel", "network": network, "id": id]
        case .forwardDel(let network, .ports(let proto, let hostAddress, let hostPorts)):
            fields = ["op": "forwardDel", "network": network, "proto": proto.rawValue, "hostPort": hostPorts.description]
            fields["hostAddress"] = hostAddress?.description
        case .forwardList(let network):
            fields = ["op": "forwardList", "network": network]
        }
        return ControlReply.encodeLine(fields)
    }

    private static func forwardProtocol(_ text: String) throws(ControlError) -> ForwardProtocol {
        guard let proto = ForwardProtocol(rawValue: text) else { throw ControlError("proto \"\(text)\" is not tcp or udp") }
        return proto
    }

    private static func address(_ text: String) throws(ControlError) -> IPAddress {
        guard let address = IPAddress(text) else { throw ControlError("hostAddress \"\(text)\" is not an IPv4 or IPv6 address") }
        return address
    }

    private static func portRange(_ text: String, key: String) throws(ControlError) -> PortRange {
        switch PortRange.parse(text) {
        case .success(let range): return range
        case .failure(let problem): throw ControlError("\(key): \(problem.message)")
        }
    }

    private static func checkInterface(_ name: String) throws(ControlError) {
        if let problem = Names.interfaceProblem(name) { throw ControlError(problem) }
    }

    /// Typed access to a request's fields; every key must be a string.
    private struct Fields {
        let fields: [String: Any]
        init(_ fields: [String: Any]) { self.fields = fields }

        func string(_ key: String) throws(ControlError) -> String? {
            guard let value = fields[key] else { return nil }
            guard let text = value as? String else { throw ControlError("malformed request: \(key) must be a string") }
            return text
        }

        func bool(_ key: String) throws(ControlError) -> Bool? {
            guard let value = fields[key] else { return nil }
            // JSONSerialization gives NSNumber for numbers and booleans alike; only booleans have type "c"
            // (a JSON number is never an Int8), so 1 is not taken for true.
            guard let number = value as? NSNumber, number.objCType.pointee == CChar(UInt8(ascii: "c")) else {
                throw ControlError("malformed request: \(key) must be true or false")
            }
            return number.boolValue
        }

        func required(_ key: String) throws(ControlError) -> String {
            guard let text = try string(key), !text.isEmpty else { throw ControlError("malformed request: \(key) is missing") }
            return text
        }

        /// Rejects keys other than `op` and `keys`, so that a misspelt key is not silently ignored.
        func allow(_ keys: Set<String>, reason: String? = nil) throws(ControlError) {
            if let unknown = fields.keys.sorted().first(where: { $0 != "op" && !keys.contains($0) }) {
                throw ControlError(reason ?? "malformed request: unknown key \"\(unknown)\"")
            }
        }
    }
}

/// A reply: `{"ok":true,...}` with the op's result, or `{"ok":false,"error":"..."}`.
struct ControlReply: Codable, Equatable {
    var ok: Bool
    var error: String?
    /// portAdd: the new port's id.
    var port: String?
    /// status: every network.
    var networks: [NetworkStatus]?
    /// fdb: the network's learned MACs.
    var fdb: [FDBEntry]?
    /// captureStats: the capture's counters.
    var capture: CaptureStats?
    /// forwardAdd: the forwards added; forwardList: the network's forwards.
    var forwards: [ForwardStatus]?
    /// forwardDel: the ids of the forwards removed.
    var removed: [String]?

    static func success(port: String? = nil, networks: [NetworkStatus]? = nil, fdb: [FDBEntry]? = nil) -> ControlReply {
        ControlReply(ok: true, port: port, networks: networks, fdb: fdb)
    }

    static func failure(_ message: String) -> ControlReply { ControlReply(ok: false, error: message) }

    /// The reply as one JSON line with its newline.
    var line: [UInt8] { Self.encodeLine(self) }

    /// Decodes a reply line.
    init(line: [UInt8]) throws(ControlError) {
        do {
            self = try JSONDecoder().decode(ControlReply.self, from: Data(line))
        } catch {
            throw ControlError("unreadable reply from switchd: \(error)")
        }
    }

    init(ok: Bool, error: String? = nil, port: String? = nil, networks: [NetworkStatus]? = nil, fdb: [FDBEntry]? = nil) {
        self.ok = ok; self.error = error; self.port = port; self.networks = networks; self.fdb = fdb
    }

    /// Compact JSON (no newlines inside, keys sorted) plus `\n`.
    static func encodeLine(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain values cannot fail.
        return Array((try? encoder.encode(value)) ?? Data(#"{"ok":false,"error":"internal: cannot encode reply"}"#.utf8)) + [0x0A]
    }
}

/// A forward as `forwardAdd` asks for it: without a host address it is two, from 127.0.0.1 and ::1.
struct ForwardRequest: Equatable {
    var proto: ForwardProtocol
    var hostAddress: IPAddress?
    var hostPorts: PortRange
    var guest: ForwardTarget
    var guestPorts: PortRange

    /// The forwards it stands for.
    var specs: [PortForwardSpec] {
        (hostAddress.map { [$0] } ?? PortForwardSpec.defaultHostAddresses).map { address in
            PortForwardSpec(proto: proto, hostAddress: address, hostPorts: hostPorts, guest: guest, guestPorts: guestPorts)
        }
    }
}

/// Which forwards `forwardDel` removes: one id, or a protocol's host ports (on one address, or on any).
enum ForwardSelector: Equatable {
    case id(String)
    case ports(proto: ForwardProtocol, hostAddress: IPAddress?, hostPorts: PortRange)
}

/// A control-socket failure: a bad request, a refused operation or an unreachable daemon.
struct ControlError: Error, CustomStringConvertible, Equatable {
    var description: String
    /// The input was not a request at all (not JSON, not an object): the server answers and closes.
    var closesConnection = false
    init(_ description: String, closesConnection: Bool = false) {
        self.description = description
        self.closesConnection = closesConnection
    }
}

extension ControlRequest {
    /// A capture request's `filter`: `[[code, jt, jf, k], ...]` as libpcap compiled it, checked with
    /// `bpf_validate` here so that the dataplane only ever runs a valid program.
    static func captureFilter(_ value: Any?) throws(ControlError) -> CaptureFilter? {
        guard let value else { return nil }
        guard let rows = value as? [Any] else { throw ControlError("malformed request: filter must be an array of [code, jt, jf, k]") }
        guard rows.count <= CaptureFilter.maxInstructions else {
            throw ControlError("filter has \(rows.count) instructions, more than \(CaptureFilter.maxInstructions)")
        }
        func field(_ value: Any, max: Int) -> Int? {
            guard let n = value as? Int, n >= 0, n <= max else { return nil }
            return n
        }
        var instructions: [BPFInstruction] = []
        instructions.reserveCapacity(rows.count)
        for (i, row) in rows.enumerated() {
            guard let cells = row as? [Any], cells.count == 4, let code = field(cells[0], max: 0xFFFF),
                  let jt = field(cells[1], max: 0xFF), let jf = field(cells[2], max: 0xFF),
                  let k = field(cells[3], max: Int(UInt32.max)) else {
                throw ControlError("malformed request: filter instruction \(i) is not [code, jt, jf, k] "
                                   + "(code < 65536, jt and jf < 256, k < 2^32)")
            }
            instructions.append(BPFInstruction(code: UInt16(code), jt: UInt8(jt), jf: UInt8(jf), k: UInt32(k)))
        }
        do {
            return try CaptureFilter(instructions)
        } catch {
            throw ControlError(error.description)
        }
    }
}

/// The line of a capture request (optional keys left out).
private struct CaptureLine: Encodable {
    var op = "capture"
    var network: String
    var port: String?
    var filter: [[UInt32]]?
}
