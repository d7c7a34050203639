// LeaseStore: where the DHCP server keeps its leases across restarts, and the file-backed store.
//
// The file is one lease per line, `MAC IP EXPIRES CLIENTID HOSTNAME`, with `-` for an absent
// client id (else lower-case hex, type octet included) or host name, under a version line. It is
// replaced atomically (write `PATH.tmp`, fsync, rename over PATH, fsync the directory), so a crash
// leaves either the old file or the new one. Reading is defensive: a file that does not parse is
// logged and ignored (the server starts empty) rather than trusted in part or crashing.
import Glibc
import Proto
import SwitchSys

/// One DHCP lease as the server remembers it (and as `switchd leases` shows it).
public struct Lease: Hashable, Sendable {
    /// The client's hardware address (`chaddr`).
    public var mac: MACAddress
    /// The leased address.
    public var ip: IPv4Address
    /// The client's host name (option 12) sanitised to a lower-case DNS label, nil when none.
    public var hostname: String?
    /// When the lease ends, in seconds since the epoch; a lease kept past its expiry is still the
    /// client's stable address until another client needs it.
    public var expires: Int64
    /// The client identifier (option 61, type octet included), nil when the client sent none.
    public var clientID: [UInt8]?

    public init(mac: MACAddress, ip: IPv4Address, hostname: String?, expires: Int64, clientID: [UInt8]?) {
        self.mac = mac; self.ip = ip; self.hostname = hostname; self.expires = expires; self.clientID = clientID
    }
}

/// Persistence for a DHCP server's leases.
public protocol LeaseStore {
    /// Every lease saved last; empty when there is nothing (or nothing readable).
    func load() -> [Lease]
    /// Replaces the saved leases with `leases`. Failures are logged, never thrown: the server
    /// keeps serving from memory.
    func save(_ leases: [Lease])
}

/// A `LeaseStore` in one text file, replaced atomically on every save.
public struct FileLeaseStore: LeaseStore, Sendable {
    /// The file's path; `path + ".tmp"` is written first.
    public let path: String

    static let header = "# switchd dhcp leases v1"

    /// A store in the file at `path`; its directory must exist.
    public init(path: String) { self.path = path }

    /// The leases in the file; none when it is missing, unreadable or corrupt (the last two logged).
    public func load() -> [Lease] {
        guard let text = readFile() else { return [] }
        guard let leases = Self.parse(text) else {
            Log.error("dhcp: lease file \(path) is corrupt; starting with no leases")
            return []
        }
        return leases
    }

    /// Replaces the file: write `PATH.tmp`, fsync it, rename it over PATH, fsync the directory.
    public func save(_ leases: [Lease]) {
        do {
            try File.replaceAtomically(path, with: Array(Self.format(leases).utf8), temporary: path + ".tmp",
                                       syncDirectory: true)
        } catch {
            Log.error("dhcp: cannot \(error)")
        }
    }

    // MARK: Format

    /// The file's text for `leases`.
    static func format(_ leases: [Lease]) -> String {
        var text = header + "\n"
        for lease in leases {
            let clientID = lease.clientID.map(hex) ?? "-"
            text += "\(lease.mac) \(lease.ip) \(lease.expires) \(clientID) \(lease.hostname ?? "-")\n"
        }
        return text
    }

    /// The leases in `text`, or nil when any line is malformed (wrong header, field count, MAC,
    /// address, number, hex or host name).
    static func parse(_ text: String) -> [Lease]? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.first == Substring(header) else { return nil }
        lines = lines.dropFirst()
        var leases: [Lease] = []
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 5, let mac = MACAddress(fields[0]), let ip = IPv4Address(fields[1]),
                  let expires = Int64(fields[2]) else { return nil }
            var clientID: [UInt8]?
            if fields[3] != "-" {
                guard let bytes = hexBytes(fields[3]), bytes.count >= 2 else { return nil }
                clientID = bytes
            }
            var hostname: String?
            if fields[4] != "-" {
                guard let label = DHCPServer.sanitizedHostName(Array(fields[4].utf8)), label == fields[4] else { return nil }
                hostname = label
            }
            leases.append(Lease(mac: mac, ip: ip, hostname: hostname, expires: expires, clientID: clientID))
        }
        return leases
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0, digits.count <= 2 * 255 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    // MARK: Files (Glibc only; no Foundation in Switch)

    /// The file's contents, nil when it does not exist or cannot be read (the latter is logged).
    private func readFile() -> String? {
        let bytes: [UInt8]
        do {
            bytes = try File.readSmall(path, limit: 64 << 20)
        } catch {
            if error.errno == .EFBIG {
                Log.error("dhcp: lease file \(path) is larger than 64 MiB; ignoring it")
            } else if !(error.call == "open" && error.errno == .ENOENT) {
                Log.error("dhcp: cannot \(error)")
            }
            return nil
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            Log.error("dhcp: lease file \(path) is not UTF-8; starting with no leases")
            return nil
        }
        return text
    }
}
