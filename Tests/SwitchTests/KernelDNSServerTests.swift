// KernelDNSServer: the DNS proxy on real loopback sockets, UDP and TCP, against a fake upstream resolver.
import Foundation
import Glibc
import XCTest
import Proto
@testable import Switch
import SwitchSys

/// web (10.0.0.5, fd00::5); nothing else.
struct KernelDNSTestHosts: DNSHostTable {
    func address(of hostname: String) -> IPv4Address? { hostname == "web" ? IPv4Address(10, 0, 0, 5) : nil }
    func ipv6Address(of hostname: String) -> IPv6Address? { hostname == "web" ? IPv6Address("fd00::5") : nil }
    func hostname(of address: IPv4Address) -> String? { address == IPv4Address(10, 0, 0, 5) ? "web" : nil }
}

/// An upstream resolver on a loopback UDP socket, served by a thread: it records every query and,
/// when `answering`, replies with one A record, 192.0.2.77, TTL 300.
final class FakeUpstream: @unchecked Sendable {
    static let answerAddress = IPv4Address(192, 0, 2, 77)

    let address: InetSocketAddress
    private let fd: Int32
    private let lock = NSLock()
    private var received: [DNSMessage] = []
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    init(_ host: IPAddress = .v4(IPv4Address(127, 0, 0, 1)), port: UInt16 = 0, answering: Bool) throws {
        let socketAddress = InetSocketAddress(host, port: port)
        let sock = socket(socketAddress.family, Int32(SOCK_DGRAM.rawValue), 0)
        guard sock >= 0 else { throw XCTSkip("socket: \(errno)") }
        guard socketAddress.withSockaddr({ bind(sock, $0, $1) }) == 0 else {
            let e = errno
            close(sock)
            throw XCTSkip("cannot bind a fake upstream at \(socketAddress): \(String(cString: strerror(e)))")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &length) }
        }
        fd = sock
        address = InetSocketAddress(storage)!
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in serve(answering: answering) }
        thread.start()
    }

    var upstream: UpstreamAddress { address.upstream }

    var queries: [DNSMessage] {
        lock.lock(); defer { lock.unlock() }
        return received
    }

    private func serve(answering: Bool) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            lock.lock()
            let stop = stopping
            lock.unlock()
            if stop { break }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
                }
            }
            guard n > 0, let query = DNSMessage.parse(Array(buffer[..<n])), let peer = InetSocketAddress(storage) else { continue }
            lock.lock()
            received.append(query)
            lock.unlock()
            guard answering, let question = query.questions.first else { continue }
            let reply = DNSMessage.makeResponse(to: query, rcode: .noError,
                                                answers: [.a(question.name, Self.answerAddress, ttl: 300)]).emit()!
            _ = reply.withUnsafeBytes { bytes in peer.withSockaddr { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) } }
        }
        done.signal()
    }

    func stop() {
        lock.lock()
        stopping = true
        lock.unlock()
        done.wait()
        close(fd)
    }
}

final class KernelDNSServerTests: XCTestCase {
    let loopback4 = IPAddress.v4(IPv4Address(127, 0, 0, 1))
    let loopback6 = IPAddress.v6(IPv6Address("::1")!)
    let gateway = GatewayIdentity(mac: MACAddress(0x02, 0, 0, 0, 0, 1), ipv4: IPv4Address(10, 0, 0, 1),
                                  subnet: IPv4Subnet("10.0.0.0/24")!, ipv6Prefix: IPv6Address("fd00::")!, mtu: 1500,
                                  domain: "lab.internal", routesBeyondHost: true)
    var cleanups: [() -> Void] = []

    override func tearDown() {
        for cleanup in cleanups.reversed() { cleanup() }
        cleanups = []
        super.tearDown()
    }

    // MARK: Helpers

    /// A started server on 127.0.0.1 and ::1 at a free high port (stopped at tearDown).
    func startServer(upstreams: [UpstreamAddress]?, resolvConfPath: String = "/nonexistent/resolv.conf",
                     upstreamTimeout: Int64? = nil, idleTimeout: Int64? = nil) throws -> (KernelDNSServer, UInt16) {
        var lastError: SwitchError?
        for _ in 0..<20 {
            let port = UInt16.random(in: 20_000...60_000)
            do {
                let server = try KernelDNSServer(network: "test", gateway: gateway, listen: [loopback4, loopback6], port: port,
                                                 upstreams: upstreams, resolvConfPath: resolvConfPath,
                                                 hostTable: KernelDNSTestHosts())
                if let upstreamTimeout { server.upstreamTimeout = upstreamTimeout }
                if let idleTimeout { server.tcpIdleTimeout = idleTimeout }
                try server.start()
                cleanups.append { server.stop() }
                return (server, port)
            } catch {
                lastError = error  // most likely the port is taken: try another
            }
        }
        throw lastError!
    }

