// ResolvConf: the host's resolvers from resolv.conf(5) text, and a source that re-reads the file
// only when it changed (docs/DESIGN.md §4: upstreams come from `upstreamDNS`, else the host's resolv.conf).
import Glibc
import Proto
import SwitchSys

/// Reading `nameserver` lines of resolv.conf(5).
public enum ResolvConf {
    /// The `nameserver` addresses in `text`, in file order, duplicates removed, all on port 53.
    /// A `%scope` suffix (link-local IPv6) is stripped; comments (`#`, `;`), other keywords and
    /// malformed addresses are ignored, as glibc's resolver does.
    public static func nameservers(in text: String) -> [UpstreamAddress] {
        var result: [UpstreamAddress] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            var address = fields[1]
            if let percent = address.firstIndex(of: "%") { address = address[..<percent] }
            let upstream: UpstreamAddress
            if let v4 = IPv4Address(address) {
                upstream = .ipv4(v4)
            } else if let v6 = IPv6Address(address) {
                upstream = .ipv6(v6)
            } else {
                continue
            }
            if !result.contains(upstream) { result.append(upstream) }
        }
        return result
    }

    /// `servers` without any whose host is one of `excluded` (ports ignored): switchd's own gateway
    /// addresses must never be upstreams, or the proxy would forward to itself. Loopback stub
    /// resolvers (127.0.0.53) stay: they answer in switchd's own namespace.
    public static func filter(_ servers: [UpstreamAddress], excluding excluded: [UpstreamAddress]) -> [UpstreamAddress] {
        servers.filter { server in !excluded.contains { server.isSameHost(as: $0) } }
    }

    /// The gateway's own addresses (IPv4, ULA, link-local) as exclusions for `filter`.
    public static func addresses(of gateway: GatewayIdentity) -> [UpstreamAddress] {
        [.ipv4(gateway.ipv4), .ipv6(gateway.linkLocal)] + (gateway.ipv6Address.map { [.ipv6($0)] } ?? [])
    }
}

/// The upstreams in a resolv.conf file, re-read only when the file's identity or size or
/// modification time changed (an editor's rename or systemd-resolved's rewrite both show).
public final class ResolvConfSource {
    /// The file, usually `/etc/resolv.conf` (symlinks followed).
    public let path: String
    /// Hosts never returned (switchd's gateway addresses).
    public let excluded: [UpstreamAddress]
    /// How many times the file was read (for tests and status).
    public private(set) var reads = 0

    struct Identity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
    }

    var identity: Identity?
    var cached: [UpstreamAddress] = []

    /// A source for `path`; nothing is read until `currentUpstreams()`.
    public init(path: String = "/etc/resolv.conf", excluding excluded: [UpstreamAddress] = []) {
        self.path = path
        self.excluded = excluded
        cPath = path.utf8CString
    }

    /// The path as a C string, made once: passing `path` to stat(2) converted it on every call,
    /// an allocation each time on the forwarding thread.
    private let cPath: ContiguousArray<CChar>

    /// The upstreams the file lists now, minus the excluded hosts; empty when the file is missing
    /// or unreadable. Costs one stat(2) when the file has not changed.
    public func currentUpstreams() -> [UpstreamAddress] {
        guard let info = cPath.withUnsafeBufferPointer({ File.status(cString: $0.baseAddress!) }) else {
            identity = nil
            cached = []
            return cached
        }
        let now = Identity(device: info.device, inode: info.inode, size: info.size,
                           seconds: info.modifiedSeconds, nanoseconds: info.modifiedNanoseconds)
        if now == identity { return cached }
        guard let text = Self.readFile(path) else {
            identity = nil
            cached = []
            return cached
        }
        reads += 1
        identity = now
        cached = ResolvConf.filter(ResolvConf.nameservers(in: text), excluding: excluded)
        return cached
    }

    /// The file's text (at most its first 64 KiB; resolv.conf is a few lines), or nil when it cannot be read.
    static func readFile(_ path: String) -> String? { File.readSmallText(path) }
}
