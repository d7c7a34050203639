// DNS messages (RFC 1035 §4): a header view for in-place rewrites, a parsed message with names,
// questions and resource records, and an emitter with name compression.
//
// Unlike the per-frame headers, DNS parsing builds values (names are label arrays, records are
// arrays): DNS is a gateway service handling a few queries per second, not the forwarding path, and
// every name has to be decompressed before it can be compared. Parsing is still total: a message
// whose counts overrun it, whose names loop or exceed RFC 1035 §2.3.4 limits, parses to nil.

/// Field offsets and limits of a DNS message (RFC 1035 §4.1.1, §2.3.4).
@usableFromInline
enum DNSField {
    @usableFromInline static let id = 0
    @usableFromInline static let flags = 2
    @usableFromInline static let questionCount = 4
    @usableFromInline static let answerCount = 6
    @usableFromInline static let authorityCount = 8
    @usableFromInline static let additionalCount = 10
    @usableFromInline static let headerLength = 12
    /// A label is at most 63 octets (RFC 1035 §2.3.4); the top two bits of a length octet mark a pointer (§4.1.4).
    static let maxLabelLength = 63
    /// A name is at most 255 octets on the wire, length octets and the root included (RFC 1035 §2.3.4).
    static let maxNameLength = 255
    /// Pointers followed while reading one name: a legal name of 255 octets has at most 127 labels,
    /// so more jumps than that can only be a loop.
    static let maxPointerJumps = 127
}

// MARK: - Wire codes

/// The 16-bit flags word of the header (RFC 1035 §4.1.1): QR, Opcode, AA, TC, RD, RA, Z, AD, CD, RCODE.
@frozen
public struct DNSFlags: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// QR: set in responses.
    public static let response = DNSFlags(rawValue: 0x8000)
    /// AA: the answer comes from an authority for the name.
    public static let authoritative = DNSFlags(rawValue: 0x0400)
    /// TC: the message was truncated to fit the transport (RFC 1035 §4.1.1; retry over TCP, RFC 7766 §5).
    public static let truncated = DNSFlags(rawValue: 0x0200)
    /// RD: recursion desired (copied from query to response).
    public static let recursionDesired = DNSFlags(rawValue: 0x0100)
    /// RA: recursion available.
    public static let recursionAvailable = DNSFlags(rawValue: 0x0080)

    @inlinable func has(_ bit: DNSFlags) -> Bool { rawValue & bit.rawValue != 0 }
    @inlinable mutating func set(_ bit: DNSFlags, _ on: Bool) {
        rawValue = on ? rawValue | bit.rawValue : rawValue & ~bit.rawValue
    }

    /// QR: true in a response, false in a query.
    @inlinable public var isResponse: Bool { get { has(.response) } set { set(.response, newValue) } }
    /// AA.
    @inlinable public var isAuthoritative: Bool { get { has(.authoritative) } set { set(.authoritative, newValue) } }
    /// TC.
    @inlinable public var isTruncated: Bool { get { has(.truncated) } set { set(.truncated, newValue) } }
    /// RD.
    @inlinable public var recursionDesired: Bool { get { has(.recursionDesired) } set { set(.recursionDesired, newValue) } }
    /// RA.
    @inlinable public var recursionAvailable: Bool { get { has(.recursionAvailable) } set { set(.recursionAvailable, newValue) } }
    /// Opcode, bits 11–14.
    @inlinable public var opcode: DNSOpcode {
        get { DNSOpcode(rawValue: UInt8(truncatingIfNeeded: rawValue >> 11) & 0xF) }
        set { rawValue = rawValue & ~0x7800 | UInt16(newValue.rawValue & 0xF) << 11 }
    }
    /// RCODE, the low four bits (the EDNS extended bits live in OPT, RFC 6891 §6.1.3).
    @inlinable public var rcode: DNSRcode {
        get { DNSRcode(rawValue: UInt8(truncatingIfNeeded: rawValue) & 0xF) }
        set { rawValue = rawValue & ~0x000F | UInt16(newValue.rawValue & 0xF) }
    }
}

