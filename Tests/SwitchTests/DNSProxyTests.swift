// DNSProxy: local answers, forwarding with ID rewrite, retries, SERVFAIL, and malformed input, as bytes.
import Foundation
import TestSupport
import XCTest
import Proto
@testable import Switch

/// A fixed host table: web (10.0.0.5, fd00::5) and printer (10.0.0.9, no IPv6).
final class FixedHostTable: DNSHostTable {
    var v4: [String: IPv4Address] = ["web": IPv4Address(10, 0, 0, 5), "printer": IPv4Address(10, 0, 0, 9)]
    var v6: [String: IPv6Address] = ["web": IPv6Address("fd00::5")!]
    private(set) var asked: [String] = []

    func address(of hostname: String) -> IPv4Address? { asked.append(hostname); return v4[hostname] }
    func ipv6Address(of hostname: String) -> IPv6Address? { v6[hostname] }
    func hostname(of address: IPv4Address) -> String? { v4.first { $0.value == address }?.key }
}

/// A client as a test names it: a token, standing for whatever transport details the caller keeps.
struct TestClient: Hashable, Sendable { var token: UInt64 }

final class DNSProxyTests: XCTestCase {
    typealias Proxy = DNSProxy<TestClient>
    let alice = TestClient(token: 1), bob = TestClient(token: 2)
    let second: Int64 = 1_000_000_000
    let upstreams: [UpstreamAddress] = [.ipv4(IPv4Address(192, 0, 2, 53)), .ipv6(IPv6Address("2001:db8::53")!)]

    /// A proxy for lab.internal whose upstream IDs count up from 0x5151 (as the goldens expect).
    func makeProxy(upstreams: [UpstreamAddress]? = nil, maxOutstanding: Int = 1024, ids: [UInt16]? = nil,
                   table: DNSHostTable = FixedHostTable()) -> Proxy {
        let config = DNSProxyConfig(domain: DNSName("lab.internal")!, gatewayIPv4: IPv4Address(10, 0, 0, 1),
                                    gatewayIPv6: IPv6Address("fd00::1")!, subnet: IPv4Subnet("10.0.0.0/24")!,
                                    upstreams: upstreams ?? self.upstreams, maxOutstanding: maxOutstanding)
        final class Counter: @unchecked Sendable { var next: UInt16 = 0x5151; var script: [UInt16] = [] }
        let counter = Counter()
        counter.script = ids ?? []
        return Proxy(config: config, hostTable: table, makeID: {
            if !counter.script.isEmpty { return counter.script.removeFirst() }
            defer { counter.next &+= 1 }
            return counter.next
        })
    }

    /// The local-answer goldens: (query, expected answer, rcode, aa, answers for check_dns.py).
    static let localCases: [(name: String, query: [UInt8], answer: [UInt8], rcode: Int, answers: [[Any]])] = [
        ("A", DNSProxyGolden.queryA, DNSProxyGolden.answerA, 0, [["web.lab.internal", 1, "10.0.0.5", 60]]),
        ("mixed case", DNSProxyGolden.queryMixedCase, DNSProxyGolden.answerMixedCase, 0, [["web.lab.internal", 1, "10.0.0.5", 60]]),
        ("AAAA", DNSProxyGolden.queryAAAA, DNSProxyGolden.answerAAAA, 0, [["web.lab.internal", 28, "fd00::5", 60]]),
        ("AAAA no data", DNSProxyGolden.queryAAAANoData, DNSProxyGolden.answerAAAANoData, 0, []),
        ("PTR", DNSProxyGolden.queryPTR, DNSProxyGolden.answerPTR, 0, [["5.0.0.10.in-addr.arpa", 12, "web.lab.internal", 60]]),
        ("gateway PTR", DNSProxyGolden.queryGatewayPTR, DNSProxyGolden.answerGatewayPTR, 0,
         [["1.0.0.10.in-addr.arpa", 12, "gateway.lab.internal", 60]]),
        ("gateway A", DNSProxyGolden.queryGatewayA, DNSProxyGolden.answerGatewayA, 0, [["gateway.lab.internal", 1, "10.0.0.1", 60]]),
        ("NXDOMAIN", DNSProxyGolden.queryNXDomain, DNSProxyGolden.answerNXDomain, 3, []),
    ]

    // MARK: Local answers

    func testLocalAnswersMatchScapyGoldens() {
        var proxy = makeProxy()
        for (name, query, answer, _, _) in Self.localCases {
            XCTAssertEqual(proxy.handleQuery(query, from: alice, now: 0), [.answer(alice, answer)], name)
        }
        XCTAssertEqual(proxy.counters.queries, 8)
        XCTAssertEqual(proxy.counters.localAnswers, 8)
        XCTAssertEqual(proxy.counters.forwarded, 0)
        XCTAssertEqual(proxy.outstandingCount, 0)
    }

