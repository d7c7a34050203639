// DNS messages against scapy's golden bytes: header view, parse, emit, names, and malformed input.
import XCTest
@testable import Proto

final class DNSTests: XCTestCase {
    let web = DNSName("web.lab.internal")!

    static let goldens: [[UInt8]] = [
        DNSGolden.queryA, DNSGolden.responseA, DNSGolden.queryAAAAWithOPT, DNSGolden.responseAAAA,
        DNSGolden.responsePTR, DNSGolden.responseCNAME, DNSGolden.nxdomain,
    ]

    // MARK: Golden messages

    func testDeconstruct() throws {
        try DNSGolden.responseA.withUnsafeBytes { bytes in
            let header = try XCTUnwrap(DNSHeader(validating: bytes))
            XCTAssertEqual(header.id, 0x1234)
            XCTAssertTrue(header.flags.isResponse)
            XCTAssertTrue(header.flags.isAuthoritative)
            XCTAssertFalse(header.flags.isTruncated)
            XCTAssertTrue(header.flags.recursionDesired)
            XCTAssertTrue(header.flags.recursionAvailable)
            XCTAssertEqual(header.flags.opcode, .query)
            XCTAssertEqual(header.flags.rcode, .noError)
            XCTAssertEqual(header.questionCount, 1)
            XCTAssertEqual(header.answerCount, 1)
            XCTAssertEqual(header.authorityCount, 0)
            XCTAssertEqual(header.additionalCount, 0)
        }
        DNSGolden.nxdomain.withUnsafeBytes { XCTAssertEqual(DNSHeader(validating: $0)?.flags.rcode, .nameError) }
        DNSGolden.queryA.withUnsafeBytes { XCTAssertEqual(DNSHeader(validating: $0)?.flags.isResponse, false) }
    }

    func testConstruct() {
        var bytes = DNSGolden.queryA
        bytes.withUnsafeMutableBytes { buffer in
            let header = MutableDNSHeader(validating: buffer)!
            header.id = 0xBEEF
            var flags = header.flags
            flags.isResponse = true
            flags.rcode = .serverFailure
            flags.recursionAvailable = true
            header.flags = flags
        }
        XCTAssertEqual(Array(bytes[0..<4]), [0xBE, 0xEF, 0x81, 0x82])
        XCTAssertEqual(Array(bytes[4...]), Array(DNSGolden.queryA[4...]))
        XCTAssertTrue(DNSMessage.setID(0x0102, in: &bytes))
        XCTAssertEqual(DNSMessage.id(of: bytes), 0x0102)
        var short: [UInt8] = [1, 2, 3]
        XCTAssertFalse(DNSMessage.setID(7, in: &short))
        XCTAssertEqual(short, [1, 2, 3])
        XCTAssertNil(DNSMessage.id(of: short))
    }

    func testParse() throws {
        let query = try XCTUnwrap(DNSMessage.parse(DNSGolden.queryA))
        XCTAssertEqual(query, DNSMessage(id: 0x1234, flags: DNSFlags(rawValue: 0x0100), questions: [DNSQuestion(name: web, type: .a)]))

        let aaaa = try XCTUnwrap(DNSMessage.parse(DNSGolden.queryAAAAWithOPT))
        XCTAssertEqual(aaaa.questions, [DNSQuestion(name: web, type: .aaaa)])
        XCTAssertEqual(aaaa.additionals, [DNSRecord(name: .root, type: .opt, class: DNSClass(rawValue: 1232), ttl: 0x8000, data: .raw([]))])

        let response = try XCTUnwrap(DNSMessage.parse(DNSGolden.responseA))
        XCTAssertEqual(response.answers, [.a(web, IPv4Address(10, 0, 0, 5), ttl: 60)])
        XCTAssertEqual(DNSMessage.parse(DNSGolden.responseAAAA)?.answers, [.aaaa(web, IPv6Address("fd00::5")!, ttl: 60)])
        XCTAssertEqual(DNSMessage.parse(DNSGolden.responsePTR)?.answers,
                       [.ptr(DNSName("5.0.0.10.in-addr.arpa")!, web, ttl: 60)])

        // CNAME whose RDATA is compressed, an A record for the target, an MX kept raw, and OPT.
        let cname = try XCTUnwrap(DNSMessage.parse(DNSGolden.responseCNAME))
        let www = DNSName("www.example.com")!, webExample = DNSName("web.example.com")!
        XCTAssertEqual(cname.answers, [
            DNSRecord(name: www, type: .cname, ttl: 300, data: .cname(webExample)),
            .a(webExample, IPv4Address(192, 0, 2, 7), ttl: 300),
        ])
        XCTAssertEqual(cname.authorities, [DNSRecord(name: DNSName("example.com")!, type: .mx, ttl: 300,
                                                     data: .raw([0, 10, 4] + Array("mail".utf8) + [0xC0, 0x10]))])
        XCTAssertEqual(cname.additionals.map(\.type), [.opt])
    }