/// Header Opcode (RFC 1035 §4.1.1; IANA DNS OpCodes).
@frozen
public struct DNSOpcode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A standard query.
    public static let query = DNSOpcode(rawValue: 0)
}

/// Header RCODE (RFC 1035 §4.1.1).
@frozen
public struct DNSRcode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let noError = DNSRcode(rawValue: 0)
    public static let formatError = DNSRcode(rawValue: 1)
    public static let serverFailure = DNSRcode(rawValue: 2)
    public static let nameError = DNSRcode(rawValue: 3)
    public static let notImplemented = DNSRcode(rawValue: 4)
    public static let refused = DNSRcode(rawValue: 5)
}

/// Resource record TYPE / question QTYPE (RFC 1035 §3.2.2, §3.2.3; RFC 3596; RFC 6891).
@frozen
public struct DNSType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let a = DNSType(rawValue: 1)
    public static let ns = DNSType(rawValue: 2)
    public static let cname = DNSType(rawValue: 5)
    public static let soa = DNSType(rawValue: 6)
    public static let ptr = DNSType(rawValue: 12)
    public static let mx = DNSType(rawValue: 15)
    public static let txt = DNSType(rawValue: 16)
    public static let aaaa = DNSType(rawValue: 28)
    /// The EDNS0 pseudo-record (RFC 6891 §6.1.1).
    public static let opt = DNSType(rawValue: 41)
    public static let any = DNSType(rawValue: 255)
}

/// Resource record CLASS / QCLASS (RFC 1035 §3.2.4). In an OPT record it is the UDP payload size.
@frozen
public struct DNSClass: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let internet = DNSClass(rawValue: 1)
    public static let any = DNSClass(rawValue: 255)
}

// MARK: - Header view

/// A read-only view of the fixed 12-byte header at the start of a DNS message.
@frozen
public struct DNSHeader {
    /// Size of the header.
    public static let length = DNSField.headerLength

    /// The whole message (header first).
    public let bytes: UnsafeRawBufferPointer

    /// A view of `bytes`, or nil when shorter than the header.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= DNSField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// ID.
    @inlinable public var id: UInt16 { bytes.be16(DNSField.id) }
    /// The flags word.
    @inlinable public var flags: DNSFlags { DNSFlags(rawValue: bytes.be16(DNSField.flags)) }
    /// QDCOUNT.
    @inlinable public var questionCount: UInt16 { bytes.be16(DNSField.questionCount) }
    /// ANCOUNT.
    @inlinable public var answerCount: UInt16 { bytes.be16(DNSField.answerCount) }
    /// NSCOUNT.
    @inlinable public var authorityCount: UInt16 { bytes.be16(DNSField.authorityCount) }
    /// ARCOUNT.
    @inlinable public var additionalCount: UInt16 { bytes.be16(DNSField.additionalCount) }
}

/// A writable view of the header of a DNS message, for rewrites in place (the proxy's ID swap).
@frozen
public struct MutableDNSHeader {
    /// The whole message (header first).
    public let bytes: UnsafeMutableRawBufferPointer

    /// A view of `bytes`, or nil when shorter than the header.
    @inlinable
    public init?(validating bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= DNSField.headerLength else { return nil }
        self.bytes = bytes
    }

    /// ID.
    @inlinable public var id: UInt16 {
        get { bytes.readOnly.be16(DNSField.id) }
        nonmutating set { bytes.setBE16(newValue, DNSField.id) }
    }
    /// The flags word.
    @inlinable public var flags: DNSFlags {
        get { DNSFlags(rawValue: bytes.readOnly.be16(DNSField.flags)) }
        nonmutating set { bytes.setBE16(newValue.rawValue, DNSField.flags) }
    }
}

// MARK: - Names

