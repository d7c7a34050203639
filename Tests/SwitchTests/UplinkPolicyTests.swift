// UplinkPolicyTests: the nftables ruleset of each mode, spotting other tables' drop policies, and
// the sysctl record that survives a crash.
import Foundation
import Proto
@testable import Switch
import XCTest

final class UplinkPolicyTests: XCTestCase {
    private func spec(_ mode: NetworkMode, nat44: Bool = true, nat66: Bool = true, ipv6: Bool = true) -> NetworkSpec {
        var spec = NetworkSpec(name: "lab", mode: mode, subnet: IPv4Subnet("192.168.107.0/24")!)
        spec.nat44 = nat44
        spec.nat66 = nat66
        spec.services.ipv6 = ipv6
        spec.services.ipv6Prefix = IPv6Address("fd00:1:2:3::")
        return spec
    }

    private func rules(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: " \t") }
    }

    func testSharedMasqueradesBothFamiliesAndRejectsNewInbound() {
        let text = Firewall.ruleset(spec(.shared))
        let lines = rules(text)
        XCTAssertEqual(Array(lines.prefix(3)), ["table inet switchd-lab", "delete table inet switchd-lab", "table inet switchd-lab {"])
        XCTAssertTrue(lines.contains("ip saddr 192.168.107.0/24 ip daddr != 192.168.107.0/24 oifname != \"sw-lab\" masquerade"))
        XCTAssertTrue(lines.contains("ip6 saddr fd00:1:2:3::/64 ip6 daddr != fd00:1:2:3::/64 oifname != \"sw-lab\" masquerade"))
        XCTAssertTrue(lines.contains("oifname \"sw-lab\" ct state established,related accept"))
        XCTAssertTrue(lines.contains("oifname \"sw-lab\" reject with icmpx type admin-prohibited"))
        XCTAssertFalse(text.contains("fib daddr"), "shared with both NATs keeps nothing at the host")
        XCTAssertTrue(lines.contains("iifname != { \"lo\", \"sw-lab\" } ip daddr 192.168.107.1 meta l4proto { tcp, udp } th dport 53 reject with icmpx type admin-prohibited"),
                      "the DNS proxy is for the network's clients only")
        XCTAssertTrue(lines.contains("iifname != { \"lo\", \"sw-lab\" } ip6 daddr fd00:1:2:3::1 meta l4proto { tcp, udp } th dport 53 reject with icmpx type admin-prohibited"))
    }

    func testHostRejectsEverythingBeyondTheHostBeforeRouting() {
        let text = Firewall.ruleset(spec(.host))
        let lines = rules(text)
        XCTAssertTrue(lines.contains("iifname \"sw-lab\" fib daddr type != { local, broadcast, multicast } meta l4proto tcp reject with tcp reset"))
        XCTAssertTrue(lines.contains("iifname \"sw-lab\" fib daddr type != { local, broadcast, multicast } reject with icmpx type admin-prohibited"))
        XCTAssertFalse(text.contains("masquerade"), "host mode translates nothing")
        XCTAssertFalse(text.contains("postrouting"))
    }

    func testSharedWithoutNAT66KeepsIPv6AtTheHost() {
        let lines = rules(Firewall.ruleset(spec(.shared, nat66: false)))
        XCTAssertTrue(lines.contains("iifname \"sw-lab\" meta nfproto ipv6 fib daddr type != { local, broadcast, multicast } reject with icmpx type admin-prohibited"))
        XCTAssertFalse(lines.contains { $0.hasPrefix("ip6 saddr") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("ip saddr 192.168.107.0/24") })
        // Without IPv6 at all there is no IPv6 masquerade either.
        XCTAssertFalse(Firewall.ruleset(spec(.shared, ipv6: false)).contains("ip6 saddr"))
    }

    func testCustomInterfaceNameIsUsed() {
        var s = spec(.shared)
        s.interface = "vmnet0"
        XCTAssertEqual(s.uplink, "vmnet0")
        XCTAssertTrue(Firewall.ruleset(s).contains("iifname \"vmnet0\" accept"))
        XCTAssertNil(spec(.isolated).uplink)
        XCTAssertEqual(Firewall.ruleset(spec(.isolated)), "")
    }

    func testBlockingChainsOfOtherTables() {
        let listing = """
        table ip filter {
        \tchain FORWARD {
        \t\ttype filter hook forward priority filter; policy drop;
        \t}
        \tchain INPUT {
        \t\ttype filter hook input priority filter; policy drop;
        \t}
        }
        table inet switchd-lab {
        \tchain forward {
        \t\ttype filter hook forward priority filter; policy drop;
        \t}
        }
        table inet fw {
        \tchain fwd {
        \t\ttype filter hook forward priority filter; policy accept;
        \t}
        }
        """
        XCTAssertEqual(Firewall.blockingChains(in: listing),
                       ["table ip filter chain FORWARD drops forwarded packets by default (policy drop)"])
    }

    func testSysctlRecordRestoresAfterACrash() throws {
        let dir = NSTemporaryDirectory() + "sysctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A stand-in for /proc/sys/net/ipv4/ip_forward.
        let knob = dir + "/ip_forward"
        XCTAssertNoThrow(try Sysctl.writeFile(knob, "0\n"))

        let first = Sysctl(stateDir: dir)
        try first.set(knob, to: "1")
        XCTAssertEqual(Sysctl.read(knob), "1")
        XCTAssertEqual(Sysctl.readFile(dir + "/sysctls"), "\(knob) 0\n", "the old value is on disk before the change")
        try first.set(knob, to: "1")
        XCTAssertEqual(Sysctl.readFile(dir + "/sysctls"), "\(knob) 0\n", "recorded once")

        // `first` dies without restoring (SIGKILL): the next start restores from the record.
        let second = Sysctl(stateDir: dir, root: dir + "/")
        XCTAssertEqual(second.recover(), ["\(knob) = 0"])
        XCTAssertEqual(Sysctl.read(knob), "0")
        XCTAssertNil(Sysctl.readFile(dir + "/sysctls"), "the record is gone once restored")
        XCTAssertEqual(second.recover(), [])
    }

    func testSysctlRestoreOnCleanExit() throws {
        let dir = NSTemporaryDirectory() + "sysctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a", b = dir + "/b"
        XCTAssertNoThrow(try Sysctl.writeFile(a, "0\n"))
        XCTAssertNoThrow(try Sysctl.writeFile(b, "1\n"))
        let sysctl = Sysctl(stateDir: dir)
        try sysctl.set(a, to: "1")
        try sysctl.set(b, to: "1")  // already 1: nothing recorded, nothing to restore
        XCTAssertEqual(sysctl.previous.map(\.path), [a])
        sysctl.restoreAll()
        XCTAssertEqual(Sysctl.read(a), "0")
        XCTAssertEqual(Sysctl.read(b), "1")
        XCTAssertNil(Sysctl.readFile(dir + "/sysctls"))
    }
}
