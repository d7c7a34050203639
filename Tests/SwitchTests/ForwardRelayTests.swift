// ForwardRelayTests: the port-forward relay end to end on loopback: a forward manager's thread
// relays TCP (both half-closes) and UDP to a "guest" on 127.0.0.2, refuses a forward whose host
// name has no lease with a reset, and frees its ports when a forward is removed. Blocking test
// sockets carry a receive timeout only so that a broken relay fails the test instead of hanging it.
import Glibc
import Proto
@testable import Switch
import SwitchSys
import XCTest

final class ForwardRelayTests: XCTestCase {
    private let guest = IPv4Address(127, 0, 0, 2)

    /// A host network on 127.0.0.0/24 (gateway 127.0.0.1), so that 127.0.0.2 is a valid guest.
    private func manager(leases: [String: IPv4Address] = [:]) -> PortForwards {
        PortForwards(network: NetworkSpec(name: "lab", mode: .host, subnet: IPv4Subnet("127.0.0.0/24")!),
                       resolveName: { leases[$0] }, installTable: { _ throws(SwitchError) in })
    }

    /// A blocking socket bound to `address` (port 0: any), with a 5 s receive timeout; its port.
    private func socket(_ type: Int32, _ address: IPv4Address, port: UInt16 = 0) throws -> (fd: Int32, port: UInt16) {
        let fd = Glibc.socket(AF_INET, type, 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try Socket.bind(fd, to: InetSocketAddress(.v4(address), port: port))
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, try XCTUnwrap(InetSocketAddress(storage)).port)
    }

    /// A port on 127.0.0.1 that was free a moment ago.
    private func freePort(_ type: Int32) throws -> UInt16 {
        let (fd, port) = try socket(type, IPv4Address(127, 0, 0, 1))
        close(fd)
        return port
    }

    private func connect(_ fd: Int32, _ port: UInt16) -> Int32 {
        InetSocketAddress(.v4(IPv4Address(127, 0, 0, 1)), port: port).withSockaddr { Glibc.connect(fd, $0, $1) }
    }

    private func sendAll(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }, bytes.count)
    }

    /// Everything until end of input (or an error: nil).
    private func receiveAll(_ fd: Int32) -> String? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return String(decoding: data, as: UTF8.self) }
            if n < 0 { return nil }
            data += buffer[0..<n]
        }
    }

    private func forward(_ proto: ForwardProtocol, hostPort: UInt16, guest: String, guestPort: UInt16) -> PortForwardSpec {
        PortForwardSpec(proto: proto, hostAddress: .v4(IPv4Address(127, 0, 0, 1)), hostPorts: PortRange(first: Int(hostPort), last: Int(hostPort))!,
                        guest: ForwardTarget(guest)!, guestPorts: PortRange(first: Int(guestPort), last: Int(guestPort))!)
    }

    func testTCPBothHalfClosesAndARefusal() throws {
        let (listener, guestPort) = try socket(SOCK_STREAM_TYPE, guest)
        defer { close(listener) }
        XCTAssertEqual(listen(listener, 4), 0)
        let hostPort = try freePort(SOCK_STREAM_TYPE), ghostPort = try freePort(SOCK_STREAM_TYPE)
        let m = manager(leases: ["web": guest])
        _ = try m.add([forward(.tcp, hostPort: hostPort, guest: "web", guestPort: guestPort),
                       forward(.tcp, hostPort: ghostPort, guest: "ghost", guestPort: guestPort)])
        try m.start()
        defer { m.stop() }

        let (client, _) = try socket(SOCK_STREAM_TYPE, IPv4Address(127, 0, 0, 1))
        defer { close(client) }
        XCTAssertEqual(connect(client, hostPort), 0)
        let server = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(server, 0)
        defer { close(server) }
        sendAll(client, "hello")
        shutdown(client, Int32(SHUT_WR))
        XCTAssertEqual(receiveAll(server), "hello", "the client's FIN reaches the guest after its bytes")
        sendAll(server, "world")
        shutdown(server, Int32(SHUT_WR))
        XCTAssertEqual(receiveAll(client), "world", "and the guest's back")

        // No lease: the connection is accepted and reset, never relayed.
        let (refused, _) = try socket(SOCK_STREAM_TYPE, IPv4Address(127, 0, 0, 1))
        defer { close(refused) }
        XCTAssertEqual(connect(refused, ghostPort), 0)
        var byte: UInt8 = 0
        let n = recv(refused, &byte, 1, 0)
        let error = errno
        XCTAssertTrue(n == 0 || (n < 0 && error == ECONNRESET),
                      "refused at once (reset or end of input), not left to the receive timeout: \(n), errno \(error)")
        XCTAssertEqual(m.list().map(\.state), ["active", "unresolved"])

        // Removed: the port is free again when remove returns.
        _ = try m.remove(id: "tcp:127.0.0.1:\(hostPort)")
        let (again, _) = try socket(SOCK_STREAM_TYPE, IPv4Address(127, 0, 0, 1), port: hostPort)
        close(again)
    }

    func testUDPRepliesFindTheirClient() throws {
        let (server, guestPort) = try socket(SOCK_DGRAM_TYPE, guest)
        defer { close(server) }
        let hostPort = try freePort(SOCK_DGRAM_TYPE)
        let m = manager()
        _ = try m.add([forward(.udp, hostPort: hostPort, guest: "127.0.0.2", guestPort: guestPort)])
        try m.start()
        defer { m.stop() }

        let (client, _) = try socket(SOCK_DGRAM_TYPE, IPv4Address(127, 0, 0, 1))
        defer { close(client) }
        XCTAssertEqual(connect(client, hostPort), 0)
        sendAll(client, "ping")
        var buffer = [UInt8](repeating: 0, count: 64)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(server, raw.baseAddress, raw.count, 0, $0, &length) } }
        }
        XCTAssertEqual(n, 4)
        let reply = Array("pong".utf8)
        _ = reply.withUnsafeBytes { raw in
            withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(server, raw.baseAddress, raw.count, 0, $0, length) } }
        }
        let m2 = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        XCTAssertEqual(m2, 4)
        XCTAssertEqual(String(decoding: buffer[0..<max(0, m2)], as: UTF8.self), "pong")
    }
}

private let SOCK_STREAM_TYPE = Int32(SOCK_STREAM.rawValue)
private let SOCK_DGRAM_TYPE = Int32(SOCK_DGRAM.rawValue)