/// A domain name as its labels (RFC 1035 §3.1), case preserved; compared case-insensitively.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The labels, most specific first, without the root (the root name has none).
    public private(set) var labels: [[UInt8]]

    /// The root name `.`.
    public static let root = DNSName(unchecked: [])

    init(unchecked labels: [[UInt8]]) { self.labels = labels }

    /// A name from labels; nil when a label is empty or over 63 octets, or the name over 255 octets.
    public init?(labels: [[UInt8]]) {
        guard labels.allSatisfy({ !$0.isEmpty && $0.count <= DNSField.maxLabelLength }) else { return nil }
        self.labels = labels
        guard wireLength <= DNSField.maxNameLength else { return nil }
    }

    /// Parses dotted text (`host.lab.internal`, a trailing dot optional, `.` alone for the root);
    /// nil for empty labels or over-long names. No escapes: labels are taken as UTF-8 bytes.
    public init?(_ text: some StringProtocol) {
        if text == "." { self.init(unchecked: []); return }
        var body = Substring(text)
        if body.hasSuffix(".") { body = body.dropLast() }
        guard !body.isEmpty else { return nil }
        self.init(labels: body.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) })
    }

    /// Octets on the wire without compression: a length octet per label, the label, and the root octet.
    public var wireLength: Int { labels.reduce(1) { $0 + 1 + $1.count } }

    /// The labels with ASCII letters lowered (RFC 4343: comparisons ignore ASCII case).
    public var lowercased: DNSName { DNSName(unchecked: labels.map { $0.map(Self.lower) }) }

    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    /// True when `self` ends with the labels of `suffix` (case-insensitive); every name ends with the root.
    public func hasSuffix(_ suffix: DNSName) -> Bool {
        guard suffix.labels.count <= labels.count else { return false }
        let offset = labels.count - suffix.labels.count
        return suffix.labels.indices.allSatisfy { Self.labelsEqual(labels[offset + $0], suffix.labels[$0]) }
    }

    static func labelsEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { lower($0) == lower($1) }
    }

    /// Names are equal ignoring ASCII case (RFC 4343 §3).
    public static func == (a: DNSName, b: DNSName) -> Bool {
        a.labels.count == b.labels.count && zip(a.labels, b.labels).allSatisfy { labelsEqual($0, $1) }
    }

    public func hash(into hasher: inout Hasher) {
        for label in labels {
            hasher.combine(label.count)
            for byte in label { hasher.combine(Self.lower(byte)) }
        }
    }

    /// Dotted text without the trailing dot; the root is `.`. Bytes outside printable ASCII, dots
    /// and backslashes inside labels are written as `\DDD` (RFC 1035 §5.1).
    public var description: String {
        if labels.isEmpty { return "." }
        return labels.map { label in
            var text = ""
            for byte in label {
                if byte > 0x20 && byte < 0x7F && byte != 0x2E && byte != 0x5C {
                    text.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            return text
        }.joined(separator: ".")
    }

    /// Reads the name at `offset` in `message`, following compression pointers (RFC 1035 §4.1.4).
    /// Returns the name and the offset just past it where it started (after the first pointer, if
    /// any). Nil on a truncated name, a reserved label type, a label over 63 octets, a name over 255
    /// octets, a pointer that does not point backwards, or more pointer jumps than a legal name needs.
    public static func read(from message: UnsafeRawBufferPointer, at offset: Int) -> (name: DNSName, end: Int)? {
        var labels: [[UInt8]] = []
        var position = offset
        var end: Int? = nil
        var jumps = 0
        var length = 1
        while true {
            guard position < message.count else { return nil }
            let octet = message.byte(position)
            switch octet & 0xC0 {
            case 0x00:
                let count = Int(octet)
                if count == 0 {
                    return (DNSName(unchecked: labels), end ?? position + 1)
                }
                length += 1 + count
                guard length <= DNSField.maxNameLength, position + 1 + count <= message.count else { return nil }
                labels.append(Array(message.slice(position + 1..<position + 1 + count)))
                position += 1 + count
            case 0xC0:
                guard position + 1 < message.count else { return nil }
                let target = Int(octet & 0x3F) << 8 | Int(message.byte(position + 1))
                // Only backwards: a pointer names an earlier occurrence (RFC 1035 §4.1.4), so a
                // forward or self pointer is refused, and the jump bound catches anything else.
                guard target < position, jumps < DNSField.maxPointerJumps else { return nil }
                if end == nil { end = position + 2 }
                jumps += 1
                position = target
            default:
                // 0x40 and 0x80: extended and reserved label types (RFC 6891 §5), not supported.
                return nil
            }
        }
    }
}

// MARK: - Questions and records

/// An entry of the question section (RFC 1035 §4.1.2).
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    public var `class`: DNSClass

    public init(name: DNSName, type: DNSType, class: DNSClass = .internet) {
        self.name = name; self.type = type; self.class = `class`
    }
}

