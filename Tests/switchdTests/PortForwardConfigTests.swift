// PortForwardConfigTests: `portForwards` in the configuration file (every error names file, line,
// key and reason) and the forward ops of the control socket (decoding, round trip, permissions).
import Proto
import Switch
import XCTest
@testable import switchd

final class PortForwardConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> Config {
        try Config.parse(yaml: yaml, file: "config.yaml", interfaceInUse: { _ in false })
    }

    /// A shared network `lab` (10.9.0.0/24) with `forwards` as its portForwards lines (line 6 on).
    private func network(_ forwards: String, mode: String = "shared", extra: String = "") -> String {
        """
        networks:
          lab:
            mode: \(mode)
            subnet: 10.9.0.0/24\(extra)
            portForwards:
        \(forwards)
        """
    }

    private func assertError(_ yaml: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    func testParsesForwards() throws {
        let config = try parse(network("""
                - {proto: tcp, hostAddress: 192.0.2.1, hostPort: 8080, guest: web, guestPort: 80}
                - {proto: udp, hostPort: "5000-5001", guest: 10.9.0.5}
                - {proto: tcp, hostAddress: "fd99::1", hostPort: 443, guest: "fd00:1::10"}
            """, extra: "\n    ipv6Prefix: fd00:1::/64"))
        let forwards = config.networks[0].portForwards
        XCTAssertEqual(forwards.map(\.id), ["tcp:192.0.2.1:8080", "udp:127.0.0.1:5000-5001", "udp:[::1]:5000-5001", "tcp:[fd99::1]:443"])
        XCTAssertEqual(forwards[0].guest, .name("web"))
        XCTAssertEqual(forwards[0].guestPorts.description, "80")
        XCTAssertEqual(forwards[1].guestPorts.description, "5000-5001", "guestPort defaults to hostPort")
        XCTAssertEqual(forwards[1].guest, .address(.v4(IPv4Address(10, 9, 0, 5))))
    }

    func testErrors() {
        let at = "config.yaml:6: networks.lab.portForwards[0]"
        assertError(network("    - {proto: sctp, hostPort: 80, guest: web}"), "\(at).proto: \"sctp\" is not tcp or udp")
        assertError(network("    - {proto: tcp, hostPort: 0, guest: web}"), "\(at).hostPort: port 0 is out of range 1..65535")
        assertError(network("    - {proto: tcp, hostPort: 70000, guest: web}"), "\(at).hostPort: port 70000 is out of range 1..65535")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: web, guestPort: 65536}"),
                    "\(at).guestPort: port 65536 is out of range 1..65535")
        assertError(network("    - {proto: tcp, hostPort: 8080-8089, guest: web, guestPort: 80-81}"),
                    "\(at).guestPort: 80-81 has 2 ports but hostPort 8080-8089 has 10: the ranges must be of the same length")
        assertError(network("    - {proto: tcp, guest: web}"), "\(at).hostPort: is required")
        assertError(network("    - {hostPort: 80, guest: web}"), "\(at).proto: is required")
        assertError(network("    - {proto: tcp, hostPort: 80}"), "\(at).guest: is required")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: web, port: 1}"),
                    "\(at).port: unknown key (a port forward is {proto, hostAddress, hostPort, guest, guestPort})")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: \"not a name\"}"),
                    "\(at).guest: \"not a name\" is neither an IP address nor a DHCP host name")
        assertError(network("    - {proto: tcp, hostAddress: here, hostPort: 80, guest: web}"),
                    "\(at).hostAddress: \"here\" is not an IPv4 or IPv6 address")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: 10.8.0.5}"),
                    "\(at).guest: 10.8.0.5 is not a host address of the network's subnet 10.9.0.0/24")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: \"fd00:1::5\"}", extra: "\n    ipv6: false"),
                    "config.yaml:7: networks.lab.portForwards[0].guest: fd00:1::5 is an IPv6 address, but the network has ipv6: false")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: \"fd00:2::5\"}", extra: "\n    ipv6Prefix: fd00:1::/64"),
                    "config.yaml:7: networks.lab.portForwards[0].guest: fd00:2::5 is not in the network's prefix fd00:1::/64")
        assertError(network("    - {proto: tcp, hostPort: 80, guest: web}", mode: "isolated"),
                    "config.yaml:6: networks.lab.portForwards: port forwards need a host or shared network: an isolated network "
                    + "has no uplink, and switchd has no TCP/IP stack of its own to end connections on the guest side "
                    + "(README \"Port forwarding\")")
    }

    func testOverlapsWithinAndAcrossNetworks() {
        assertError(network("""
                - {proto: tcp, hostPort: 8080-8089, guest: web}
                - {proto: udp, hostPort: 8080, guest: web}
                - {proto: tcp, hostAddress: 127.0.0.1, hostPort: 8085, guest: db}
            """), "config.yaml:8: networks.lab.portForwards[2].hostPort: tcp:127.0.0.1:8085 overlaps "
                + "networks.lab.portForwards[0] (tcp:127.0.0.1:8080-8089) at line 6")
        assertError("""
            networks:
              lab:
                subnet: 10.9.0.0/24
                portForwards: [{proto: udp, hostAddress: 0.0.0.0, hostPort: 53, guest: dns}]
              dev:
                mode: host
                subnet: 10.10.0.0/24
                portForwards:
                  - {proto: udp, hostAddress: 192.0.2.1, hostPort: 53, guest: 10.10.0.2}
            """, "config.yaml:9: networks.dev.portForwards[0].hostPort: udp:192.0.2.1:53 overlaps "
                + "networks.lab.portForwards[0] (udp:0.0.0.0:53) at line 4")
    }

    // MARK: Control socket

    private func decode(_ text: String) throws -> ControlRequest { try ControlRequest(line: Array(text.utf8)) }

    func testForwardRequests() throws {
        let add = try decode(#"{"op":"forwardAdd","network":"lab","proto":"tcp","hostPort":"8080-8081","guest":"web","guestPort":"80-81"}"#)
        guard case .forwardAdd(let network, let request) = add else { return XCTFail("\(add)") }
        XCTAssertEqual(network, "lab")
        XCTAssertEqual(request.specs.map(\.id), ["tcp:127.0.0.1:8080-8081", "tcp:[::1]:8080-8081"])
        XCTAssertEqual(try decode(#"{"op":"forwardDel","network":"lab","id":"tcp:[::1]:80"}"#), .forwardDel(network: "lab", selector: .id("tcp:[::1]:80")))
        XCTAssertEqual(try decode(#"{"op":"forwardList","network":"lab"}"#), .forwardList(network: "lab"))
        for request in [add, .forwardDel(network: "lab", selector: .ports(proto: .udp, hostAddress: IPAddress("::1"), hostPorts: try PortRange.parse("53").get())),
                        .forwardList(network: "x")] {
            XCTAssertEqual(try ControlRequest(line: Array(request.line.dropLast())), request)
        }
        XCTAssertThrowsError(try decode(#"{"op":"forwardAdd","network":"lab","proto":"icmp","hostPort":"1","guest":"web"}"#)) {
            XCTAssertEqual("\($0)", "proto \"icmp\" is not tcp or udp")
        }
        XCTAssertThrowsError(try decode(#"{"op":"forwardAdd","network":"lab","proto":"tcp","hostPort":"0","guest":"web"}"#)) {
            XCTAssertEqual("\($0)", "hostPort: port 0 is out of range 1..65535")
        }
        XCTAssertTrue(add.changesSwitch)
        XCTAssertTrue(ControlRequest.forwardDel(network: "a", selector: .id("x")).changesSwitch)
        XCTAssertFalse(ControlRequest.forwardList(network: "a").changesSwitch, "listing is read-only")
    }

    func testForwardAddNeedsPrivilege() {
        let service = ControlService(handler: FakeHandler(), privilegedUIDs: [0])
        let user = PeerCredentials(pid: 2, uid: 4242, gid: 4242)
        let reply = service.reply(to: Array(#"{"op":"forwardAdd","network":"lab","proto":"tcp","hostPort":"80","guest":"web"}"#.utf8), from: user)
        XCTAssertFalse(reply.ok)
        XCTAssertTrue(reply.error?.hasPrefix("permission denied: forwardAdd needs root") == true, reply.error ?? "")
    }
}