    func testLocalAnswersCheckedByScapy() throws {
        try DNSScapy.requireScapy()
        var proxy = makeProxy()
        var cases: [[String: Any]] = []
        for (name, query, _, rcode, answers) in Self.localCases {
            guard case .answer(_, let reply)? = proxy.handleQuery(query, from: alice, now: 0).first else {
                XCTFail("no answer for \(name)"); continue
            }
            cases.append(["name": name, "query": DNSScapy.hex(query), "reply": DNSScapy.hex(reply), "rcode": rcode, "aa": 1,
                          "answers": answers])
        }
        try DNSScapy.check(cases)
    }

    func testHostNamesAreLookedUpInLowercaseWithinTheDomainOnly() {
        let table = FixedHostTable()
        var proxy = makeProxy(table: table)
        _ = proxy.handleQuery(DNSProxyGolden.queryMixedCase, from: alice, now: 0)
        XCTAssertEqual(table.asked, ["web"])
        // A bare host name is not local: it goes upstream.
        let bare = query(id: 9, "web", .a)
        XCTAssertEqual(proxy.handleQuery(bare, from: alice, now: 0).count, 1)
        XCTAssertEqual(proxy.counters.forwarded, 1)
        // Deeper names inside the domain do not exist; the domain itself exists with no records.
        XCTAssertEqual(rcode(proxy.handleQuery(query(id: 10, "a.web.lab.internal", .a), from: alice, now: 0)), .nameError)
        let apex = proxy.handleQuery(query(id: 11, "lab.internal", .a), from: alice, now: 0)
        XCTAssertEqual(rcode(apex), .noError)
        XCTAssertEqual(answers(apex), [])
        // ANY returns both addresses; MX for a known host is NODATA.
        XCTAssertEqual(answers(proxy.handleQuery(query(id: 12, "web.lab.internal", .any), from: alice, now: 0)).map(\.type), [.a, .aaaa])
        XCTAssertEqual(answers(proxy.handleQuery(query(id: 13, "web.lab.internal", .mx), from: alice, now: 0)), [])
        XCTAssertEqual(proxy.counters.forwarded, 1)
    }

    func testReverseLookups() {
        var proxy = makeProxy()
        // An unknown address inside the subnet: NXDOMAIN here; outside: upstream.
        XCTAssertEqual(rcode(proxy.handleQuery(query(id: 1, "77.0.0.10.in-addr.arpa", .ptr), from: alice, now: 0)), .nameError)
        XCTAssertEqual(proxy.handleQuery(query(id: 2, "8.8.8.8.in-addr.arpa", .ptr), from: alice, now: 0).count, 1)
        XCTAssertEqual(proxy.counters.forwarded, 1)
        // Not an address (leading zero, 256, too few labels): forwarded.
        for name in ["05.0.0.10.in-addr.arpa", "256.0.0.10.in-addr.arpa", "0.0.10.in-addr.arpa"] {
            XCTAssertEqual(proxy.handleQuery(query(id: 3, name, .ptr), from: bob, now: 0).count, 1, name)
            proxy.forget(client: bob)
        }
        XCTAssertEqual(proxy.counters.forwarded, 4)
        XCTAssertEqual(Proxy.reverseIPv4(DNSName("5.0.0.10.IN-ADDR.ARPA")!), IPv4Address(10, 0, 0, 5))
    }

    func testErrorRepliesForOddQueries() throws {
        var proxy = makeProxy()
        // Opcode STATUS (2): NOTIMP. No question: FORMERR. Both keep the ID.
        var status = DNSProxyGolden.queryA
        status[2] = 0x10 | 0x01
        XCTAssertEqual(rcode(proxy.handleQuery(status, from: alice, now: 0)), .notImplemented)
        let empty = try XCTUnwrap(DNSMessage(id: 0x4242, flags: DNSFlags(rawValue: 0x0100)).emit())
        let reply = proxy.handleQuery(empty, from: alice, now: 0)
        XCTAssertEqual(rcode(reply), .formatError)
        XCTAssertEqual(DNSMessage.parse(bytes(reply))?.id, 0x4242)
        // A class other than IN inside the domain: REFUSED rather than leaking it upstream.
        XCTAssertEqual(rcode(proxy.handleQuery(query(id: 5, "web.lab.internal", .a, class: DNSClass(rawValue: 3)), from: alice, now: 0)),
                       .refused)
        XCTAssertEqual(proxy.counters.localAnswers, 3)
        XCTAssertEqual(proxy.counters.forwarded, 0)
    }

