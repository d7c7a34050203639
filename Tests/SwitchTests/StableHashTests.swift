// StableHashTests: every value derived with FNV-1a keeps the value it had before the hash moved to Proto.
//
// The expected numbers were computed with the old inline loops (offset basis 0xcbf29ce484222325, prime
// 0x100000001b3, xor then multiply); a change here would move stable MACs, ULA prefixes and DHCP picks.
import Proto
import XCTest
@testable import Switch
import SwitchSys

final class StableHashTests: XCTestCase {
    func testTAPStableMAC() {
        XCTAssertEqual(TAP.stableMAC(name: "tap0"), MACAddress(rawValue: 0x02ef_07ac_d016))
    }

    func testNetworkULAPrefixAndGatewayMAC() {
        let network = NetworkSpec(name: "lab", subnet: IPv4Subnet("192.168.107.0/24")!)
        XCTAssertEqual(network.ipv6Prefix, IPv6Address(high: 0xfde7_093e_0fa7_0000, low: 0))
        XCTAssertEqual(network.gatewayMAC, MACAddress(rawValue: 0x0209_3041_3b04))
    }

    func testDHCPClientKeyHash() {
        XCTAssertEqual(ClientKey.mac(MACAddress(rawValue: 0x5254_0012_3456)).stableHash, 0x615a_ed11_b04a_2c01)
        XCTAssertEqual(ClientKey.identifier([1, 0xaa, 0xbb]).stableHash, 0xb72e_9e77_4da6_58f4)
    }

    /// The peer table's key: the path bytes including the NUL that `init(path:)` stores.
    func testUnixAddressHash() {
        XCTAssertEqual(UnixAddress(path: "/tmp/x.sock")?.hash, 0x83ec_aacf_e78b_3d22)
    }
}