    func testEmit() throws {
        let query = try XCTUnwrap(DNSMessage.parse(DNSGolden.queryA))
        let answer = DNSMessage.makeResponse(to: query, rcode: .noError, answers: [.a(web, IPv4Address(10, 0, 0, 5), ttl: 60)],
                                             authoritative: true)
        XCTAssertEqual(answer.emit(), DNSGolden.responseA)

        let aaaaQuery = try XCTUnwrap(DNSMessage.parse(DNSGolden.queryAAAAWithOPT))
        XCTAssertEqual(DNSMessage.makeResponse(to: aaaaQuery, rcode: .noError, answers: [.aaaa(web, IPv6Address("fd00::5")!, ttl: 60)],
                                               authoritative: true).emit(), DNSGolden.responseAAAA)
        let ptrName = DNSName("5.0.0.10.in-addr.arpa")!
        let ptrQuery = DNSMessage(id: 0x7777, flags: DNSFlags(rawValue: 0x0100), questions: [DNSQuestion(name: ptrName, type: .ptr)])
        XCTAssertEqual(DNSMessage.makeResponse(to: ptrQuery, rcode: .noError, answers: [.ptr(ptrName, web, ttl: 60)],
                                               authoritative: true).emit(), DNSGolden.responsePTR)
        let nxQuery = DNSMessage(id: 0x2222, flags: DNSFlags(rawValue: 0x0100),
                                 questions: [DNSQuestion(name: DNSName("nope.lab.internal")!, type: .a)])
        XCTAssertEqual(DNSMessage.nameError(to: nxQuery).emit(), DNSGolden.nxdomain)

        // Every golden message re-emits to the same bytes (scapy and we compress alike).
        for golden in Self.goldens {
            XCTAssertEqual(DNSMessage.parse(golden)?.emit(), golden)
        }
    }

    func testErrorResponsesKeepIDAndQuestion() throws {
        let query = try XCTUnwrap(DNSMessage.parse(DNSGolden.queryAAAAWithOPT))
        for (response, rcode) in [(DNSMessage.serverFailure(to: query), DNSRcode.serverFailure),
                                  (DNSMessage.refused(to: query), .refused), (DNSMessage.nameError(to: query), .nameError)] {
            let parsed = try XCTUnwrap(DNSMessage.parse(try XCTUnwrap(response.emit())))
            XCTAssertEqual(parsed.id, 0x0A0B)
            XCTAssertEqual(parsed.flags.rcode, rcode)
            XCTAssertTrue(parsed.flags.isResponse)
            XCTAssertTrue(parsed.flags.recursionDesired)
            XCTAssertEqual(parsed.questions, query.questions)
            XCTAssertEqual(parsed.answers, [])
            XCTAssertEqual(parsed.additionals, [], "local answers carry no OPT")
        }
    }

    func testParseFirstQuestion() throws {
        let first = try DNSGolden.responseCNAME.withUnsafeBytes { try XCTUnwrap(DNSMessage.parseFirstQuestion($0)) }
        XCTAssertEqual(first.id, 0x4321)
        XCTAssertEqual(first.question, DNSQuestion(name: DNSName("www.example.com")!, type: .a))
        DNSGolden.queryA.withUnsafeBytes { XCTAssertNil(DNSMessage.parseFirstQuestion($0.slice(0..<20))) }
    }

