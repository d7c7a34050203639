// StatusReportTests: the `status` table and the `status --json` document.
import Foundation
import Switch
import XCTest
@testable import switchd

final class StatusReportTests: XCTestCase {
    func testJSONHasTheDocumentedShape() throws {
        let networks = FakeHandler().networks
        let text = StatusReport.json(networks)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let network = try XCTUnwrap((object["networks"] as? [[String: Any]])?.first)
        for key in ["name", "mode", "subnet", "gateway", "mtu", "sockets", "ports", "leases"] {
            XCTAssertNotNil(network[key], key)
        }
        let port = try XCTUnwrap((network["ports"] as? [[String: Any]])?.first)
        for key in ["id", "kind", "peer", "macs", "offloads", "rx", "tx", "drops", "segmented", "superFrames"] {
            XCTAssertNotNil(port[key], key)
        }
        XCTAssertEqual((port["drops"] as? [String: Any])?["queueFull"] as? Int, 2)
        XCTAssertTrue(text.contains("\"dgram\" : \"/run/switchd/lab/dgram.sock\""), text)
    }

    func testTable() {
        XCTAssertEqual(StatusReport.text(FakeHandler().networks), """
            lab: isolated 10.0.0.0/24 gateway 10.0.0.1 mtu 1500
              dgram   /run/switchd/lab/dgram.sock
              stream  /run/switchd/lab/stream.sock
              PORT  KIND  PEER      MACS               RX PKTS  RX BYTES  TX PKTS  TX BYTES  SUPER  SEGMENTED  DROPS
              p1    tap   lab0@ns1  02:00:00:00:00:01  3        180       0        0         0      0          queueFull=2

            """)
        XCTAssertEqual(StatusReport.text([]), "no networks\n")
    }
}
