// ControlAdmission: who may open one more control connection (per-uid caps, slots kept for root), and the rate-limited refusal log.

/// The numbers that bound control connections (README "Access control", docs/status-json.md).
///
/// Every connection that holds nothing (no `attach` lease, no capture) counts. A peer that may change the
/// switch (root, the daemon's uid, `controlGroup`) is bounded only by `total`; every other uid by
/// `perUID`, and all of them together by `total - reserved`, so the last `reserved` slots are always
/// left for privileged peers however many users hold connections open.
struct ConnectionLimits: Equatable, Sendable {
    /// Connections that hold nothing, all peers together.
    var total: Int
    /// Slots that unprivileged peers can never take.
    var reserved: Int
    /// Connections one unprivileged uid may hold at once.
    var perUID: Int
    /// Seconds a connection that holds nothing may stay silent (or leave a reply unread) before it is closed.
    var idleTimeout: Int

    /// 64 connections, 8 of them kept for root and `controlGroup`; 8 per unprivileged uid; 5 s idle.
    static let standard = ConnectionLimits(total: 64, reserved: 8, perUID: 8, idleTimeout: 5)

    /// What unprivileged uids may hold together.
    var unprivilegedTotal: Int { max(0, total - reserved) }
}

/// Counts the open control connections that hold nothing, by uid, and decides on each new one.
/// Not thread-safe: the server keeps it under its lock.
struct ControlAdmission {
    let limits: ConnectionLimits
    private(set) var total = 0
    private(set) var unprivileged = 0
    private var byUID: [UInt32: Int] = [:]

    init(limits: ConnectionLimits = .standard) { self.limits = limits }

    /// Connections `uid` holds now.
    func count(uid: UInt32) -> Int { byUID[uid] ?? 0 }

    /// Takes a slot for a new connection from `uid` and returns nil, or returns why it is refused
    /// (the message the peer gets).
    mutating func admit(uid: UInt32, privileged: Bool) -> String? {
        if privileged {
            guard total < limits.total else {
                return "too many control connections (limit \(limits.total))"
            }
        } else {
            guard count(uid: uid) < limits.perUID else {
                return "too many control connections for uid \(uid) (limit \(limits.perUID))"
            }
            guard unprivileged < limits.unprivilegedTotal, total < limits.total else {
                return "too many control connections from unprivileged users (limit \(limits.unprivilegedTotal); "
                    + "\(limits.reserved) more are kept for root and controlGroup)"
            }
            unprivileged += 1
        }
        total += 1
        byUID[uid, default: 0] += 1
        return nil
    }

    /// Gives back the slot `admit` took for a connection from `uid` (it closed, or became a lease).
    mutating func release(uid: UInt32, privileged: Bool) {
        guard let held = byUID[uid], held > 0 else { return }  // never taken: nothing to give back
        byUID[uid] = held == 1 ? nil : held - 1
        total -= 1
        if !privileged { unprivileged -= 1 }
    }
}

/// Log lines for refused connections, at most one per uid per `interval` seconds; the ones held back
/// are counted and reported with that uid's next line (or by `flush` once the interval has passed).
struct RefusalLog {
    let interval: Double
    /// Per uid: when its last line went out, and how many refusals were held back since.
    private var entries: [UInt32: (logged: Double, suppressed: Int)] = [:]

    init(interval: Double = 1) { self.interval = interval }

    /// A refusal of `uid` for `reason` at `now` (seconds, monotonic): the line to log, or nil when it is held back.
    mutating func refused(uid: UInt32, pid: Int32, reason: String, now: Double) -> String? {
        if let entry = entries[uid], now - entry.logged < interval {
            entries[uid] = (entry.logged, entry.suppressed + 1)
            return nil
        }
        let earlier = entries[uid]?.suppressed ?? 0
        entries[uid] = (now, 0)
        return "control socket: refused a connection from uid \(uid) (pid \(pid)): \(reason)" + Self.suppressedNote(earlier)
    }

    /// Lines for the uids whose held-back refusals have waited `interval`; forgets uids with nothing to report.
    mutating func flush(now: Double) -> [String] {
        var lines: [String] = []
        for (uid, entry) in entries where now - entry.logged >= interval {
            if entry.suppressed > 0 {
                lines.append("control socket: refused \(entry.suppressed) more connection\(entry.suppressed == 1 ? "" : "s") from uid \(uid)")
                entries[uid] = (now, 0)
            } else {
                entries[uid] = nil
            }
        }
        return lines.sorted()
    }

    private static func suppressedNote(_ count: Int) -> String {
        count == 0 ? "" : " (and \(count) more since the last line for this uid)"
    }
}
