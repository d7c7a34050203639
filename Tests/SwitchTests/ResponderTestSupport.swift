// Helpers for the responder tests: the gateway of responders.py's golden frames, hex, and running frames through responders.
import Proto
import XCTest
@testable import Switch

/// The addresses responders.py puts in its frames.
enum ResponderAddr {
    static let gatewayMAC = MACAddress("02:00:5e:a1:b2:c3")!
    static let guestMAC = MACAddress("52:54:00:12:34:56")!
    static let gateway4 = IPv4Address(192, 168, 107, 1)
    static let guest4 = IPv4Address(192, 168, 107, 23)
    static let gatewayLinkLocal = IPv6Address("fe80::5eff:fea1:b2c3")!
    static let gatewayULA = IPv6Address("fd00:1234:5678:9abc::1")!

    /// The gateway in `isolated` mode (router lifetime 0, MTU 1500), with or without IPv6.
    static func gateway(ipv6: Bool = true, routesBeyondHost: Bool = false, mtu: Int = 1500) -> GatewayIdentity {
        GatewayIdentity(mac: gatewayMAC, ipv4: gateway4, subnet: IPv4Subnet("192.168.107.0/24")!,
                        ipv6Prefix: ipv6 ? IPv6Address("fd00:1234:5678:9abc::")! : nil, mtu: mtu,
                        domain: "test.internal", routesBeyondHost: routesBeyondHost)
    }
}

/// Bytes from a hex string (two digits per byte, nothing else).
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    precondition(digits.count % 2 == 0)
    func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

/// Lowercase hex of `bytes`.
func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

/// The four responders of one gateway, as the forwarding loop will hold them.
struct ResponderSet {
    var arp: ARPResponder
    var ndp: NDPResponder
    var echo: EchoResponder
    var ra: RouterAdvertiser

    init(_ gateway: GatewayIdentity = ResponderAddr.gateway(), isolated: Bool = true) {
        arp = ARPResponder(gateway: gateway)
        ndp = NDPResponder(gateway: gateway)
        echo = EchoResponder(gateway: gateway, isolated: isolated)
        ra = RouterAdvertiser(gateway: gateway)
    }

    /// Every responder's verdict on `frame` and the reply bytes of those that replied, by name.
    mutating func run(_ frame: [UInt8], replyCapacity: Int = 2048, now: Double = 1000)
        -> [(responder: String, verdict: Verdict, reply: [UInt8])] {
        var results: [(String, Verdict, [UInt8])] = []
        func one(_ name: String, _ body: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Verdict) {
            var reply = [UInt8](repeating: 0xA5, count: replyCapacity)
            let verdict = frame.withUnsafeBytes { input in reply.withUnsafeMutableBytes { body(input, $0) } }
            if case .reply(let length) = verdict {
                precondition(length > 0 && length <= replyCapacity)
                results.append((name, verdict, Array(reply[0..<length])))
            } else {
                results.append((name, verdict, []))
            }
        }
        one("arp") { arp.respond(to: $0, into: $1) }
        one("ndp") { ndp.respond(to: $0, into: $1) }
        one("echo") { echo.respond(to: $0, into: $1) }
        one("ra") { ra.respond(to: $0, into: $1, now: now) }
        return results
    }

    /// The verdict of the responder named `name` on `frame` (all four run).
    mutating func verdict(_ name: String, _ frame: [UInt8], now: Double = 1000) -> Verdict {
        run(frame, now: now).first { $0.responder == name }!.verdict
    }
}

/// Recomputes the ICMPv6 checksum of an untagged IPv6 frame whose ICMPv6 message follows the fixed header.
func fixICMPv6Checksum(_ frame: inout [UInt8]) {
    frame.withUnsafeMutableBytes { raw in
        let ip = UnsafeMutableRawBufferPointer(rebasing: raw[14...])
        let source = IPv6Address(loading: ip.baseAddress! + 8), destination = IPv6Address(loading: ip.baseAddress! + 24)
        let length = Int(UInt16(ip[4]) << 8 | UInt16(ip[5]))
        let message = UnsafeMutableRawBufferPointer(rebasing: ip[40..<(40 + length)])
        MutableICMPv6Message(validating: message)!.fillChecksum(pseudoHeaderSum: InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocol: .icmpv6, length: length))
    }
}
