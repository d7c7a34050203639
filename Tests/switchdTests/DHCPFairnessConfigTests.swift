// DHCPFairnessConfigTests: `dhcpLeasesPerPort` and `releaseLeasesOnPortRemoval` parse, default and fail as documented.
import Proto
import Switch
import XCTest
@testable import switchd

final class DHCPFairnessConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> Config {
        try Config.parse(yaml: yaml, file: "config.yaml", interfaceInUse: { _ in false })
    }

    private func assertError(_ yaml: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    private let head = "networks:\n  a:\n    mode: isolated\n    subnet: 10.0.0.0/24\n"

    func testDefaults() throws {
        let services = try XCTUnwrap(parse(head).networks.first).services
        XCTAssertEqual(services.dhcpLeasesPerPort, 4)
        XCTAssertFalse(services.releaseLeasesOnPortRemoval)
    }

    func testGivenValues() throws {
        let config = try parse(head + "    dhcpLeasesPerPort: 16\n    releaseLeasesOnPortRemoval: true\n")
        let services = try XCTUnwrap(config.networks.first).services
        XCTAssertEqual(services.dhcpLeasesPerPort, 16)
        XCTAssertTrue(services.releaseLeasesOnPortRemoval)
        XCTAssertEqual(try parse(head + "    dhcpLeasesPerPort: 1\n").networks.first?.services.dhcpLeasesPerPort, 1)
        XCTAssertEqual(try parse(head + "    dhcpLeasesPerPort: 65536\n").networks.first?.services.dhcpLeasesPerPort, 65536)
    }

    func testErrorsNameFileLineKeyAndReason() {
        assertError(head + "    dhcpLeasesPerPort: 0\n",
                    "config.yaml:5: networks.a.dhcpLeasesPerPort: 0 is out of range 1..65536")
        assertError(head + "    dhcpLeasesPerPort: 65537\n",
                    "config.yaml:5: networks.a.dhcpLeasesPerPort: 65537 is out of range 1..65536")
        assertError(head + "    dhcpLeasesPerPort: many\n",
                    "config.yaml:5: networks.a.dhcpLeasesPerPort: expected an integer, got \"many\"")
        assertError(head + "    releaseLeasesOnPortRemoval: 1\n",
                    "config.yaml:5: networks.a.releaseLeasesOnPortRemoval: expected true or false, got \"1\"")
        assertError(head + "    dhcpLeasesPerPorts: 4\n", "config.yaml:5: networks.a.dhcpLeasesPerPorts: unknown key")
    }
}
