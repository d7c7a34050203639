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

    func testTableListsForwards() {
        var network = FakeHandler().networks[0]
        network.ports = []
        network.forwards = [
            ForwardStatus(id: "tcp:127.0.0.1:8080", proto: "tcp", hostAddress: "127.0.0.1", hostPort: "8080", guest: "web",
                          guestPort: "80", resolved: "10.0.0.20", state: "active", engine: "dnat", origin: "config"),
            ForwardStatus(id: "udp:127.0.0.1:5000-5001", proto: "udp", hostAddress: "127.0.0.1", hostPort: "5000-5001",
                          guest: "db", guestPort: "6000-6001", resolved: nil, state: "unresolved", engine: "dnat",
                          origin: "runtime"),
        ]
        XCTAssertEqual(StatusReport.text([network]), """
            lab: isolated 10.0.0.0/24 gateway 10.0.0.1 mtu 1500
              dgram   /run/switchd/lab/dgram.sock
              stream  /run/switchd/lab/stream.sock
              no ports
              FORWARD                  GUEST         RESOLVED   STATE       ENGINE  ORIGIN
              tcp:127.0.0.1:8080       web:80        10.0.0.20  active      dnat    config
              udp:127.0.0.1:5000-5001  db:6000-6001  -          unresolved  dnat    runtime

            """)
    }
}
