// ResponderSupport: the offsets in an untagged frame that the responders share.
//
// Responders look at an EtherType, a destination MAC and an address or two before deciding a
// frame is not theirs; they read them with Proto's ByteAccess (`be16`, `macAddress`, ...), and the
// offsets are bounds-checked by the callers' length guards, not here.
import Proto

/// Offsets in an untagged Ethernet frame that the responders peek at before validating anything.
enum UntaggedField {
    /// Destination MAC.
    static let destination = 0
    /// Source MAC.
    static let source = 6
    /// EtherType of an untagged frame (a VLAN TPID here means the frame is tagged: not ours).
    static let etherType = 12
    /// The Ethernet header of an untagged frame.
    static let headerLength = 14
    /// IPv6 Next Header, Hop Limit, Source and Destination (RFC 8200 §3), from the frame start.
    static let ipv6NextHeader = 14 + 6
    static let ipv6Source = 14 + 8
    static let ipv6Destination = 14 + 24
    /// The first byte after an IPv6 fixed header: the ICMPv6 type when Next Header is 58.
    static let ipv6Payload = 14 + 40
    /// IPv4 Protocol and Destination (RFC 791 §3.1), from the frame start.
    static let ipv4Protocol = 14 + 9
    static let ipv4Destination = 14 + 16
}
