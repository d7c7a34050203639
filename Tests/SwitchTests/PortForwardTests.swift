// PortForwardTests: the port-forward model (ranges, overlaps, engines, checks), the nftables text
// of DNAT forwards, and the bookkeeping of `PortForwards` (add, conflicts, names followed through
// lookups, the table re-applied only on change, remove, reload), without threads or nft.
import Proto
@testable import Switch
import XCTest

final class PortForwardTests: XCTestCase {
    private func network(_ mode: NetworkMode = .shared, nat44: Bool = true, nat66: Bool = true) -> NetworkSpec {
        var spec = NetworkSpec(name: "lab", mode: mode, subnet: IPv4Subnet("192.168.107.0/24")!)
        spec.nat44 = nat44
        spec.nat66 = nat66
        spec.services.ipv6Prefix = IPv6Address("fd00:1:2:3::")
        return spec
    }

    private func forward(_ proto: ForwardProtocol = .tcp, _ host: String = "10.0.0.1", _ hostPorts: String = "8080",
                         _ guest: String = "web", _ guestPorts: String? = nil) -> PortForwardSpec {
        let hp = try! PortRange.parse(hostPorts).get()
        return PortForwardSpec(proto: proto, hostAddress: IPAddress(host)!, hostPorts: hp, guest: ForwardTarget(guest)!,
                               guestPorts: guestPorts.map { try! PortRange.parse($0).get() } ?? hp)
    }

    private func lines(_ text: String) -> [String] { text.split(separator: "\n").map { $0.trimmingCharacters(in: " \t") } }

    // MARK: Model

    func testPortRanges() throws {
        XCTAssertEqual(try PortRange.parse("8080").get().description, "8080")
        XCTAssertEqual(try PortRange.parse("8080-8089").get().count, 10)
        XCTAssertEqual(try PortRange.parse("1-65535").get().count, 65535)
        for (text, message) in [("0", "port 0 is out of range 1..65535"), ("65536", "port 65536 is out of range 1..65535"),
                                ("90-80", "\"90-80\" is not a range: 90 is above 80"),
                                ("http", "\"http\" is not a port or a range like 8080 or 8080-8089"),
                                ("1-2-3", "\"1-2-3\" is not a port or a range like 8080 or 8080-8089")] {
            XCTAssertThrowsError(try PortRange.parse(text).get(), text) { XCTAssertEqual(($0 as? PortRangeProblem)?.message, message) }
        }
        let a = try PortRange.parse("8080-8089").get()
        XCTAssertTrue(a.overlaps(try PortRange.parse("8089-9000").get()))
        XCTAssertFalse(a.overlaps(try PortRange.parse("8090").get()))
    }

