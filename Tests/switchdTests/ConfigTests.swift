// ConfigTests: good files parse into the expected specs; every class of mistake names file, line, key and reason.
import Proto
import Switch
import XCTest
@testable import switchd

final class ConfigTests: XCTestCase {
    /// The machine as the tests see it: `eth-taken` and `sw-taken` exist and are not switchd's.
    private static func interfaceInUse(_ name: String) -> Bool { name == "eth-taken" || name == "sw-taken" }

    private func parse(_ yaml: String) throws -> Config {
        try Config.parse(yaml: yaml, file: "config.yaml", interfaceInUse: Self.interfaceInUse)
    }

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

    /// Every default of docs/DESIGN.md §5 for a network that gives only its subnet.
    func testDefaults() throws {
        let config = try parse("networks:\n  lab:\n    subnet: 172.16.0.0/24\n")
        XCTAssertNil(config.runDir)
        XCTAssertNil(config.stateDir)
        XCTAssertNil(config.controlGroup)
        let spec = try XCTUnwrap(config.networks.first)
        XCTAssertEqual(config.networks, [NetworkSpec(name: "lab", mode: .shared, subnet: IPv4Subnet("172.16.0.0/24")!)])
        XCTAssertEqual(spec.mode, .shared)
        XCTAssertEqual(spec.gateway, IPv4Address("172.16.0.1"))
        XCTAssertEqual(spec.mtu, 1500)
        XCTAssertEqual(spec.macAgeing, 300)
        XCTAssertEqual(spec.macLimit, 64)
        XCTAssertEqual(spec.queueFrames, 256)
        XCTAssertEqual(spec.ports, [])
        XCTAssertTrue(spec.nat44)
        XCTAssertTrue(spec.nat66)
        XCTAssertNil(spec.interface)
        XCTAssertEqual(spec.uplink, "sw-lab")
        let services = spec.services
        XCTAssertTrue(services.dhcp)
        XCTAssertNil(services.dhcpRange, "second host .. last host")
        XCTAssertEqual(services.leaseTime, 3600)
        XCTAssertEqual(services.reservations, [:])
        XCTAssertTrue(services.dnsProxy)
        XCTAssertNil(services.upstreamDNS, "the host's resolv.conf")
        XCTAssertNil(services.domain)
        XCTAssertEqual(spec.domain, "lab.internal")
        XCTAssertTrue(services.ipv6)
        XCTAssertNil(services.ipv6Prefix)
        XCTAssertNotNil(spec.ipv6Prefix, "a ULA derived from the name")
        XCTAssertTrue(services.routerAdvertisement)
    }

    func testEveryKey() throws {
        let config = try parse("""
            networks:
              a:
                mode: shared
                subnet: 192.168.1.0/24
                gateway: 192.168.1.254
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
                interface: up-a
                mtu: 576
                macAgeing: 60
                macLimit: 8
                queueFrames: 1024
                ports: [{tap: a0}]
            """)
        let network = try XCTUnwrap(config.networks.first)
        XCTAssertEqual(network.mode, .shared)
        XCTAssertEqual(network.gateway, IPv4Address(192, 168, 1, 254))
        XCTAssertEqual(network.mtu, 576)
        XCTAssertEqual(network.macAgeing, 60)
        XCTAssertEqual(network.macLimit, 8)
        XCTAssertEqual(network.queueFrames, 1024)
        XCTAssertEqual(network.ports, [.tap(name: "a0", netns: nil, mac: nil)])
        XCTAssertFalse(network.nat44)
        XCTAssertFalse(network.nat66)
        XCTAssertEqual(network.interface, "up-a")
        XCTAssertEqual(network.uplink, "up-a")
        let services = network.services
        XCTAssertFalse(services.dhcp)
        XCTAssertEqual(services.dhcpRange, IPv4Address(192, 168, 1, 10)...IPv4Address(192, 168, 1, 20))
        XCTAssertEqual(services.leaseTime, 600)
        XCTAssertEqual(services.reservations, [MACAddress("02:00:00:00:00:05")!: IPv4Address(192, 168, 1, 5)])
        XCTAssertTrue(services.dnsProxy)
        XCTAssertEqual(services.upstreamDNS, [IPAddress("1.1.1.1")!, IPAddress("2606:4700::1111")!])
        XCTAssertEqual(network.domain, "lab.test")
        XCTAssertFalse(services.ipv6)
        XCTAssertNil(network.ipv6Prefix, "no prefix without IPv6")
        XCTAssertFalse(services.routerAdvertisement)
    }