    func fakeUpstream(_ host: IPAddress? = nil, port: UInt16 = 0, answering: Bool) throws -> FakeUpstream {
        let upstream = try FakeUpstream(host ?? loopback4, port: port, answering: answering)
        cleanups.append { upstream.stop() }
        return upstream
    }

    func query(id: UInt16, _ name: String, _ type: DNSType) -> [UInt8] {
        DNSMessage(id: id, flags: DNSFlags(rawValue: 0x0100), questions: [DNSQuestion(name: DNSName(name)!, type: type)]).emit()!
    }

    /// What the proxy answers locally: authoritative, with `answers`.
    func localAnswer(to query: [UInt8], _ answers: [DNSRecord], rcode: DNSRcode = .noError) -> [UInt8] {
        DNSMessage.makeResponse(to: DNSMessage.parse(query)!, rcode: rcode, answers: answers, authoritative: true).emit()!
    }

    /// What the fake upstream answers, as the client must receive it (its own ID).
    func upstreamAnswer(to query: [UInt8]) -> [UInt8] {
        let message = DNSMessage.parse(query)!
        return DNSMessage.makeResponse(to: message, rcode: .noError,
                                       answers: [.a(message.questions[0].name, FakeUpstream.answerAddress, ttl: 300)]).emit()!
    }

    func servfail(to query: [UInt8]) -> [UInt8] { DNSMessage.serverFailure(to: DNSMessage.parse(query)!).emit()! }