/// RDATA of a resource record: decoded for the types the gateway answers, raw bytes otherwise.
public enum DNSRecordData: Hashable, Sendable {
    case a(IPv4Address)
    case aaaa(IPv6Address)
    case ptr(DNSName)
    case cname(DNSName)
    /// Any other type, as found. RDATA that contains compressed names (NS, MX, SOA…) is only
    /// meaningful inside the message it came from; the proxy never re-emits such records.
    case raw([UInt8])
}

/// A resource record (RFC 1035 §4.1.3). For OPT (RFC 6891 §6.1.2) `class` is the UDP payload size
/// and `ttl` holds the extended RCODE, version and flags; its options stay raw.
public struct DNSRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    public var `class`: DNSClass
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: DNSName, type: DNSType, class: DNSClass = .internet, ttl: UInt32, data: DNSRecordData) {
        self.name = name; self.type = type; self.class = `class`; self.ttl = ttl; self.data = data
    }

    /// An A record.
    public static func a(_ name: DNSName, _ address: IPv4Address, ttl: UInt32) -> DNSRecord {
        DNSRecord(name: name, type: .a, ttl: ttl, data: .a(address))
    }
    /// An AAAA record (RFC 3596 §2.1).
    public static func aaaa(_ name: DNSName, _ address: IPv6Address, ttl: UInt32) -> DNSRecord {
        DNSRecord(name: name, type: .aaaa, ttl: ttl, data: .aaaa(address))
    }
    /// A PTR record.
    public static func ptr(_ name: DNSName, _ target: DNSName, ttl: UInt32) -> DNSRecord {
        DNSRecord(name: name, type: .ptr, ttl: ttl, data: .ptr(target))
    }
}

// MARK: - Messages

