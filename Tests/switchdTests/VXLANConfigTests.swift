// VXLANConfigTests: the `vxlan` key of a network: its values, its defaults, every mistake located,
// and the MTU checked against the interface that holds `local` (here `lo`, MTU 65536, on every machine).
import Proto
import Switch
import XCTest
@testable import switchd

final class VXLANConfigTests: XCTestCase {
    private func parse(_ vxlan: String, mtu: Int? = nil) throws -> NetworkSpec {
        let yaml = """
            networks:
              lab:
                mode: isolated
                subnet: 10.1.0.0/24
            \(mtu.map { "    mtu: \($0)\n" } ?? "")    vxlan: \(vxlan)
            """
        return try Config.parse(yaml: yaml, file: "config.yaml", interfaceInUse: { _ in false }).networks[0]
    }

    private func assertError(_ vxlan: String, mtu: Int? = nil, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(vxlan, mtu: mtu), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    func testParsesWithDefaults() throws {
        let spec = try parse("{vni: 42, local: 127.0.0.1, remotes: [127.0.0.2, 127.0.0.3]}")
        XCTAssertEqual(spec.vxlan, VXLANSpec(vni: 42, port: 4789, local: .v4(IPv4Address(127, 0, 0, 1)),
                                             remotes: [.v4(IPv4Address(127, 0, 0, 2)), .v4(IPv4Address(127, 0, 0, 3))]))
        let custom = try parse("{vni: 16777215, port: 8472, local: 127.0.0.1, remotes: [10.0.0.2]}", mtu: 9000)
        XCTAssertEqual(custom.vxlan?.port, 8472)
        XCTAssertEqual(custom.vxlan?.vni, 0xFF_FFFF)
    }

    func testIPv6Underlay() throws {
        let spec = try parse("{vni: 7, local: \"::1\", remotes: [\"fd00::2\"]}")
        XCTAssertEqual(spec.vxlan?.local, .v6(IPv6Address("::1")!))
        // 65466 + 70 = 65536 fits lo; one more does not (the IPv4 overhead would still fit).
        XCTAssertNoThrow(try parse("{vni: 7, local: \"::1\", remotes: [\"fd00::2\"]}", mtu: 65466))
        assertError("{vni: 7, local: \"::1\", remotes: [\"fd00::2\"]}", mtu: 65467,
                    "config.yaml:5: networks.lab.mtu: mtu 65467 + 70 bytes of VXLAN over IPv6 is more than the MTU 65536 "
                    + "of lo, the interface that holds vxlan.local ::1: set mtu to at most 65466")
    }

    func testMTUMustFitTheUnderlay() throws {
        XCTAssertNoThrow(try parse("{vni: 1, local: 127.0.0.1, remotes: [127.0.0.2]}", mtu: 65486))
        assertError("{vni: 1, local: 127.0.0.1, remotes: [127.0.0.2]}", mtu: 65500,
                    "config.yaml:5: networks.lab.mtu: mtu 65500 + 50 bytes of VXLAN over IPv4 is more than the MTU 65536 "
                    + "of lo, the interface that holds vxlan.local 127.0.0.1: set mtu to at most 65486")
        // TEST-NET-1 (RFC 5737) is on no interface here.
        assertError("{vni: 1, local: 192.0.2.55, remotes: [192.0.2.56]}",
                    "config.yaml:5: networks.lab.vxlan.local: no interface of this host holds 192.0.2.55, so mtu cannot be "
                    + "checked against the underlay (vxlan.local must be an address of this host)")
    }

    func testMistakesNameTheirKey() {
        assertError("{local: 127.0.0.1, remotes: [127.0.0.2]}", "config.yaml:5: networks.lab.vxlan.vni: is required")
        assertError("{vni: 1, remotes: [127.0.0.2]}", "config.yaml:5: networks.lab.vxlan.local: is required")
        assertError("{vni: 1, local: 127.0.0.1}", "config.yaml:5: networks.lab.vxlan.remotes: is required")
        assertError("{vni: 1, local: 127.0.0.1, remotes: []}", "config.yaml:5: networks.lab.vxlan.remotes: lists no remote VTEP")
        assertError("{vni: 16777216, local: 127.0.0.1, remotes: [127.0.0.2]}",
                    "config.yaml:5: networks.lab.vxlan.vni: 16777216 is out of range 0..16777215")
        assertError("{vni: 1, port: 0, local: 127.0.0.1, remotes: [127.0.0.2]}",
                    "config.yaml:5: networks.lab.vxlan.port: 0 is out of range 1..65535")
        assertError("{vni: 1, local: host.example, remotes: [127.0.0.2]}",
                    "config.yaml:5: networks.lab.vxlan.local: \"host.example\" is not an IPv4 or IPv6 address")
        assertError("{vni: 1, local: 127.0.0.1, remotes: [239.1.1.1]}",
                    "config.yaml:5: networks.lab.vxlan.remotes[0]: 239.1.1.1 is not a unicast address (multicast VTEP "
                    + "groups are not supported: list each remote)")
        assertError("{vni: 1, local: 127.0.0.1, remotes: [127.0.0.2, 127.0.0.2]}",
                    "config.yaml:5: networks.lab.vxlan.remotes[1]: 127.0.0.2 is listed twice")
        assertError("{vni: 1, local: 127.0.0.1, remotes: [127.0.0.1]}",
                    "config.yaml:5: networks.lab.vxlan.remotes[0]: 127.0.0.1 is vxlan.local itself")
        assertError("{vni: 1, local: 127.0.0.1, remotes: [\"fd00::2\"]}",
                    "config.yaml:5: networks.lab.vxlan.remotes[0]: fd00::2 is not of the family of vxlan.local 127.0.0.1 "
                    + "(one underlay family per network)")
        assertError("{vni: 1, local: \"fe80::1\", remotes: [\"fe80::2\"]}",
                    "config.yaml:5: networks.lab.vxlan.local: fe80::1 is link-local; use a global or ULA underlay address")
        assertError("{vni: 1, group: 239.1.1.1, local: 127.0.0.1, remotes: [127.0.0.2]}",
                    "config.yaml:5: networks.lab.vxlan.group: unknown key (vxlan is {vni: N, port: 4789, local: ADDR, remotes: [ADDR, ...]})")
    }
}