    func frame(_ message: [UInt8]) -> [UInt8] { [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message }

    /// A blocking socket with a receive timeout, closed at tearDown.
    func clientSocket(_ family: Int32, _ type: Int32, timeout: Int = 3) -> Int32 {
        let fd = socket(family, type, 0)
        precondition(fd >= 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        cleanups.append { close(fd) }
        return fd
    }

    /// Sends `message` over UDP to the server and returns the first datagram back (nil on timeout).
    func udpExchange(_ message: [UInt8], _ host: IPAddress, _ port: UInt16) -> [UInt8]? {
        let server = InetSocketAddress(host, port: port)
        let fd = clientSocket(server.family, Int32(SOCK_DGRAM.rawValue))
        udpSend(message, fd, server)
        return udpReceive(fd)
    }

    func udpSend(_ message: [UInt8], _ fd: Int32, _ server: InetSocketAddress) {
        let n = message.withUnsafeBytes { bytes in server.withSockaddr { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) } }
        XCTAssertEqual(n, message.count)
    }

    func udpReceive(_ fd: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n >= 0 ? Array(buffer[..<n]) : nil
    }

    func tcpConnect(_ host: IPAddress, _ port: UInt16) throws -> Int32 {
        let server = InetSocketAddress(host, port: port)
        let fd = clientSocket(server.family, Int32(SOCK_STREAM.rawValue))
        guard server.withSockaddr({ connect(fd, $0, $1) }) == 0 else {
            throw SwitchError("connect \(server): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    func tcpSend(_ bytes: [UInt8], _ fd: Int32) {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        XCTAssertEqual(n, bytes.count)
    }

    /// Exactly `count` bytes from `fd`, or nil on EOF, error or timeout.
    func tcpRead(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            guard n > 0 else { return nil }
            got += n
        }
        return bytes
    }

    /// One length-prefixed message from `fd`.
    func tcpReadMessage(_ fd: Int32) -> [UInt8]? {
        guard let prefix = tcpRead(fd, 2) else { return nil }
        return tcpRead(fd, Int(prefix[0]) << 8 | Int(prefix[1]))
    }

    /// True when the server closes `fd` (EOF or reset) within the socket's receive timeout.
    func isClosedByServer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Waits up to 2 s for `condition` (counters are published once per turn of the server's loop).
    func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    // MARK: UDP

    func testUDPLocalAnswerOverIPv4AndIPv6() throws {
        let (server, port) = try startServer(upstreams: [])
        let webA = query(id: 0x1111, "web.lab.internal", .a)
        let name = DNSName("web.lab.internal")!
        XCTAssertEqual(udpExchange(webA, loopback4, port), localAnswer(to: webA, [.a(name, IPv4Address(10, 0, 0, 5), ttl: 60)]))
        let webAAAA = query(id: 0x2222, "WEB.lab.internal", .aaaa)
        XCTAssertEqual(udpExchange(webAAAA, loopback6, port),
                       localAnswer(to: webAAAA, [.aaaa(DNSName("WEB.lab.internal")!, IPv6Address("fd00::5")!, ttl: 60)]))
        let ptr = query(id: 0x3333, "5.0.0.10.in-addr.arpa", .ptr)
        XCTAssertEqual(udpExchange(ptr, loopback4, port),
                       localAnswer(to: ptr, [.ptr(DNSName("5.0.0.10.in-addr.arpa")!, name, ttl: 60)]))
        XCTAssertTrue(eventually { server.counters.localAnswers == 3 && server.counters.queries == 3 }, "\(server.counters)")
        XCTAssertEqual(server.transportCounters.udpQueries, 3)
    }

    func testUDPForwardedAnswerKeepsTheClientsID() throws {
        let upstream = try fakeUpstream(answering: true)
        let (server, port) = try startServer(upstreams: [upstream.upstream])
        let example = query(id: 0xBEEF, "example.com", .a)
        XCTAssertEqual(udpExchange(example, loopback4, port), upstreamAnswer(to: example))
        let example6 = query(id: 0x0042, "example.org", .a)
        XCTAssertEqual(udpExchange(example6, loopback6, port), upstreamAnswer(to: example6))
        // The upstream saw the same questions (under IDs of the proxy's choosing).
        XCTAssertEqual(upstream.queries.map(\.questions), [DNSMessage.parse(example)!.questions, DNSMessage.parse(example6)!.questions])
        XCTAssertTrue(eventually { server.counters.forwarded == 2 && server.counters.replies == 2 }, "\(server.counters)")
    }

    func testUDPGarbageIsDroppedAndServiceGoesOn() throws {
        let (server, port) = try startServer(upstreams: [])
        let target = InetSocketAddress(loopback4, port: port)
        let fd = clientSocket(AF_INET, Int32(SOCK_DGRAM.rawValue))
        var generator = SystemRandomNumberGenerator()
        for size in [0, 1, 11, 12, 13, 100, 512, 4000] {
            udpSend((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }, fd, target)
        }
        // A response (QR=1) is not a query either.
        var response = query(id: 7, "web.lab.internal", .a)
        response[2] |= 0x80
        udpSend(response, fd, target)
        let webA = query(id: 8, "web.lab.internal", .a)
        udpSend(webA, fd, target)
        // Only the good query is answered (random bytes could parse as a query; skip whatever does).
        var answer: [UInt8]?
        while let datagram = udpReceive(fd) {
            if DNSMessage.id(of: datagram) == 8 { answer = datagram; break }
        }
        XCTAssertEqual(answer, localAnswer(to: webA, [.a(DNSName("web.lab.internal")!, IPv4Address(10, 0, 0, 5), ttl: 60)]))
        XCTAssertTrue(eventually { server.counters.malformed >= 2 })
    }

    // MARK: TCP

    func testTCPLocalAnswer() throws {
        let (_, port) = try startServer(upstreams: [])
        for host in [loopback4, loopback6] {
            let fd = try tcpConnect(host, port)
            let gatewayA = query(id: 0x5151, "gateway.lab.internal", .a)
            tcpSend(frame(gatewayA), fd)
            XCTAssertEqual(tcpReadMessage(fd),
                           localAnswer(to: gatewayA, [.a(DNSName("gateway.lab.internal")!, IPv4Address(10, 0, 0, 1), ttl: 60)]), "\(host)")
            // The connection stays open for more queries (RFC 7766 §6.2.1).
            let nx = query(id: 0x5152, "nobody.lab.internal", .a)
            tcpSend(frame(nx), fd)
            XCTAssertEqual(tcpReadMessage(fd), localAnswer(to: nx, [], rcode: .nameError), "\(host)")
        }
    }

    func testTCPPipelinedQueriesAndAQuerySplitAcrossWrites() throws {
        let upstream = try fakeUpstream(answering: true)
        let (server, port) = try startServer(upstreams: [upstream.upstream])
        let fd = try tcpConnect(loopback4, port)
        // Three queries in one write: local, forwarded, local. Answers may come in any order (RFC 7766 §6.2.1.1).
        let webA = query(id: 1, "web.lab.internal", .a)
        let example = query(id: 2, "example.com", .a)
        let gatewayAAAA = query(id: 3, "gateway.lab.internal", .aaaa)
        tcpSend(frame(webA) + frame(example) + frame(gatewayAAAA), fd)
        var answers: [UInt16: [UInt8]] = [:]
        for _ in 0..<3 {
            guard let message = tcpReadMessage(fd), let id = DNSMessage.id(of: message) else { return XCTFail("answer missing") }
            answers[id] = message
        }
        XCTAssertEqual(answers[1], localAnswer(to: webA, [.a(DNSName("web.lab.internal")!, IPv4Address(10, 0, 0, 5), ttl: 60)]))
        XCTAssertEqual(answers[2], upstreamAnswer(to: example))
        XCTAssertEqual(answers[3], localAnswer(to: gatewayAAAA, [.aaaa(DNSName("gateway.lab.internal")!, IPv6Address("fd00::1")!, ttl: 60)]))

        // One query in three pieces: half the length prefix, then part of the message, then the rest.
        let split = frame(query(id: 4, "example.net", .a))
        tcpSend(Array(split[..<1]), fd)
        usleep(50_000)
        tcpSend(Array(split[1..<10]), fd)
        usleep(50_000)
        tcpSend(Array(split[10...]), fd)
        XCTAssertEqual(tcpReadMessage(fd), upstreamAnswer(to: query(id: 4, "example.net", .a)))
        // A whole query followed by the start of the next in one write, the rest later.
        let fifth = frame(query(id: 5, "web.lab.internal", .a)), sixth = frame(query(id: 6, "example.org", .a))
        tcpSend(fifth + sixth[..<7], fd)
        XCTAssertEqual(tcpReadMessage(fd).flatMap { DNSMessage.id(of: $0) }, 5)
        usleep(50_000)
        tcpSend(Array(sixth[7...]), fd)
        XCTAssertEqual(tcpReadMessage(fd), upstreamAnswer(to: query(id: 6, "example.org", .a)))
        XCTAssertEqual(upstream.queries.count, 3)
        XCTAssertTrue(eventually { server.counters.queries == 6 && server.counters.replies == 3 }, "\(server.counters)")
    }

    func testTCPGarbageClosesOnlyThatConnection() throws {
        let (server, port) = try startServer(upstreams: [])
        let good = try tcpConnect(loopback4, port)
        let zeroLength = try tcpConnect(loopback4, port)
        let shortLength = try tcpConnect(loopback6, port)
        let notAQuery = try tcpConnect(loopback4, port)
        tcpSend([0, 0], zeroLength)
        tcpSend([0, 5, 1, 2, 3, 4, 5], shortLength)
        var response = query(id: 9, "web.lab.internal", .a)
        response[2] |= 0x80  // QR=1: a response, not a query
        tcpSend(frame(response), notAQuery)
        XCTAssertTrue(isClosedByServer(zeroLength))
        XCTAssertTrue(isClosedByServer(shortLength))
        XCTAssertTrue(isClosedByServer(notAQuery))
        XCTAssertTrue(eventually { server.transportCounters.tcpMalformed == 3 }, "\(server.transportCounters)")

        let webA = query(id: 10, "web.lab.internal", .a)
        let expected = localAnswer(to: webA, [.a(DNSName("web.lab.internal")!, IPv4Address(10, 0, 0, 5), ttl: 60)])
        tcpSend(frame(webA), good)
        XCTAssertEqual(tcpReadMessage(good), expected)
        XCTAssertEqual(udpExchange(webA, loopback4, port), expected)
        XCTAssertEqual(server.connectionCount, 1)
    }

    func testHalfClosedConnectionGetsItsAnswersThenCloses() throws {
        let upstream = try fakeUpstream(answering: true)
        let (server, port) = try startServer(upstreams: [upstream.upstream])
        let fd = try tcpConnect(loopback6, port)
        let example = query(id: 0x0101, "example.com", .a), webA = query(id: 0x0102, "web.lab.internal", .a)
        tcpSend(frame(example) + frame(webA), fd)
        shutdown(fd, Int32(SHUT_WR))
        var ids: Set<UInt16> = []
        for _ in 0..<2 { if let id = tcpReadMessage(fd).flatMap({ DNSMessage.id(of: $0) }) { ids.insert(id) } }
        XCTAssertEqual(ids, [0x0101, 0x0102])
        XCTAssertTrue(isClosedByServer(fd))
        XCTAssertTrue(eventually { server.connectionCount == 0 })
    }

    func testBusyConnectionIsReadAgainAsItsQueriesComplete() throws {
        // More pipelined queries than one connection may have outstanding: the rest wait in the
        // buffer and are taken as SERVFAILs (the upstream is silent) free their places.
        let silent = try fakeUpstream(answering: false)
        let (server, port) = try startServer(upstreams: [silent.upstream], upstreamTimeout: 200_000_000)
        let fd = try tcpConnect(loopback4, port)
        let count = KernelDNSServer.maxQueriesPerConnection + 4
        let queries = (0..<count).map { query(id: UInt16(0x1000 + $0), "host\($0).example.com", .a) }
        tcpSend(queries.flatMap(frame), fd)
        var answers: [UInt16: [UInt8]] = [:]
        for _ in 0..<count {
            guard let message = tcpReadMessage(fd), let id = DNSMessage.id(of: message) else { return XCTFail("answer missing") }
            answers[id] = message
        }
        for query in queries { XCTAssertEqual(answers[DNSMessage.id(of: query)!], servfail(to: query)) }
        XCTAssertEqual(silent.queries.count, count)
        XCTAssertTrue(eventually { server.counters.servfails == UInt64(count) })
    }

    func testIdleTCPConnectionIsClosed() throws {
        let (server, port) = try startServer(upstreams: [], idleTimeout: 300_000_000)
        let fd = try tcpConnect(loopback4, port)
        let webA = query(id: 1, "web.lab.internal", .a)
        tcpSend(frame(webA), fd)
        XCTAssertNotNil(tcpReadMessage(fd))
        let start = Date()
        XCTAssertTrue(isClosedByServer(fd))
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.2)
        XCTAssertTrue(eventually { server.transportCounters.tcpIdleClosed == 1 })
    }

    func testConnectionsBeyondTheLimitAreRefused() throws {
        let (server, port) = try startServer(upstreams: [])
        var open: [Int32] = []
        for _ in 0..<KernelDNSServer.maxConnections { open.append(try tcpConnect(loopback4, port)) }
        XCTAssertTrue(eventually { server.connectionCount == KernelDNSServer.maxConnections })
        let extra = try tcpConnect(loopback4, port)
        XCTAssertTrue(isClosedByServer(extra))
        XCTAssertTrue(eventually { server.transportCounters.tcpRefused == 1 })
        // The open ones still work; closing one makes room again.
        let webA = query(id: 1, "web.lab.internal", .a)
        tcpSend(frame(webA), open[0])
        XCTAssertNotNil(tcpReadMessage(open[0]))
        shutdown(open[1], Socket.shutRDWR)
        XCTAssertTrue(eventually { server.connectionCount == KernelDNSServer.maxConnections - 1 })
        let another = try tcpConnect(loopback4, port)
        tcpSend(frame(webA), another)
        XCTAssertNotNil(tcpReadMessage(another))
    }

    // MARK: Upstream failures

    func testServfailWhenTheUpstreamDoesNotAnswer() throws {
        let silent = try fakeUpstream(answering: false)
        let (server, port) = try startServer(upstreams: [silent.upstream], upstreamTimeout: 300_000_000)
        let udpQuery = query(id: 0x4242, "example.com", .a)
        let tcpQuery = query(id: 0x4343, "example.com", .aaaa)
        let udp = clientSocket(AF_INET, Int32(SOCK_DGRAM.rawValue))
        let tcp = try tcpConnect(loopback6, port)
        let start = Date()
        udpSend(udpQuery, udp, InetSocketAddress(loopback4, port: port))
        tcpSend(frame(tcpQuery), tcp)
        XCTAssertEqual(udpReceive(udp), servfail(to: udpQuery))
        XCTAssertEqual(tcpReadMessage(tcp), servfail(to: tcpQuery))
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.25)
        XCTAssertEqual(silent.queries.count, 2)
        XCTAssertTrue(eventually { server.counters.servfails == 2 }, "\(server.counters)")
        // The TCP connection outlives its failed query.
        let webA = query(id: 1, "web.lab.internal", .a)
        tcpSend(frame(webA), tcp)
        XCTAssertEqual(tcpReadMessage(tcp).flatMap { DNSMessage.id(of: $0) }, 1)
    }

    func testTimeoutMovesToTheNextUpstreamOverIPv6() throws {
        let silent = try fakeUpstream(answering: false)
        let answering = try fakeUpstream(loopback6, answering: true)
        let (server, port) = try startServer(upstreams: [silent.upstream, answering.upstream], upstreamTimeout: 300_000_000)
        let example = query(id: 0x7777, "example.com", .a)
        XCTAssertEqual(udpExchange(example, loopback4, port), upstreamAnswer(to: example))
        XCTAssertEqual(silent.queries.count, 1)
        XCTAssertEqual(answering.queries.count, 1)
        XCTAssertTrue(eventually { server.counters.retries == 1 && server.counters.replies == 1 }, "\(server.counters)")
    }

    func testUpstreamsFollowResolvConf() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchd-kdns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("resolv.conf").path
        // resolv.conf upstreams are on port 53: a fake one on a loopback address of its own.
        let host = IPAddress.v4(IPv4Address(127, 53, UInt8.random(in: 1...254), UInt8.random(in: 1...254)))
        let upstream = try fakeUpstream(host, port: 53, answering: true)
        // Only the gateway itself: excluded, so no upstream and SERVFAIL at once.
        try "nameserver 10.0.0.1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (server, port) = try startServer(upstreams: nil, resolvConfPath: path)
        let example = query(id: 0x1001, "example.com", .a)
        XCTAssertEqual(udpExchange(example, loopback4, port), servfail(to: example))
        try "# changed\nnameserver 10.0.0.1\nnameserver \(host)\n".write(toFile: path, atomically: true, encoding: .utf8)
        // Re-read within 2 s (plus a tick).
        XCTAssertTrue(eventually {
            usleep(100_000)
            return udpExchange(example, loopback4, port) == upstreamAnswer(to: example)
        })
        XCTAssertEqual(upstream.queries.count, 1)
        XCTAssertTrue(eventually { server.counters.replies == 1 }, "\(server.counters)")
    }