/// A whole DNS message, parsed (RFC 1035 §4.1).
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    public var flags: DNSFlags
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    public var additionals: [DNSRecord]

    public init(id: UInt16, flags: DNSFlags, questions: [DNSQuestion] = [], answers: [DNSRecord] = [],
                authorities: [DNSRecord] = [], additionals: [DNSRecord] = []) {
        self.id = id; self.flags = flags; self.questions = questions; self.answers = answers
        self.authorities = authorities; self.additionals = additionals
    }

    /// Parses a whole message; nil when the header is short, a count overruns the message, a name is
    /// malformed (see `DNSName.read`), or an A/AAAA/PTR/CNAME RDATA does not match its RDLENGTH.
    /// Octets after the last record are ignored.
    public static func parse(_ message: UnsafeRawBufferPointer) -> DNSMessage? {
        guard let header = DNSHeader(validating: message) else { return nil }
        // Every question takes at least 5 octets and every record 11: a count that cannot fit is
        // refused before anything is reserved for it.
        let q = Int(header.questionCount), an = Int(header.answerCount)
        let ns = Int(header.authorityCount), ar = Int(header.additionalCount)
        guard DNSField.headerLength + 5 * q + 11 * (an + ns + ar) <= message.count else { return nil }
        var offset = DNSField.headerLength
        var questions: [DNSQuestion] = []
        questions.reserveCapacity(q)
        for _ in 0..<q {
            guard let question = readQuestion(message, &offset) else { return nil }
            questions.append(question)
        }
        func records(_ count: Int) -> [DNSRecord]? {
            var result: [DNSRecord] = []
            result.reserveCapacity(count)
            for _ in 0..<count {
                guard let record = readRecord(message, &offset) else { return nil }
                result.append(record)
            }
            return result
        }
        guard let answers = records(an), let authorities = records(ns), let additionals = records(ar) else { return nil }
        return DNSMessage(id: header.id, flags: header.flags, questions: questions, answers: answers,
                          authorities: authorities, additionals: additionals)
    }

    /// Parses a message held in an array.
    public static func parse(_ message: [UInt8]) -> DNSMessage? {
        message.withUnsafeBytes { parse($0) }
    }

    /// Parses the header and the first question only (what the proxy needs to route a message);
    /// nil when the header is short, QDCOUNT is 0 or the question is malformed. Records are not read.
    public static func parseFirstQuestion(_ message: UnsafeRawBufferPointer) -> (id: UInt16, flags: DNSFlags, question: DNSQuestion)? {
        guard let header = DNSHeader(validating: message), header.questionCount > 0 else { return nil }
        var offset = DNSField.headerLength
        guard let question = readQuestion(message, &offset) else { return nil }
        return (header.id, header.flags, question)
    }

    static func readQuestion(_ message: UnsafeRawBufferPointer, _ offset: inout Int) -> DNSQuestion? {
        guard let (name, end) = DNSName.read(from: message, at: offset), end + 4 <= message.count else { return nil }
        offset = end + 4
        return DNSQuestion(name: name, type: DNSType(rawValue: message.be16(end)),
                           class: DNSClass(rawValue: message.be16(end + 2)))
    }

    static func readRecord(_ message: UnsafeRawBufferPointer, _ offset: inout Int) -> DNSRecord? {
        guard let (name, end) = DNSName.read(from: message, at: offset), end + 10 <= message.count else { return nil }
        let type = DNSType(rawValue: message.be16(end))
        let rclass = DNSClass(rawValue: message.be16(end + 2))
        let ttl = message.be32(end + 4)
        let rdLength = Int(message.be16(end + 8))
        let rdStart = end + 10
        guard rdStart + rdLength <= message.count else { return nil }
        let data: DNSRecordData
        switch type {
        case .a:
            guard rdLength == 4 else { return nil }
            data = .a(IPv4Address(rawValue: message.be32(rdStart)))
        case .aaaa:
            guard rdLength == 16 else { return nil }
            data = .aaaa(IPv6Address(high: UInt64(message.be32(rdStart)) << 32 | UInt64(message.be32(rdStart + 4)),
                                     low: UInt64(message.be32(rdStart + 8)) << 32 | UInt64(message.be32(rdStart + 12))))
        case .ptr, .cname:
            guard let (target, targetEnd) = DNSName.read(from: message, at: rdStart),
                  targetEnd == rdStart + rdLength else { return nil }
            data = type == .ptr ? .ptr(target) : .cname(target)
        default:
            data = .raw(Array(message.slice(rdStart..<rdStart + rdLength)))
        }
        offset = rdStart + rdLength
        return DNSRecord(name: name, type: type, class: rclass, ttl: ttl, data: data)
    }

    /// The message on the wire. Names are compressed (RFC 1035 §4.1.4) against every name and suffix
    /// written before them, so an answer for the question's name becomes a pointer to offset 12.
    /// `.raw` RDATA is copied as is. Nil when a count exceeds 65535.
    public func emit() -> [UInt8]? {
        guard questions.count <= 0xFFFF, answers.count <= 0xFFFF, authorities.count <= 0xFFFF,
              additionals.count <= 0xFFFF else { return nil }
        var writer = DNSWriter()
        writer.u16(id)
        writer.u16(flags.rawValue)
        for count in [questions.count, answers.count, authorities.count, additionals.count] { writer.u16(UInt16(count)) }
        for question in questions {
            writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.class.rawValue)
        }
        for record in answers + authorities + additionals {
            guard writer.record(record) else { return nil }
        }
        return writer.bytes
    }

    /// Rewrites the ID of the message in `bytes` in place; false (and no change) when shorter than a header.
    @discardableResult
    public static func setID(_ id: UInt16, in bytes: inout [UInt8]) -> Bool {
        bytes.withUnsafeMutableBytes { buffer in
            guard let header = MutableDNSHeader(validating: buffer) else { return false }
            header.id = id
            return true
        }
    }

    /// The ID of the message in `bytes`; nil when shorter than a header.
    public static func id(of bytes: [UInt8]) -> UInt16? {
        bytes.withUnsafeBytes { DNSHeader(validating: $0)?.id }
    }

    // MARK: Responses

    /// A response to `query`: same ID, opcode, RD and questions; QR and RA set; AA as given;
    /// `answers` in the answer section, no authority or additional records (so no OPT: a responder
    /// may answer an EDNS query without one, RFC 6891 §7).
    public static func makeResponse(to query: DNSMessage, rcode: DNSRcode, answers: [DNSRecord] = [],
                                    authoritative: Bool = false) -> DNSMessage {
        var flags = DNSFlags(rawValue: 0)
        flags.isResponse = true
        flags.opcode = query.flags.opcode
        flags.recursionDesired = query.flags.recursionDesired
        flags.recursionAvailable = true
        flags.isAuthoritative = authoritative
        flags.rcode = rcode
        return DNSMessage(id: query.id, flags: flags, questions: query.questions, answers: answers)
    }

    /// SERVFAIL for `query` (RFC 1035 §4.1.1: the server could not process it; here: no upstream answered).
    public static func serverFailure(to query: DNSMessage) -> DNSMessage { makeResponse(to: query, rcode: .serverFailure) }
    /// NXDOMAIN for `query`, authoritative (RFC 1035 §4.1.1 "Name Error" is meaningful only from an authority).
    public static func nameError(to query: DNSMessage) -> DNSMessage {
        makeResponse(to: query, rcode: .nameError, authoritative: true)
    }
    /// REFUSED for `query`.
    public static func refused(to query: DNSMessage) -> DNSMessage { makeResponse(to: query, rcode: .refused) }
}