    // MARK: Names

    func testNames() throws {
        XCTAssertEqual(DNSName("Web.LAB.internal."), web)
        XCTAssertEqual(DNSName("Web.LAB.internal")?.hashValue, web.hashValue)
        XCTAssertEqual(DNSName("Web.LAB.internal")?.description, "Web.LAB.internal")
        XCTAssertEqual(DNSName(".")?.labels.count, 0)
        XCTAssertEqual(DNSName.root.description, ".")
        XCTAssertNil(DNSName(""))
        XCTAssertNil(DNSName("a..b"))
        XCTAssertTrue(web.hasSuffix(DNSName("LAB.Internal")!))
        XCTAssertTrue(web.hasSuffix(.root))
        XCTAssertFalse(web.hasSuffix(DNSName("ab.internal")!))
        XCTAssertFalse(DNSName("internal")!.hasSuffix(web))
        XCTAssertEqual(web.wireLength, 18)
        XCTAssertEqual(DNSName(labels: [[0x61, 0x2E, 0x00]])?.description, "a\\046\\000")
        // RFC 1035 §2.3.4: labels ≤ 63 octets, names ≤ 255 octets on the wire.
        let l63 = String(repeating: "a", count: 63), l61 = String(repeating: "b", count: 61)
        XCTAssertNotNil(DNSName(l63))
        XCTAssertNil(DNSName(l63 + "a"))
        XCTAssertEqual(DNSName("\(l63).\(l63).\(l63).\(l61)")?.wireLength, 255)
        XCTAssertNil(DNSName("\(l63).\(l63).\(l63).\(l61)b"))
    }

    // MARK: Malformed input

