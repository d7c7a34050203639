// TestFrames: the IPv4/UDP frame the loop tests send through a running switch.
import Proto

/// An Ethernet frame of `length` bytes carrying IPv4/UDP from 10.`network`.0.X to 10.`network`.0.Y
/// (X, Y: the MACs' last octets, so a broadcast goes to .255), UDP from `sourcePort` to 12345,
/// payload bytes 0x5A. Port security's header guards and address bindings pass it as they would a
/// real guest's frame. With `checksums` the IPv4 and UDP checksums are complete; otherwise both
/// are zero.
func udpTestFrame(from source: MACAddress, to destination: MACAddress, length: Int, network: UInt8 = 99,
                  sourcePort: UInt16 = 12345, checksums: Bool = false) -> [UInt8] {
    var bytes = [UInt8](repeating: 0x5A, count: length)
    bytes.withUnsafeMutableBytes { raw in
        destination.store(to: raw.baseAddress!)
        source.store(to: raw.baseAddress! + 6)
        raw[12] = 0x08; raw[13] = 0x00
        let ipLength = length - 14
        let ip: [UInt8] = [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xFF), 0, 0, 0, 0, 64, 17, 0, 0,
                           10, network, 0, UInt8(truncatingIfNeeded: source.rawValue),
                           10, network, 0, UInt8(truncatingIfNeeded: destination.rawValue),
                           UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0x30, 0x39,
                           UInt8((ipLength - 20) >> 8), UInt8((ipLength - 20) & 0xFF), 0, 0]
        for (i, b) in ip.enumerated() { raw[14 + i] = b }
        guard checksums else { return }
        let v4 = MutableIPv4Header(validating: raw.suffix(from: 14))!
        v4.fillChecksum()
        let udp = MutableUDPHeader(validating: raw.suffix(from: 34))!
        udp.fillChecksum(pseudoHeaderSum: v4.header.payloadPseudoHeaderSum)
    }
    return bytes
}