    func testPortSecurity() throws {
        let config = try parse("""
            networks:
              lab:
                mode: isolated
                subnet: 10.1.0.0/24
                portSecurity: {routerAdvertisement: false}
                ports:
                  - {tap: t0}
                  - {tap: t1, portSecurity: false}
                  - {tap: t2, portSecurity: {ip: false}}
                  - {link: l0}
                  - {link: l1, portSecurity: {mac: true}}
                  - {link: l2, portSecurity: true}
              open:
                mode: isolated
                subnet: 10.2.0.0/24
                portSecurity: false
            """)
        let lab = try XCTUnwrap(config.networks.first { $0.name == "lab" })
        var noRA = PortSecuritySpec.all
        noRA.routerAdvertisement = false
        XCTAssertEqual(lab.portSecurity, noRA)
        XCTAssertNil(lab.portSecurityByPort["t0"], "no setting of its own: the network's")
        XCTAssertEqual(lab.portSecurityByPort["t1"], PortSecuritySpec.none)
        var t2 = noRA
        t2.ip = false
        XCTAssertEqual(lab.portSecurityByPort["t2"], t2, "a map changes the network's guards for a TAP")
        XCTAssertNil(lab.portSecurityByPort["l0"])
        var l1 = PortSecuritySpec.none
        l1.mac = true
        XCTAssertEqual(lab.portSecurityByPort["l1"], l1, "a map changes no guards for a link")
        XCTAssertEqual(lab.portSecurityByPort["l2"], PortSecuritySpec.all)
        XCTAssertEqual(config.networks.first { $0.name == "open" }?.portSecurity, PortSecuritySpec.none)
        XCTAssertEqual(try parse("networks:\n  a:\n    subnet: 10.0.0.0/24\n").networks.first?.portSecurity, .all, "on by default")

        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    portSecurity: {arp: false}\n",
                    "config.yaml:5: networks.a.portSecurity.arp: unknown guard (portSecurity is true, false, or a map of mac, ip, neighbor, dhcpServer, routerAdvertisement to true/false)")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    portSecurity: strict\n",
                    "config.yaml:5: networks.a.portSecurity: expected true or false, got \"strict\"")
        assertError("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports:\n      - {tap: t0, portSecurity: {ip: 1}}\n",
                    "config.yaml:6: networks.a.ports[0].portSecurity.ip: expected true or false, got \"1\"")
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

    /// The example file, loaded by path: only `vmnet:` is read, and it is Lima's two defaults.
    func testLimaFile() throws {
        let path = try limaExample()
        var asked: [String] = []
        let config = try Config.load(file: path, interfaceInUse: { asked.append($0); return false })
        XCTAssertEqual(asked, ["sw-shared", "sw-host"], "the uplinks are checked against the machine's interfaces")
        XCTAssertEqual(config.networks.map(\.name), ["shared", "host"])
        XCTAssertEqual(config.networks.map(\.mode), [.shared, .host])
        XCTAssertEqual(config.networks.map(\.subnet.description), ["192.168.107.0/24", "192.168.108.0/24"])
        XCTAssertEqual(config.networks.map(\.uplink), ["sw-shared", "sw-host"])
        // Its host network sets nat44/nat66 (ignored outside shared) and routerAdvertisement: false (ignored in host mode).
        XCTAssertTrue(config.networks[1].services.routerAdvertisement)
        XCTAssertEqual(config.networks, Config.builtIn.networks, "the file spells out the built-in default")
        XCTAssertNil(config.runDir)

        // Lima's sections are not validated, but vmnet: is.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let bad = text.replacingOccurrences(of: "    mtu: 1500\n    nat44: true\n    nat66: true\n    # host",
                                            with: "    mtu: 100\n    nat44: true\n    nat66: true\n    # host")
        XCTAssertThrowsError(try Config.parse(yaml: bad, file: "networks.yaml", interfaceInUse: { _ in false })) { error in
            XCTAssertEqual("\(error)", "networks.yaml:43: vmnet.host.mtu: 100 is out of range 1280..65520")
        }
    }

    func testNamesThatYAMLReadsAsNumbersStayText() throws {
        // YAML 1.1 reads 12:34:56:12:34:56 as a base-60 integer; a MAC is still meant.
        let config = try parse("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports:\n      - tap: t0\n        mac: 12:34:56:12:34:56\n")
        XCTAssertEqual(config.networks.first?.ports, [.tap(name: "t0", netns: nil, mac: MACAddress(0x12, 0x34, 0x56, 0x12, 0x34, 0x56))])
    }

    func testBuiltInDefault() {
        let networks = Config.builtIn.networks
        XCTAssertEqual(networks, [
            NetworkSpec(name: "shared", mode: .shared, subnet: IPv4Subnet("192.168.107.0/24")!),
            NetworkSpec(name: "host", mode: .host, subnet: IPv4Subnet("192.168.108.0/24")!),
        ])
        XCTAssertEqual(networks.map(\.uplink), ["sw-shared", "sw-host"])
        XCTAssertEqual(networks.map(\.gateway), [IPv4Address(192, 168, 107, 1), IPv4Address(192, 168, 108, 1)])
        XCTAssertNil(Config.builtIn.runDir)
    }

    // MARK: modes and the uplink

    func testModes() throws {
        let networks = try parse("""
            networks:
              s:
                subnet: 10.0.0.0/24
              h:
                mode: host
                subnet: 10.1.0.0/24
              i:
                mode: isolated
                subnet: 10.2.0.0/24
            """).networks
        XCTAssertEqual(networks.map(\.mode), [.shared, .host, .isolated], "shared when not given")
        XCTAssertEqual(networks.map(\.uplink), ["sw-s", "sw-h", nil])
        assertError("networks:\n  a:\n    mode: bridged\n", "config.yaml:3: networks.a.mode: \"bridged\" is not one of isolated, host, shared")
    }

    /// NAT is shared only: the flags are type-checked everywhere and ignored elsewhere; without IPv6 there is no NAT66.
    func testNAT() throws {
        let host = try XCTUnwrap(parse("networks:\n  h:\n    mode: host\n    subnet: 10.1.0.0/24\n    nat44: true\n    nat66: true\n    ipv6: false\n").networks.first)
        XCTAssertFalse(host.nat66, "accepted on a host network without IPv6, and off")
        let shared = try XCTUnwrap(parse("networks:\n  s:\n    subnet: 10.1.0.0/24\n    ipv6: false\n").networks.first)
        XCTAssertTrue(shared.nat44)
        XCTAssertFalse(shared.nat66, "not given and no IPv6: off, no error")
        let isolated = try XCTUnwrap(parse("networks:\n  i:\n    mode: isolated\n    subnet: 10.1.0.0/24\n    nat44: false\n").networks.first)
        XCTAssertFalse(isolated.nat44)
        assertError("networks:\n  i:\n    mode: isolated\n    subnet: 10.1.0.0/24\n    nat66: 1\n",
                    "config.yaml:5: networks.i.nat66: expected true or false, got \"1\"")
    }

    /// Host mode ignores routerAdvertisement, as Lima does: the RA goes out with router lifetime 0.
    func testRouterAdvertisementIsIgnoredInHostMode() throws {
        let networks = try parse("""
            networks:
              h:
                mode: host
                subnet: 10.1.0.0/24
                routerAdvertisement: false
              s:
                subnet: 10.2.0.0/24
                routerAdvertisement: false
            """).networks
        XCTAssertEqual(networks.map(\.services.routerAdvertisement), [true, false])
        assertError("networks:\n  h:\n    mode: host\n    subnet: 10.1.0.0/24\n    routerAdvertisement: no-thanks\n",
                    "config.yaml:5: networks.h.routerAdvertisement: expected true or false, got \"no-thanks\"")
    }

    func testInterfaceInUseIsAskedOnlyForUplinks() throws {
        var asked: [String] = []
        let config = try Config.parse(yaml: """
            networks:
              a:
                subnet: 10.0.0.0/24
                interface: up-a
              b:
                mode: host
                subnet: 10.1.0.0/24
              c:
                mode: isolated
                subnet: 10.2.0.0/24
                ports: [{tap: c0}]
            """, file: "config.yaml", interfaceInUse: { asked.append($0); return $0 == "c0" })
        XCTAssertEqual(asked, ["up-a", "sw-b"])
        XCTAssertEqual(config.networks.map(\.interface), ["up-a", nil, nil])
        XCTAssertEqual(config.networks.map(\.uplink), ["up-a", "sw-b", nil])
    }

    /// One bad file per mistake, each with the exact message (`FILE:LINE: KEY: REASON`).
    func testBadConfigs() {
        let cases: [(yaml: String, message: String)] = [
            // Overlapping subnets.
            ("networks:\n  a:\n    subnet: 10.0.0.0/16\n  b:\n    subnet: 10.0.5.0/24\n",
             "config.yaml:5: networks.b.subnet: 10.0.5.0/24 overlaps networks.a.subnet 10.0.0.0/16 (line 3)"),
            // Gateway outside its subnet.
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    gateway: 10.0.1.1\n",
             "config.yaml:4: networks.a.gateway: 10.0.1.1 is not a host address of 10.0.0.0/24"),
            // NAT66 on a shared network without IPv6.
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    ipv6: false\n    nat66: true\n",
             "config.yaml:5: networks.a.nat66: nat66 needs IPv6, but ipv6 is false"),
            // An uplink that exists on the machine and is not ours: given, then the default sw-NAME.
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    interface: eth-taken\n",
             "config.yaml:4: networks.a.interface: interface eth-taken already exists (not created by this switchd); choose another with interface:"),
            ("networks:\n  taken:\n    mode: host\n    subnet: 10.0.0.0/24\n",
             "config.yaml:2: networks.taken.interface: interface sw-taken already exists (not created by this switchd); choose another with interface:"),
            // Interface names.
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    interface: averyveryverylongname\n",
             "config.yaml:4: networks.a.interface: interface name \"averyveryverylongname\" is longer than 15 characters"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    interface: \"up/0\"\n",
             "config.yaml:4: networks.a.interface: \"up/0\" is not a valid interface name"),
            ("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    interface: up-a\n",
             "config.yaml:5: networks.a.interface: interface is the uplink of host and shared networks; isolated networks have none"),
            // One interface name used twice: two uplinks, an uplink and another network's default, an uplink and a tap.
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    interface: up0\n  b:\n    mode: host\n    subnet: 10.1.0.0/24\n    interface: up0\n",
             "config.yaml:8: networks.b.interface: interface up0 is already used by networks.a.interface"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n  b:\n    subnet: 10.1.0.0/24\n    interface: sw-a\n",
             "config.yaml:6: networks.b.interface: interface sw-a is already used by the uplink of networks.a (default sw-NAME)"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    interface: up0\n    ports:\n      - tap: up0\n",
             "config.yaml:6: networks.a.ports[0].tap: interface up0 is already used by networks.a.interface"),
            ("networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n    ports: [{tap: sw-b}]\n  b:\n    subnet: 10.1.0.0/24\n",
             "config.yaml:6: networks.b.interface: the default uplink sw-b is already used by networks.a.ports[0].tap; choose another with interface:"),
            // Modes, keys and types.
            ("networks:\n  a:\n    mode: bridged\n    subnet: 10.0.0.0/24\n",
             "config.yaml:3: networks.a.mode: \"bridged\" is not one of isolated, host, shared"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    mtus: 1500\n",
             "config.yaml:4: networks.a.mtus: unknown key"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    mtu: big\n",
             "config.yaml:4: networks.a.mtu: expected an integer, got \"big\""),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    nat44: \"yes\"\n",
             "config.yaml:4: networks.a.nat44: expected true or false, got \"yes\""),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    mtu: 70000\n",
             "config.yaml:4: networks.a.mtu: 70000 is out of range 1280..65520"),
            // Addresses.
            ("networks:\n  a:\n    subnet: 10.0.0.300/24\n",
             "config.yaml:3: networks.a.subnet: \"10.0.0.300/24\" is not an IPv4 subnet like 192.168.109.0/24 (host bits zero)"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/30\n",
             "config.yaml:3: networks.a.subnet: prefix length /30 is out of range /16../29"),
            ("networks:\n  a:\n    mode: host\n",
             "config.yaml:2: networks.a.subnet: is required"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    dhcpRange: 10.0.0.1-10.0.0.9\n",
             "config.yaml:4: networks.a.dhcpRange: 10.0.0.1-10.0.0.9 includes the gateway 10.0.0.1"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    reservations:\n      02:00:00:00:00:01: 10.9.0.1\n",
             "config.yaml:5: networks.a.reservations.02:00:00:00:00:01: 10.9.0.1 is not a host address of 10.0.0.0/24"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    ports: [{tap: t0, mac: \"02:00:00:00:00\"}]\n",
             "config.yaml:4: networks.a.ports[0].mac: \"02:00:00:00:00\" is not a MAC address like 02:00:00:00:00:01"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    upstreamDNS: [1.1.1.1, dns.google]\n",
             "config.yaml:4: networks.a.upstreamDNS[1]: \"dns.google\" is not an IP address"),
            ("networks:\n  a:\n    subnet: 10.0.0.0/24\n    ipv6Prefix: fd00:1:2:3::/48\n",
             "config.yaml:4: networks.a.ipv6Prefix: \"fd00:1:2:3::/48\" is not an IPv6 /64 prefix like fd00:1:2:3::/64"),
            // Names and the file as a whole.
            ("networks:\n  Lab:\n    subnet: 10.0.0.0/24\n",
             "config.yaml:2: networks.Lab: \"Lab\" is not a valid network name (a lowercase letter, then up to 11 of a-z, 0-9, -)"),
            ("networks: {}\n",
             "config.yaml:1: networks: defines no networks"),
            ("networks:\n  a: [\n",
             "config.yaml:3: YAML: did not find expected node content (while parsing a flow node at line 3)"),
            // Lima's file: its own sections pass unread, vmnet: is checked.
            ("networks:\n  bridged:\n    mode: bridged\n    interface: en0\nvmnet:\n  shared:\n    subnet: 192.168.107.0/24\n    mtu: 100\n",
             "config.yaml:8: vmnet.shared.mtu: 100 is out of range 1280..65520"),
        ]
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for (index, bad) in cases.enumerated() {
            XCTAssertThrowsError(try parse(bad.yaml), "case \(index)") { error in
                XCTAssertEqual("\(error)", bad.message, "case \(index)")
            }
        }
    }

    // MARK: errors, one per class

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
                    "config.yaml:7: networks.a.ports[0].vlan: unknown key (a port is {tap: NAME, netns: NS, mac: MAC} or {link: IFACE}, either with portSecurity)")
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
