// ConfigTests: good files parse into the expected specs; every class of mistake names file, line, key and reason.
import Proto
import Switch
import XCTest
@testable import switchd

final class ConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> Config { try Config.parse(yaml: yaml, file: "config.yaml") }

    /// Asserts that `yaml` is refused with exactly `message` (`FILE:LINE: KEY: REASON`).
    private func assertError(_ yaml: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    func testFullNetwork() throws {
        let config = try parse("""
            runDir: /run/sw
            stateDir: /var/lib/sw
            controlGroup: switchd
            networks:
              lab:
                mode: isolated
                subnet: 10.1.0.0/16
                gateway: 10.1.0.254
                mtu: 9000
                macAgeing: 60
                macLimit: 8
                queueFrames: 1024
                ports:
                  - tap: lab0
                    netns: ns1
                    mac: 02:00:00:00:00:01
                  - tap: lab1
                  - link: veth0
              dev:
                mode: isolated
                subnet: 192.168.50.0/29
            """)
        XCTAssertEqual(config.runDir, "/run/sw")
        XCTAssertEqual(config.stateDir, "/var/lib/sw")
        XCTAssertEqual(config.controlGroup, "switchd")
        XCTAssertEqual(config.inertKeys, [])
        XCTAssertEqual(config.networks, [
            NetworkSpec(name: "lab", mode: .isolated, subnet: IPv4Subnet("10.1.0.0/16")!, gateway: IPv4Address("10.1.0.254"),
                        mtu: 9000, macAgeing: 60, macLimit: 8, queueFrames: 1024, ports: [
                            .tap(name: "lab0", netns: "ns1", mac: MACAddress(0x02, 0, 0, 0, 0, 1)),
                            .tap(name: "lab1", netns: nil, mac: nil),
                            .link(interface: "veth0"),
                        ]),
            NetworkSpec(name: "dev", mode: .isolated, subnet: IPv4Subnet("192.168.50.0/29")!),
        ])
    }

    func testDefaults() throws {
        let config = try parse("networks:\n  a:\n    mode: isolated\n    subnet: 172.16.0.0/24\n")
        let spec = try XCTUnwrap(config.networks.first)
        XCTAssertEqual(spec.gateway, IPv4Address("172.16.0.1"))
        XCTAssertEqual(spec.mtu, 1500)
        XCTAssertEqual(spec.macAgeing, 300)
        XCTAssertEqual(spec.macLimit, 64)
        XCTAssertEqual(spec.queueFrames, 256)
        XCTAssertEqual(spec.ports, [])
        XCTAssertNil(config.runDir)
        XCTAssertNil(config.stateDir)
        XCTAssertNil(config.controlGroup)
    }

    func testInertKeysAreCheckedAndReported() throws {
        let config = try parse("""
            networks:
              a:
                mode: isolated
                subnet: 192.168.1.0/24
                dhcp: false
                dhcpRange: 192.168.1.10-192.168.1.20
                leaseTime: 600
                reservations:
                  02:00:00:00:00:05: 192.168.1.5
                dnsProxy: true
                upstreamDNS: [1.1.1.1, "2606:4700::1111"]
                domain: lab.test
                ipv6: false
                ipv6Prefix: fd00:1:2:3::/64
                routerAdvertisement: false
                nat44: false
                nat66: false
                interface: sw-a
                mtu: 576
            """)
        let network = try XCTUnwrap(config.networks.first)
        XCTAssertEqual(network.mtu, 576)
        XCTAssertEqual(config.inertKeys, ["interface", "nat44", "nat66"])
        let services = network.services
        XCTAssertFalse(services.dhcp)
        XCTAssertEqual(services.dhcpRange, IPv4Address(192, 168, 1, 10)...IPv4Address(192, 168, 1, 20))
        XCTAssertEqual(services.leaseTime, 600)
        XCTAssertEqual(services.reservations, [MACAddress("02:00:00:00:00:05")!: IPv4Address(192, 168, 1, 5)])
        XCTAssertEqual(services.upstreamDNS, [IPAddress("1.1.1.1")!, IPAddress("2606:4700::1111")!])
        XCTAssertEqual(network.domain, "lab.test")
        XCTAssertFalse(services.ipv6)
        XCTAssertNil(network.ipv6Prefix, "no prefix without IPv6")
        XCTAssertFalse(services.routerAdvertisement)
    }

    func testServiceDefaults() throws {
        let config = try parse("""
            networks:
              lab:
                mode: isolated
                subnet: 10.1.0.0/24
            """)
        let network = try XCTUnwrap(config.networks.first)
        XCTAssertTrue(network.services.dhcp && network.services.dnsProxy && network.services.routerAdvertisement)
        XCTAssertEqual(network.domain, "lab.internal")
        let prefix = try XCTUnwrap(network.ipv6Prefix)
        XCTAssertEqual(prefix.high >> 56, 0xFD, "a ULA prefix")
        XCTAssertEqual(prefix.low, 0)
        XCTAssertEqual(prefix, network.ipv6Prefix, "derived the same way every time")
        XCTAssertFalse(network.gatewayMAC.isMulticast)
    }

    func testLimaFileIsRefusedOnlyForItsModes() throws {
        let text = try String(contentsOfFile: try limaExample(), encoding: .utf8)
        XCTAssertThrowsError(try Config.parse(yaml: text, file: "networks.yaml")) { error in
            let error = error as! ConfigError
            XCTAssertEqual(error.file, "networks.yaml")
            XCTAssertEqual(error.line, 31) // `mode: shared` under vmnet.shared, not line 16 under Lima's own networks:
            XCTAssertEqual(error.key, "vmnet.shared.mode")
            XCTAssertEqual(error.reason, "mode shared needs the uplink port, not implemented yet; use mode: isolated")
        }
        // The same file with isolated modes (and distinct subnets) is accepted: Lima's other sections are ignored.
        let isolated = text.replacingOccurrences(of: "    mode: shared\n    dhcp", with: "    mode: isolated\n    dhcp")
            .replacingOccurrences(of: "    mode: host\n    dhcp", with: "    mode: isolated\n    dhcp")
        let config = try Config.parse(yaml: isolated, file: "networks.yaml")
        XCTAssertEqual(config.networks.map(\.name), ["shared", "host"])
        XCTAssertEqual(config.networks.map(\.subnet.description), ["192.168.107.0/24", "192.168.108.0/24"])
        XCTAssertTrue(config.inertKeys.contains("nat66"))
    }

    func testNamesThatYAMLReadsAsNumbersStayText() throws {
        // YAML 1.1 reads 12:34:56:12:34:56 as a base-60 integer; a MAC is still meant.
        let config = try parse("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        mac: 12:34:56:12:34:56\n")
        XCTAssertEqual(config.networks.first?.ports, [.tap(name: "t0", netns: nil, mac: MACAddress(0x12, 0x34, 0x56, 0x12, 0x34, 0x56))])
    }

    func testBuiltInDefault() {
        XCTAssertEqual(Config.builtIn.networks, [NetworkSpec(name: "default", mode: .isolated, subnet: IPv4Subnet("192.168.109.0/24")!)])
    }

    // MARK: errors, one per class

    func testModes() {
        assertError("networks:\n  a:\n    subnet: 10.0.0.0/24\n",
                    "config.yaml:2: networks.a.mode: not given, so it defaults to shared, which needs the uplink port, not implemented yet; use mode: isolated")
        assertError("networks:\n  a:\n    subnet: 10.0.0.0/24\n    mode: host\n",
                    "config.yaml:4: networks.a.mode: mode host needs the uplink port, not implemented yet; use mode: isolated")
        assertError("networks:\n  a:\n    mode: bridged\n", "config.yaml:3: networks.a.mode: \"bridged\" is not one of isolated, host, shared")
    }

    func testRangeError() {
        assertError("""
            networks:
              lab:
                mode: isolated
                subnet: 10.0.0.0/24


                mtu: 70000
            """, "config.yaml:7: networks.lab.mtu: 70000 is out of range 1280..65520")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    mtu: 1000\n",
                    "config.yaml:5: networks.a.mtu: 1000 is out of range 1280..65520")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    queueFrames: 0\n",
                    "config.yaml:5: networks.a.queueFrames: 0 is out of range 1..65536")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    macLimit: 5000\n",
                    "config.yaml:5: networks.a.macLimit: 5000 is out of range 1..4096")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    macAgeing: -1\n",
                    "config.yaml:5: networks.a.macAgeing: -1 is out of range 1..86400")
    }

    func testWrongTypes() {
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    mtu: big\n",
                    "config.yaml:5: networks.a.mtu: expected an integer, got \"big\"")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    dhcp: \"yes\"\n",
                    "config.yaml:5: networks.a.dhcp: expected true or false, got \"yes\"")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: [10.0.0.0/24]\n",
                    "config.yaml:4: networks.a.subnet: expected a string, got a list")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports: {tap: x}\n",
                    "config.yaml:5: networks.a.ports: expected a list, got a map")
        assertError("networks: []\n", "config.yaml:1: networks: expected a map, got a list")
        assertError("networks:\n  a:\n", "config.yaml:2: networks.a: expected a map, got nothing")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    upstreamDNS: 1.1.1.1\n",
                    "config.yaml:5: networks.a.upstreamDNS: expected a list, got \"1.1.1.1\"")
    }

    func testUnknownKeys() {
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    mtus: 1500\n",
                    "config.yaml:5: networks.a.mtus: unknown key")
        assertError("netwroks: {}\n", "config.yaml:1: netwroks: unknown key (expected networks, runDir, stateDir, controlGroup)")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        vlan: 3\n",
                    "config.yaml:7: networks.a.ports[0].vlan: unknown key (a port is {tap: NAME, netns: NS, mac: MAC} or {link: IFACE})")
        // Lima's own sections only pass in a Lima file.
        assertError("paths: {}\nnetworks: {}\n", "config.yaml:1: paths: unknown key (expected networks, runDir, stateDir, controlGroup)")
    }

    func testBadValues() {
        let head = "networks:\n  a:\n    mode: isolated\n"
        assertError(head + "    subnet: 10.0.0.1/24\n",
                    "config.yaml:4: networks.a.subnet: \"10.0.0.1/24\" is not an IPv4 subnet like 192.168.109.0/24 (host bits zero)")
        assertError(head + "    subnet: 10.0.0.0/8\n", "config.yaml:4: networks.a.subnet: prefix length /8 is out of range /16../29")
        assertError(head + "    subnet: 10.0.0.0/30\n", "config.yaml:4: networks.a.subnet: prefix length /30 is out of range /16../29")
        assertError(head + "    subnet: 10.0.0.0/24\n    gateway: 10.0.1.1\n",
                    "config.yaml:5: networks.a.gateway: 10.0.1.1 is not a host address of 10.0.0.0/24")
        assertError(head + "    subnet: 10.0.0.0/24\n    gateway: 10.0.0.255\n",
                    "config.yaml:5: networks.a.gateway: 10.0.0.255 is not a host address of 10.0.0.0/24")
        assertError(head, "config.yaml:2: networks.a.subnet: is required")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - tap: averyveryverylongname\n",
                    "config.yaml:6: networks.a.ports[0].tap: interface name \"averyveryverylongname\" is longer than 15 characters")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        mac: 02:00:00:00:00\n",
                    "config.yaml:7: networks.a.ports[0].mac: \"02:00:00:00:00\" is not a MAC address like 02:00:00:00:00:01")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        mac: 01:00:5e:00:00:01\n",
                    "config.yaml:7: networks.a.ports[0].mac: 01:00:5e:00:00:01 is not a unicast address")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - link: eth0\n        netns: x\n",
                    "config.yaml:7: networks.a.ports[0].netns: only tap ports take netns and mac")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        link: eth0\n",
                    "config.yaml:6: networks.a.ports[0]: a port is either tap or link, not both")
        assertError(head + "    subnet: 10.0.0.0/24\n    ports:\n      - netns: x\n",
                    "config.yaml:6: networks.a.ports[0]: a port needs tap: NAME or link: IFACE")
        assertError(head + "    subnet: 10.0.0.0/24\n    dhcpRange: 10.0.0.1-10.0.0.9\n",
                    "config.yaml:5: networks.a.dhcpRange: 10.0.0.1-10.0.0.9 includes the gateway 10.0.0.1")
        assertError(head + "    subnet: 10.0.0.0/24\n    reservations:\n      02:00:00:00:00:01: 10.9.0.1\n",
                    "config.yaml:6: networks.a.reservations.02:00:00:00:00:01: 10.9.0.1 is not a host address of 10.0.0.0/24")
        assertError("runDir: run\nnetworks: {}\n", "config.yaml:1: runDir: \"run\" must be an absolute path")
    }

    func testNetworkNames() {
        assertError("networks:\n  Lab:\n    mode: isolated\n    subnet: 10.0.0.0/24\n",
                    "config.yaml:2: networks.Lab: \"Lab\" is not a valid network name (a lowercase letter, then up to 11 of a-z, 0-9, -)")
        assertError("networks:\n  abcdefghijklm:\n    mode: isolated\n    subnet: 10.0.0.0/24\n",
                    "config.yaml:2: networks.abcdefghijklm: \"abcdefghijklm\" is not a valid network name (a lowercase letter, then up to 11 of a-z, 0-9, -)")
        XCTAssertNoThrow(try parse("networks:\n  abcdefghijkl:\n    mode: isolated\n    subnet: 10.0.0.0/24\n"))
        XCTAssertNoThrow(try parse("networks:\n  a-1:\n    mode: isolated\n    subnet: 10.0.0.0/24\n"))
    }

    func testAcrossNetworks() {
        assertError("""
            networks:
              a:
                mode: isolated
                subnet: 10.0.0.0/16
              b:
                mode: isolated
                subnet: 10.0.5.0/24
            """, "config.yaml:7: networks.b.subnet: 10.0.5.0/24 overlaps networks.a.subnet 10.0.0.0/16 (line 4)")
        assertError("""
            networks:
              a:
                mode: isolated
                subnet: 10.0.0.0/24
                ports: [{tap: t0}]
              b:
                mode: isolated
                subnet: 10.1.0.0/24
                ports: [{link: t0}]
            """, "config.yaml:9: networks.b.ports[0].link: interface t0 is already used by networks.a.ports[0].tap")
    }

    func testFileLevelErrors() {
        assertError("", "config.yaml: the file is empty")
        assertError("runDir: /x\n", "config.yaml:1: networks: is required (or vmnet: in Lima's networks.yaml)")
        assertError("networks: {}\n", "config.yaml:1: networks: defines no networks")
        XCTAssertThrowsError(try parse("networks:\n  a: [\n")) { error in
            let error = error as! ConfigError
            XCTAssertEqual(error.file, "config.yaml")
            XCTAssertNotNil(error.line)
            XCTAssertTrue(error.reason.hasPrefix("YAML: "), error.reason)
        }
        XCTAssertThrowsError(try parse("networks:\n  a:\n    mode: isolated\n    mode: isolated\n")) { error in
            let error = error as! ConfigError
            XCTAssertEqual(error.key, "mode")
            XCTAssertEqual(error.reason, "duplicate key")
            XCTAssertNotNil(error.line)
        }
        XCTAssertThrowsError(try Config.load(file: "/nonexistent/switchd.yaml")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/switchd.yaml: cannot read: No such file or directory")
        }
    }
}

/// `shared/examples/lima-networks.yaml`, which sits beside the repository (DESIGN.md's folder).
func limaExample(file: String = #filePath) throws -> String {
    var repo = file
    for _ in 0..<3 { repo = (repo as NSString).deletingLastPathComponent }  // Tests/switchdTests/X.swift
    for candidate in ["\(repo)/../shared/examples/lima-networks.yaml", "/work/shared/examples/lima-networks.yaml"]
        where FileManager.default.fileExists(atPath: candidate) {
        return candidate
    }
    if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("shared/examples/lima-networks.yaml not found") }
    throw XCTSkip("shared/examples/lima-networks.yaml is not beside the repository")
}