    // MARK: Forwarding

    func testForwardRewritesIDAndReplyRestoresIt() {
        var proxy = makeProxy()
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0),
                       [.forward(upstream: 0, DNSProxyGolden.forwardedExample)])
        XCTAssertEqual(proxy.outstandingCount, 1)
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 0, now: 1),
                       [.answer(alice, DNSProxyGolden.clientReplyExample)])
        XCTAssertEqual(proxy.outstandingCount, 0)
        // The same reply again (a duplicate) is dropped.
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 0, now: 2), [])
        XCTAssertEqual(proxy.counters.forwarded, 1)
        XCTAssertEqual(proxy.counters.replies, 1)
        XCTAssertEqual(proxy.counters.unmatched, 1)
    }

    func testTruncatedReplyPassesThroughApartFromTheID() {
        var proxy = makeProxy()
        _ = proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0)
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamTruncated, from: 0, now: 1),
                       [.answer(alice, DNSProxyGolden.clientTruncated)])
    }

    func testUnmatchedRepliesAreDropped() {
        var proxy = makeProxy()
        _ = proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0)
        // Right ID from the wrong upstream, wrong ID, and a reply for another question.
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 1, now: 1), [])
        var otherID = DNSProxyGolden.upstreamReplyExample
        DNSMessage.setID(0x5152, in: &otherID)
        XCTAssertEqual(proxy.handleUpstreamReply(otherID, from: 0, now: 1), [])
        var otherQuestion = DNSMessage.parse(DNSProxyGolden.upstreamReplyExample)!
        otherQuestion.questions[0].name = DNSName("www.example.org")!
        XCTAssertEqual(proxy.handleUpstreamReply(otherQuestion.emit()!, from: 0, now: 1), [])
        XCTAssertEqual(proxy.counters.unmatched, 3)
        // A query (QR=0) and garbage from an upstream are malformed.
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.forwardedExample, from: 0, now: 1), [])
        XCTAssertEqual(proxy.handleUpstreamReply([0x51, 0x51, 0x81], from: 0, now: 1), [])
        XCTAssertEqual(proxy.counters.malformed, 2)
        // The genuine reply still gets through.
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 0, now: 1),
                       [.answer(alice, DNSProxyGolden.clientReplyExample)])
    }

    func testIDsAreUniquePerUpstreamAndClientsKeepTheirOwn() {
        // The ID source repeats itself: the proxy draws again until the ID is free at that upstream.
        var proxy = makeProxy(ids: [7, 7, 7, 8])
        let first = proxy.handleQuery(query(id: 1, "a.example", .a), from: alice, now: 0)
        let second = proxy.handleQuery(query(id: 1, "b.example", .a), from: bob, now: 0)
        XCTAssertEqual(DNSMessage.parse(bytes(first))?.id, 7)
        XCTAssertEqual(DNSMessage.parse(bytes(second))?.id, 8)
        let replyB = DNSMessage.makeResponse(to: DNSMessage.parse(bytes(second))!, rcode: .nameError).emit()!
        let toBob = proxy.handleUpstreamReply(replyB, from: 0, now: 1)
        guard case .answer(let client, let reply)? = toBob.first else { return XCTFail("no answer") }
        XCTAssertEqual(client, bob)
        XCTAssertEqual(DNSMessage.id(of: reply), 1)
    }

    func testClientRetryOfAnOutstandingQueryIsNotForwardedTwice() {
        var proxy = makeProxy()
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0).count, 1)
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: second), [])
        XCTAssertEqual(proxy.counters.duplicates, 1)
        // The same ID from another client is another query.
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: bob, now: second).count, 1)
        XCTAssertEqual(proxy.outstandingCount, 2)
    }

    // MARK: Timeouts

    func testRetryOnNextUpstreamThenServfail() {
        var proxy = makeProxy()
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0),
                       [.forward(upstream: 0, DNSProxyGolden.forwardedExample)])
        XCTAssertEqual(proxy.expire(now: 2 * second - 1), [])
        var retry = DNSProxyGolden.forwardedExample
        DNSMessage.setID(0x5152, in: &retry)
        XCTAssertEqual(proxy.expire(now: 2 * second), [.forward(upstream: 1, retry)])
        XCTAssertEqual(proxy.counters.retries, 1)
        XCTAssertEqual(proxy.preferredUpstream, 1, "the upstream that timed out is no longer tried first")
        XCTAssertEqual(proxy.expire(now: 4 * second - 1), [])
        XCTAssertEqual(proxy.expire(now: 4 * second), [.answer(alice, DNSProxyGolden.servfailExample)])
        XCTAssertEqual(proxy.counters.servfails, 1)
        XCTAssertEqual(proxy.outstandingCount, 0)
        // Late replies from either upstream are unmatched.
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 0, now: 5 * second), [])
        XCTAssertEqual(proxy.counters.unmatched, 1)
        // Both timed out, so the preference moved on twice and wrapped around to the first.
        XCTAssertEqual(proxy.preferredUpstream, 0)
        guard case .forward(let upstream, _)? = proxy.handleQuery(query(id: 2, "x.example", .a), from: alice, now: 5 * second).first
        else { return XCTFail("not forwarded") }
        XCTAssertEqual(upstream, 0)
    }

    func testAnswerAfterRetryComesFromTheSecondUpstream() {
        var proxy = makeProxy()
        _ = proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0)
        _ = proxy.expire(now: 2 * second)
        var reply = DNSProxyGolden.upstreamReplyExample
        DNSMessage.setID(0x5152, in: &reply)
        XCTAssertEqual(proxy.handleUpstreamReply(reply, from: 1, now: 3 * second), [.answer(alice, DNSProxyGolden.clientReplyExample)])
        XCTAssertEqual(proxy.expire(now: 10 * second), [])
    }

    func testNoUpstreamsMeansServfailAtOnce() {
        var proxy = makeProxy(upstreams: [])
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0),
                       [.answer(alice, DNSProxyGolden.servfailExample)])
        XCTAssertEqual(proxy.counters.servfails, 1)
        // Local names still work.
        XCTAssertEqual(proxy.handleQuery(DNSProxyGolden.queryA, from: alice, now: 0), [.answer(alice, DNSProxyGolden.answerA)])
    }

    func testFullTableAnswersServfail() {
        var proxy = makeProxy(maxOutstanding: 2)
        XCTAssertEqual(proxy.handleQuery(query(id: 1, "a.example", .a), from: alice, now: 0).count, 1)
        XCTAssertEqual(proxy.handleQuery(query(id: 2, "b.example", .a), from: alice, now: 0).count, 1)
        XCTAssertEqual(rcode(proxy.handleQuery(query(id: 3, "c.example", .a), from: alice, now: 0)), .serverFailure)
        XCTAssertEqual(proxy.counters.tableFull, 1)
        XCTAssertEqual(proxy.counters.servfails, 1)
        XCTAssertEqual(proxy.outstandingCount, 2)
    }

    func testUpstreamChangeResendsOutstandingQueries() {
        var proxy = makeProxy()
        _ = proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0)
        XCTAssertEqual(proxy.setUpstreams(upstreams, now: 1), [], "no change, no action")
        var resent = DNSProxyGolden.forwardedExample
        DNSMessage.setID(0x5152, in: &resent)
        XCTAssertEqual(proxy.setUpstreams([upstreams[1]], now: 1), [.forward(upstream: 0, resent)])
        XCTAssertEqual(proxy.setUpstreams([], now: 2), [.answer(alice, DNSProxyGolden.servfailExample)])
        XCTAssertEqual(proxy.outstandingCount, 0)
    }

    func testForgottenClientsRepliesAreUnmatched() {
        var proxy = makeProxy()
        _ = proxy.handleQuery(DNSProxyGolden.queryExample, from: alice, now: 0)
        proxy.forget(client: alice)
        XCTAssertEqual(proxy.outstandingCount, 0)
        XCTAssertEqual(proxy.handleUpstreamReply(DNSProxyGolden.upstreamReplyExample, from: 0, now: 1), [])
        XCTAssertEqual(proxy.expire(now: 10 * second), [])
    }

    // MARK: Malformed input

    func testMalformedQueriesAreDroppedAndCounted() {
        var proxy = makeProxy()
        let header: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        let malformed: [[UInt8]] = [
            [], [0x12, 0x34, 0x01],                                   // truncated header
            header + [0xC0, 12, 0, 1, 0, 1],                           // compression loop
            header + [0x40] + [UInt8](repeating: 0x61, count: 64) + [0, 0, 1, 0, 1],  // label > 63
            [0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1],  // QDCOUNT overruns
            [0x12, 0x34, 0x01, 0x00, 0, 1, 0xFF, 0xFF, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1],  // ANCOUNT overruns
            DNSProxyGolden.answerA,                                    // a response sent as a query
        ]
        for bytes in malformed { XCTAssertEqual(proxy.handleQuery(bytes, from: alice, now: 0), []) }
        XCTAssertEqual(proxy.counters.malformed, UInt64(malformed.count))
        XCTAssertEqual(proxy.counters.queries, UInt64(malformed.count))
        XCTAssertEqual(proxy.outstandingCount, 0)
    }

    /// Random mutations of the golden queries and replies: never a crash, every query accounted for,
    /// and every local answer or SERVFAIL parses.
    func testFuzzedMutationsNeverCrash() {
        var proxy = makeProxy(maxOutstanding: 64)
        var generator = DNSFuzzGenerator(seed: 0x5EED)
        let queries = Self.localCases.map(\.query) + [DNSProxyGolden.queryExample]
        let replies = [DNSProxyGolden.upstreamReplyExample, DNSProxyGolden.upstreamTruncated]
        var now: Int64 = 0
        var malformedQueries: UInt64 = 0
        for iteration in 0..<20_000 {
            now += 1_000_000
            let client = TestClient(token: generator.next() % 8)
            let query = generator.mutate(queries[iteration % queries.count])
            let malformedBefore = proxy.counters.malformed
            for action in proxy.handleQuery(query, from: client, now: now) {
                if case .answer(_, let reply) = action { XCTAssertNotNil(DNSMessage.parse(reply)) }
            }
            malformedQueries += proxy.counters.malformed - malformedBefore
            var reply = generator.mutate(replies[iteration % replies.count])
            // Half the replies carry the ID of an outstanding query, so matching is exercised too.
            let keys = Array(proxy.pending.keys)
            var upstream = Int(generator.next() % 3)
            if !keys.isEmpty && generator.next() % 2 == 0 {
                let key = keys[Int(generator.next() % UInt64(keys.count))]
                DNSMessage.setID(key.id, in: &reply)
                upstream = key.upstream
            }
            _ = proxy.handleUpstreamReply(reply, from: upstream, now: now)
            if iteration % 100 == 0 { _ = proxy.expire(now: now) }
        }
        let c = proxy.counters
        XCTAssertEqual(c.queries, 20_000)
        XCTAssertEqual(c.queries, malformedQueries + c.localAnswers + c.forwarded + c.duplicates + c.tableFull)
        XCTAssertGreaterThan(c.forwarded, 100)
        XCTAssertGreaterThan(c.replies, 10)
        XCTAssertLessThanOrEqual(proxy.outstandingCount, 64)
    }

    // MARK: Helpers

    func query(id: UInt16, _ name: String, _ type: DNSType, class: DNSClass = .internet) -> [UInt8] {
        DNSMessage(id: id, flags: DNSFlags(rawValue: 0x0100),
                   questions: [DNSQuestion(name: DNSName(name)!, type: type, class: `class`)]).emit()!
    }

    func bytes(_ actions: [DNSAction<TestClient>]) -> [UInt8] {
        switch actions.first {
        case .answer(_, let bytes)?, .forward(_, let bytes)?: return bytes
        case nil: return []
        }
    }

    func rcode(_ actions: [DNSAction<TestClient>]) -> DNSRcode? {
        guard case .answer? = actions.first else { return nil }
        return DNSMessage.parse(bytes(actions))?.flags.rcode
    }

    func answers(_ actions: [DNSAction<TestClient>]) -> [DNSRecord] { DNSMessage.parse(bytes(actions))?.answers ?? [] }
}