    /// A header with the given counts followed by `body`.
    func message(qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0, _ body: [UInt8]) -> [UInt8] {
        [0xAB, 0xCD, 0x01, 0x00] + [qd, an, ns, ar].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } + body
    }

    func testTruncatedMessagesAreRejected() {
        for golden in Self.goldens {
            for length in 0..<golden.count {
                XCTAssertNil(DNSMessage.parse(Array(golden[..<length])), "prefix \(length) of \(golden.count)")
            }
        }
        XCTAssertNil(DNSMessage.parse([0x12, 0x34, 0x01]))
        [UInt8](repeating: 0, count: 11).withUnsafeBytes { XCTAssertNil(DNSHeader(validating: $0)) }
    }

    func testCompressionLoopsAreRejected() {
        let tail: [UInt8] = [0, 1, 0, 1]
        // A pointer to itself, and a pointer to a later pointer back to the first.
        XCTAssertNil(DNSMessage.parse(message([0xC0, 12] + tail)))
        XCTAssertNil(DNSMessage.parse(message([0xC0, 14, 0xC0, 12] + tail)))
        // A label then a pointer back to that label: a loop through a label.
        XCTAssertNil(DNSMessage.parse(message([1, 0x61, 0xC0, 12] + tail)))
        // A pointer beyond the message.
        XCTAssertNil(DNSMessage.parse(message([0xFF, 0xFF] + tail)))
        // A pointer cut in half.
        XCTAssertNil(DNSMessage.parse(message([0xC0])))
        // A backwards chain: each pointer names the one before it, ending at a root octet at 12.
        func chain(_ jumps: Int) -> [UInt8] {
            var body: [UInt8] = [0, 0, 1, 0, 1]   // question 1: the root, A, IN
            var questions: UInt16 = 1
            var previous = 12
            for _ in 0..<jumps {
                let here = 12 + body.count
                body += [0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF), 0, 1, 0, 1]
                previous = here
                questions += 1
            }
            return message(qd: questions, body)
        }
        XCTAssertEqual(DNSMessage.parse(chain(127))?.questions.count, 128)
        XCTAssertNil(DNSMessage.parse(chain(128)), "more jumps than a legal name needs")
    }

    func testLabelAndNameLimits() {
        let tail: [UInt8] = [0, 1, 0, 1]
        // 0x40 and 0x80 length octets: extended / reserved label types, i.e. a "label" over 63.
        XCTAssertNil(DNSMessage.parse(message([0x40] + [UInt8](repeating: 0x61, count: 64) + [0] + tail)))
        XCTAssertNil(DNSMessage.parse(message([0x80] + [UInt8](repeating: 0x61, count: 128) + [0] + tail)))
        let label63: [UInt8] = [63] + [UInt8](repeating: 0x61, count: 63)
        let label61: [UInt8] = [61] + [UInt8](repeating: 0x62, count: 61)
        XCTAssertNotNil(DNSMessage.parse(message(label63 + label63 + label63 + label61 + [0] + tail)))
        XCTAssertNil(DNSMessage.parse(message(label63 + label63 + label63 + label63 + [0] + tail)), "257 octets")
        // Over 255 through compression: a 193-octet name, then one that adds 64 octets in front of a pointer to it.
        let long = label63 + label63 + label63 + [0]
        XCTAssertNil(DNSMessage.parse(message(qd: 2, long + tail + label63 + [0xC0, 12] + tail)))
    }

    func testCountsOverrunningTheMessageAreRejected() {
        let question: [UInt8] = [1, 0x61, 0, 0, 1, 0, 1]
        XCTAssertNotNil(DNSMessage.parse(message(question)))
        XCTAssertNil(DNSMessage.parse(message(qd: 2, question)))
        XCTAssertNil(DNSMessage.parse(message(an: 1, question)))
        XCTAssertNil(DNSMessage.parse(message(qd: 0xFFFF, an: 0xFFFF, ns: 0xFFFF, ar: 0xFFFF, question)))
        // A record whose RDLENGTH runs past the end, and an A record with RDLENGTH 5.
        let record: [UInt8] = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60]
        XCTAssertNil(DNSMessage.parse(message(an: 1, question + record + [0, 8, 10, 0, 0, 5])))
        XCTAssertNil(DNSMessage.parse(message(an: 1, question + record + [0, 5, 10, 0, 0, 5, 0])))
        XCTAssertNotNil(DNSMessage.parse(message(an: 1, question + record + [0, 4, 10, 0, 0, 5])))
        // A PTR whose name ends before or after its RDLENGTH.
        let ptr: [UInt8] = [0xC0, 12, 0, 12, 0, 1, 0, 0, 0, 60]
        XCTAssertNil(DNSMessage.parse(message(an: 1, question + ptr + [0, 4, 1, 0x62, 0, 0])))
        XCTAssertNil(DNSMessage.parse(message(an: 1, question + ptr + [0, 2, 1, 0x62, 0])))
        XCTAssertNotNil(DNSMessage.parse(message(an: 1, question + ptr + [0, 3, 1, 0x62, 0])))
    }

    /// Random mutations of the golden messages: parsing never crashes, and whatever parses
    /// re-emits to a message that parses to the same value.
    func testFuzzedMutationsNeverCrash() {
        var generator = SplitMix64(seed: 0xD45)
        var parsed = 0
        for iteration in 0..<30_000 {
            var bytes = Self.goldens[iteration % Self.goldens.count]
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                switch Int.random(in: 0..<5, using: &generator) {
                case 0 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                case 1 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
                case 2:
                    bytes.removeLast(min(bytes.count, Int.random(in: 1...8, using: &generator)))
                case 3:
                    bytes.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0...bytes.count, using: &generator))
                default:
                    // Pointer-looking octets are where the interesting bugs are.
                    if bytes.count > 13 { bytes[Int.random(in: 12..<bytes.count, using: &generator)] = 0xC0 }
                }
            }
            bytes.withUnsafeBytes { _ = DNSMessage.parseFirstQuestion($0) }
            guard let message = DNSMessage.parse(bytes) else { continue }
            parsed += 1
            guard let emitted = message.emit() else { XCTFail("emit failed for \(bytes)"); continue }
            XCTAssertEqual(DNSMessage.parse(emitted), message)
        }
        XCTAssertGreaterThan(parsed, 1000)
    }
}