    func testTargetsAndIDs() {
        XCTAssertEqual(ForwardTarget("web.lab.internal"), .name("web"))
        XCTAssertEqual(ForwardTarget("Web"), .name("web"))
        XCTAssertEqual(ForwardTarget("192.168.107.5"), .address(.v4(IPv4Address(192, 168, 107, 5))))
        XCTAssertNil(ForwardTarget("-bad"))
        XCTAssertNil(ForwardTarget("under_score"))
        XCTAssertEqual(forward(.udp, "::1", "5000-5009").id, "udp:[::1]:5000-5009")
        XCTAssertEqual(forward(.tcp, "127.0.0.1", "8080", "web", "80").summary, "tcp:127.0.0.1:8080 -> web:80")
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "9000-9009", "web", "8000-8009").guestPort(for: 9003), 8003)
    }

    func testConflicts() {
        XCTAssertTrue(forward(.tcp, "10.0.0.1", "8080-8090").conflicts(with: forward(.tcp, "10.0.0.1", "8090")))
        XCTAssertFalse(forward(.tcp, "10.0.0.1", "8080").conflicts(with: forward(.udp, "10.0.0.1", "8080")), "other protocol")
        XCTAssertFalse(forward(.tcp, "10.0.0.1", "8080").conflicts(with: forward(.tcp, "10.0.0.2", "8080")), "other address")
        XCTAssertTrue(forward(.tcp, "0.0.0.0", "8080").conflicts(with: forward(.tcp, "10.0.0.2", "8080")), "wildcard")
        XCTAssertFalse(forward(.tcp, "0.0.0.0", "8080").conflicts(with: forward(.tcp, "::1", "8080")), "other family")
        XCTAssertTrue(forward(.tcp, "::", "8080").conflicts(with: forward(.tcp, "::1", "8080")))
    }

    func testEngines() {
        XCTAssertEqual(forward(.tcp, "10.0.0.1").engine(on: network()), .dnat)
        XCTAssertEqual(forward(.tcp, "127.0.0.1").engine(on: network()), .relay, "the kernel never routes loopback out")
        XCTAssertEqual(forward(.tcp, "::1").engine(on: network()), .relay)
        XCTAssertEqual(forward(.tcp, "10.0.0.1").engine(on: network(.host)), .relay, "host mode does not forward")
        XCTAssertEqual(forward(.tcp, "10.0.0.1").engine(on: network(nat44: false)), .relay)
        XCTAssertEqual(forward(.tcp, "fd99::1", "80", "fd00:1:2:3::10").engine(on: network()), .dnat)
        XCTAssertEqual(forward(.tcp, "fd99::1", "80", "fd00:1:2:3::10").engine(on: network(nat66: false)), .relay)
        XCTAssertEqual(forward(.tcp, "fd99::1", "80", "web").engine(on: network()), .relay, "IPv6 host, IPv4 lease: relayed")
    }

    func testProblems() {
        XCTAssertNil(forward().problem(on: network()))
        XCTAssertEqual(forward().problem(on: network(.isolated))?.message.hasPrefix("port forwards need a host or shared network"), true)
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "8080-8081", "web", "80").problem(on: network())?.field, "guestPort")
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "80", "10.9.9.9").problem(on: network())?.message,
                       "10.9.9.9 is not a host address of the network's subnet 192.168.107.0/24")
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "80", "192.168.107.1").problem(on: network())?.message,
                       "192.168.107.1 is the gateway, not a guest")
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "80", "fd00:9::5").problem(on: network())?.message,
                       "fd00:9::5 is not in the network's prefix fd00:1:2:3::/64")
        var noIPv6 = network()
        noIPv6.services.ipv6 = false
        XCTAssertEqual(forward(.tcp, "10.0.0.1", "80", "fd00:1:2:3::5").problem(on: noIPv6)?.message,
                       "fd00:1:2:3::5 is an IPv6 address, but the network has ipv6: false")
        XCTAssertEqual(forward(.tcp, "224.0.0.1").problem(on: network())?.field, "hostAddress")
        XCTAssertEqual(forward(.tcp, "fe80::1").problem(on: network())?.field, "hostAddress")
    }

    // MARK: nftables

    func testDNATRules() {
        let rules = [
            ForwardRule(forward: forward(.tcp, "10.0.0.1", "8080"), target: .v4(IPv4Address(192, 168, 107, 5))),
            ForwardRule(forward: forward(.udp, "10.0.0.1", "7001", "web", "7000"), target: .v4(IPv4Address(192, 168, 107, 5))),
            ForwardRule(forward: forward(.tcp, "10.0.0.1", "9000-9001", "web", "8080-8081"), target: .v4(IPv4Address(192, 168, 107, 5))),
            ForwardRule(forward: forward(.tcp, "fd99::1", "8082", "fd00:1:2:3::10", "8080"), target: .v6(IPv6Address("fd00:1:2:3::10")!)),
            ForwardRule(forward: forward(.tcp, "0.0.0.0", "2222", "web", "22"), target: .v4(IPv4Address(192, 168, 107, 5))),
            ForwardRule(forward: forward(.tcp, "10.0.0.1", "8099", "ghost", "80"), target: nil),
            ForwardRule(forward: forward(.udp, "10.0.0.1", "8099", "ghost", "80"), target: nil),
        ]
        let text = Firewall.ruleset(network(), forwards: rules)
        let all = lines(text)
        let expected = [
            "fib daddr type local ip daddr 10.0.0.1 tcp dport 8080 dnat ip to 192.168.107.5",
            "fib daddr type local ip daddr 10.0.0.1 udp dport 7001 dnat ip to 192.168.107.5:7000",
            "fib daddr type local ip daddr 10.0.0.1 tcp dport 9000-9001 dnat ip to 192.168.107.5 : tcp dport map { 9000 : 8080, 9001 : 8081 }",
            "fib daddr type local ip6 daddr fd99::1 tcp dport 8082 dnat ip6 to [fd00:1:2:3::10]:8080",
            "fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 2222 dnat ip to 192.168.107.5:22",
        ]
        for rule in expected {
            XCTAssertTrue(all.contains("iifname != \"sw-lab\" " + rule), "prerouting: \(rule)")
            XCTAssertTrue(all.contains(rule), "output: \(rule)")
        }
        XCTAssertTrue(text.contains("chain forwards-in {\n\t\ttype nat hook prerouting priority dstnat; policy accept;"))
        XCTAssertTrue(text.contains("chain forwards-local {\n\t\ttype nat hook output priority -100; policy accept;"))
        XCTAssertTrue(all.contains("fib daddr type local ip daddr 10.0.0.1 tcp dport 8099 reject with tcp reset"))
        XCTAssertTrue(all.contains("fib daddr type local ip daddr 10.0.0.1 udp dport 8099 reject with icmpx type port-unreachable"))
        XCTAssertFalse(text.contains("192.168.107.5 tcp dport 8099"), "no DNAT without a target")
        // DNATed connections pass the forward chain before its rejects.
        let accept = all.firstIndex(of: "oifname \"sw-lab\" ct status dnat accept")
        let reject = all.firstIndex(of: "oifname \"sw-lab\" meta l4proto tcp reject with tcp reset")
        XCTAssertNotNil(accept)
        XCTAssertLessThan(accept ?? .max, reject ?? .min)
    }

    func testNoForwardsNoNATChains() {
        let text = Firewall.ruleset(network(.host))
        XCTAssertFalse(text.contains("forwards-in"))
        XCTAssertFalse(text.contains("dnat ip"))
    }

    // MARK: Manager

    /// A manager over a fake lease table and a recorded "table"; never started (no thread, no nft).
    private final class Harness: @unchecked Sendable {
        var leases: [String: IPv4Address] = [:]
        var installs: [[ForwardRule]] = []
        var failInstall = false
        lazy var manager = PortForwards(
            network: {
                var spec = NetworkSpec(name: "lab", mode: .shared, subnet: IPv4Subnet("192.168.107.0/24")!)
                spec.services.ipv6Prefix = IPv6Address("fd00:1:2:3::")
                return spec
            }(),
            resolveName: { [unowned self] in self.leases[$0] },
            installTable: { [unowned self] rules throws(SwitchError) in
                if self.failInstall { throw SwitchError("nft says no") }
                self.installs.append(rules)
            })
    }

    func testManagerFollowsNamesAndInstallsOnlyOnChange() throws {
        let h = Harness()
        h.leases["web"] = IPv4Address(192, 168, 107, 5)
        let added = try h.manager.add([forward(.tcp, "10.0.0.1", "8080"), forward(.tcp, "10.0.0.1", "8081", "ghost")])
        XCTAssertEqual(added.map(\.state), ["active", "unresolved"])
        XCTAssertEqual(added.map(\.resolved), ["192.168.107.5", nil])
        XCTAssertEqual(h.installs.count, 1)
        XCTAssertEqual(h.installs.last?.map(\.target), [.v4(IPv4Address(192, 168, 107, 5)), nil])

        h.manager.refresh()
        XCTAssertEqual(h.installs.count, 1, "nothing changed: the table is left alone")

        h.leases["web"] = IPv4Address(192, 168, 107, 9)
        h.leases["ghost"] = IPv4Address(192, 168, 107, 7)
        h.manager.refresh()
        XCTAssertEqual(h.installs.count, 2)
        XCTAssertEqual(h.installs.last?.map(\.target), [.v4(IPv4Address(192, 168, 107, 9)), .v4(IPv4Address(192, 168, 107, 7))])

        h.leases["web"] = nil
        h.manager.refresh()
        XCTAssertEqual(h.manager.list().first?.state, "unresolved")
        XCTAssertEqual(h.installs.last?.first?.target, nil, "a lost lease turns the DNAT into a refusal")
    }

    func testManagerRefusesConflictsAndBadForwards() throws {
        let h = Harness()
        _ = try h.manager.add([forward(.tcp, "10.0.0.1", "8080-8090")])
        XCTAssertThrowsError(try h.manager.add([forward(.tcp, "10.0.0.1", "8085")])) {
            XCTAssertEqual("\($0)", "forward tcp:10.0.0.1:8085 -> web:8085: host ports overlap forward tcp:10.0.0.1:8080-8090 -> web:8080-8090")
        }
        XCTAssertThrowsError(try h.manager.add([forward(.tcp, "10.0.0.1", "9000-9001", "web", "80")])) {
            XCTAssertTrue("\($0)".contains("guestPort: 80 has 1 port but hostPort 9000-9001 has 2"), "\($0)")
        }
        // All or none: the second of one request conflicts with the first.
        XCTAssertThrowsError(try h.manager.add([forward(.udp, "10.0.0.1", "53"), forward(.udp, "10.0.0.1", "53")]))
        XCTAssertEqual(h.manager.list().count, 1)
        // A table that cannot be installed undoes the add.
        h.failInstall = true
        XCTAssertThrowsError(try h.manager.add([forward(.udp, "10.0.0.1", "53")])) { XCTAssertEqual("\($0)", "nft says no") }
        XCTAssertEqual(h.manager.list().count, 1)
    }

    func testManagerRemoveAndReload() throws {
        let h = Harness()
        let config = [forward(.tcp, "10.0.0.1", "8080"), forward(.udp, "10.0.0.1", "8080")]
        _ = try h.manager.add(config, fromConfig: true)
        _ = try h.manager.add([forward(.tcp, "10.0.0.1", "9090")])
        XCTAssertEqual(h.manager.list().map(\.origin), ["config", "config", "runtime"])
        XCTAssertEqual(try h.manager.remove(id: nil, proto: .udp, hostAddress: nil, hostPorts: try PortRange.parse("8080").get()),
                       ["udp:10.0.0.1:8080"])
        XCTAssertThrowsError(try h.manager.remove(id: "tcp:10.0.0.1:1")) {
            XCTAssertTrue("\($0)".hasPrefix("no forward tcp:10.0.0.1:1 on network lab"), "\($0)")
        }
        // A reload: the configuration's forwards again, the runtime ones gone.
        try h.manager.replace(with: config)
        XCTAssertEqual(h.manager.list().map(\.id), ["tcp:10.0.0.1:8080", "udp:10.0.0.1:8080"])
        XCTAssertEqual(h.manager.list().map(\.origin), ["config", "config"])
    }
}