/// Random byte mutations for the fuzz tests (SplitMix64, so runs repeat exactly).
struct DNSFuzzGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        for _ in 0..<(1 + next() % 4) {
            switch next() % 5 {
            case 0 where !bytes.isEmpty: bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next())
            case 1 where !bytes.isEmpty: bytes[Int(next() % UInt64(bytes.count))] ^= 1 << (next() % 8)
            case 2: bytes.removeLast(min(bytes.count, Int(1 + next() % 8)))
            case 3: bytes.insert(UInt8(truncatingIfNeeded: next()), at: Int(next() % UInt64(bytes.count + 1)))
            default: if bytes.count > 13 { bytes[12 + Int(next() % UInt64(bytes.count - 12))] = 0xC0 }
            }
        }
        return bytes
    }
}

/// Runs Tests/ProtoTests/Golden/check_dns.py (scapy) over replies the tests produce.
enum DNSScapy {
    static let script = Scapy.script("ProtoTests/Golden/check_dns.py")

    static func requireScapy() throws { try Scapy.require() }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.hex
    }

    /// Writes the cases to a manifest and runs check_dns.py once over it.
    static func check(_ cases: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        try Scapy.check(script: script, manifest: try JSONSerialization.data(withJSONObject: cases), cases: cases.count,
                        file: file, line: line)
    }
}