    // MARK: Lifecycle

    func testStopIsIdempotentAndReleasesThePort() throws {
        let (first, port) = try startServer(upstreams: [])
        let webA = query(id: 1, "web.lab.internal", .a)
        XCTAssertNotNil(udpExchange(webA, loopback4, port))
        // A client connection still open when the server stops must not keep the port.
        let lingering = try tcpConnect(loopback4, port)
        tcpSend(frame(webA), lingering)
        XCTAssertNotNil(tcpReadMessage(lingering))
        first.stop()
        first.stop()
        XCTAssertTrue(isClosedByServer(lingering))
        XCTAssertThrowsError(try first.start())

        let second = try KernelDNSServer(network: "test", gateway: gateway, listen: [loopback4, loopback6], port: port,
                                         upstreams: [], hostTable: KernelDNSTestHosts())
        cleanups.append { second.stop() }
        try second.start()
        XCTAssertNotNil(udpExchange(webA, loopback6, port))
        let fd = try tcpConnect(loopback4, port)
        tcpSend(frame(webA), fd)
        XCTAssertNotNil(tcpReadMessage(fd))

        // While the second one runs, a third cannot bind, and says where.
        XCTAssertThrowsError(try KernelDNSServer(network: "test", gateway: gateway, listen: [loopback4], port: port,
                                                 upstreams: [], hostTable: KernelDNSTestHosts())) { error in
            XCTAssertEqual((error as? SwitchError)?.description,
                           "DNS: cannot bind 127.0.0.1:\(port)/udp: \(String(cString: strerror(EADDRINUSE)))")
        }
        // A server never started stops cleanly too, and releases its port.
        second.stop()
        let unstarted = try KernelDNSServer(network: "test", gateway: gateway, listen: [loopback4], port: port,
                                            upstreams: [], hostTable: KernelDNSTestHosts())
        unstarted.stop()
        unstarted.stop()
        let again = try KernelDNSServer(network: "test", gateway: gateway, listen: [loopback4], port: port,
                                        upstreams: [], hostTable: KernelDNSTestHosts())
        again.stop()
    }

    func testLinkLocalListenAddressIsAnError() {
        XCTAssertThrowsError(try KernelDNSServer(network: "test", gateway: gateway, listen: [.v6(IPv6Address("fe80::1")!)],
                                                 port: 20_053, upstreams: [], hostTable: KernelDNSTestHosts())) { error in
            XCTAssertEqual((error as? SwitchError)?.description,
                           "DNS: cannot bind [fe80::1]:20053/udp: a link-local address needs an interface")
        }
    }
}