/// Appends a message's fields, remembering where each name suffix was written for compression.
struct DNSWriter {
    var bytes: [UInt8] = []
    /// Name suffixes already written (keys compare ignoring case), and their offsets (pointers reach 0x3FFF at most).
    var suffixes: [DNSName: Int] = [:]

    init() { bytes.reserveCapacity(512) }

    mutating func u16(_ value: UInt16) { bytes.append(UInt8(value >> 8)); bytes.append(UInt8(value & 0xFF)) }
    mutating func u32(_ value: UInt32) { u16(UInt16(value >> 16)); u16(UInt16(value & 0xFFFF)) }

    mutating func name(_ name: DNSName) {
        let labels = name.labels
        for index in labels.indices {
            let suffix = DNSName(unchecked: Array(labels[index...]))
            if let offset = suffixes[suffix] {
                u16(0xC000 | UInt16(offset))
                return
            }
            if bytes.count <= 0x3FFF { suffixes[suffix] = bytes.count }
            bytes.append(UInt8(labels[index].count))
            bytes.append(contentsOf: labels[index])
        }
        bytes.append(0)
    }

    mutating func record(_ record: DNSRecord) -> Bool {
        name(record.name)
        u16(record.type.rawValue)
        u16(record.class.rawValue)
        u32(record.ttl)
        let lengthOffset = bytes.count
        u16(0)
        switch record.data {
        case .a(let address): u32(address.rawValue)
        case .aaaa(let address):
            u32(UInt32(address.high >> 32)); u32(UInt32(address.high & 0xFFFF_FFFF))
            u32(UInt32(address.low >> 32)); u32(UInt32(address.low & 0xFFFF_FFFF))
        case .ptr(let target), .cname(let target): name(target)
        case .raw(let data): bytes.append(contentsOf: data)
        }
        let rdLength = bytes.count - lengthOffset - 2
        guard rdLength <= 0xFFFF else { return false }
        bytes[lengthOffset] = UInt8(rdLength >> 8)
        bytes[lengthOffset + 1] = UInt8(rdLength & 0xFF)
        return true
    }
}
