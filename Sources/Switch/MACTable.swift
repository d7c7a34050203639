// MACTable: the learned MAC → port map of one network.
//
// Design (after Snabb's mac_table.lua and netmap VALE): open addressing with linear probing in a
// fixed power-of-two array, so lookups and learning never allocate. An entry records the port's
// slot and generation (a removed port's entries go stale even before they are flushed) and the
// last time the address was seen; ageing is one sweep per second over the array, not a timer per
// entry. Deletion shifts later entries of the probe run back, so there are no tombstones and the
// table never degrades. Per-port counts enforce `macLimit` so one port cannot exhaust the table.

import Proto

struct MACTable {
    struct Entry {
        /// The address + 1, so that 0 marks an empty bucket (a zero MAC is never learned anyway).
        var key: UInt64
        var port: UInt16
        var generation: UInt16
        var seen: UInt32
    }

    /// Result of learning a source address.
    enum Learned: Equatable {
        case known, learned, moved(from: UInt16), limitReached, tableFull
    }

    private let entries: UnsafeMutablePointer<Entry>
    private let mask: Int
    private(set) var count = 0
    /// Learned entries per port slot, for `macLimit`.
    private let perPort: UnsafeMutablePointer<Int32>
    private let maxPorts: Int
    let limitPerPort: Int
    /// Seconds an entry stays without being seen.
    let ageing: UInt32
    /// Port slots below this are exempt from `limitPerPort`: the trunks to other forwarding
    /// threads, which carry every station of those threads (Shards/ShardTrunks.swift).
    var unlimitedBelow = 0

    init(capacity: Int = 4096, maxPorts: Int, limitPerPort: Int, ageing: Int) {
        var size = 16
        while size < capacity { size <<= 1 }
        entries = .allocate(capacity: size)
        entries.initialize(repeating: Entry(key: 0, port: 0, generation: 0, seen: 0), count: size)
        mask = size - 1
        perPort = .allocate(capacity: maxPorts)
        perPort.initialize(repeating: 0, count: maxPorts)
        self.maxPorts = maxPorts
        self.limitPerPort = limitPerPort
        self.ageing = UInt32(max(1, ageing))
    }

    /// Frees the storage; the table must not be used afterwards.
    func deallocate() {
        entries.deallocate()
        perPort.deallocate()
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        // Fibonacci hashing spreads the OUI-heavy high bits and sequential low bits alike.
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
    }

    @inline(__always)
    private func find(_ key: UInt64) -> Int? {
        var i = home(key)
        while true {
            let k = entries[i].key
            if k == key { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// The port slot and generation `mac` was last seen on, if it has not aged out.
    @inline(__always)
    func lookup(_ mac: MACAddress, now: UInt32) -> (port: UInt16, generation: UInt16)? {
        guard let i = find(mac.rawValue &+ 1) else { return nil }
        let e = entries[i]
        guard now &- e.seen < ageing else { return nil }
        return (e.port, e.generation)
    }

    /// Records that `mac` was seen as a source on `port`.
    @inline(__always)
    mutating func learn(_ mac: MACAddress, port: UInt16, generation: UInt16, now: UInt32) -> Learned {
        let key = mac.rawValue &+ 1
        if let i = find(key) {
            let old = entries[i].port
            if old == port && entries[i].generation == generation {
                entries[i].seen = now
                return .known
            }
            guard perPort[Int(port)] < limitPerPort || Int(port) < unlimitedBelow else { return .limitReached }
            perPort[Int(old)] -= 1
            perPort[Int(port)] += 1
            entries[i].port = port
            entries[i].generation = generation
            entries[i].seen = now
            return .moved(from: old)
        }
        guard perPort[Int(port)] < limitPerPort || Int(port) < unlimitedBelow else { return .limitReached }
        guard count < (mask + 1) * 3 / 4 else { return .tableFull }
        var i = home(key)
        while entries[i].key != 0 { i = (i + 1) & mask }
        entries[i] = Entry(key: key, port: port, generation: generation, seen: now)
        perPort[Int(port)] += 1
        count += 1
        return .learned
    }

    /// Removes the entry at bucket `i` and shifts the rest of its probe run back.
    private mutating func remove(at index: Int) {
        perPort[Int(entries[index].port)] -= 1
        count -= 1
        var hole = index
        var i = (index + 1) & mask
        while entries[i].key != 0 {
            let h = home(entries[i].key)
            // Move entry i into the hole if its home is not in the cyclic range (hole, i].
            let inRange = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i)
            if !inRange {
                entries[hole] = entries[i]
                hole = i
            }
            i = (i + 1) & mask
        }
        entries[hole].key = 0
    }

    /// Forgets `mac`.
    mutating func forget(_ mac: MACAddress) {
        if let i = find(mac.rawValue &+ 1) { remove(at: i) }
    }

    /// Forgets every address learned on `port`.
    mutating func flush(port: UInt16) {
        var i = 0
        while i <= mask {
            if entries[i].key != 0 && entries[i].port == port {
                remove(at: i)  // a later entry may have shifted into i: look at it again
            } else {
                i += 1
            }
        }
        perPort[Int(port)] = 0
    }

    /// Forgets every address not seen for `ageing` seconds; returns how many went.
    @discardableResult
    mutating func age(now: UInt32) -> Int {
        var removed = 0
        var i = 0
        while i <= mask {
            if entries[i].key != 0 && now &- entries[i].seen >= ageing {
                remove(at: i)
                removed += 1
            } else {
                i += 1
            }
        }
        return removed
    }

    /// Learned entries on `port`.
    func count(port: UInt16) -> Int { Int(perPort[Int(port)]) }

    /// Every live entry as (mac, port, seconds since seen), for status and `fdb`.
    func snapshot(now: UInt32) -> [(mac: MACAddress, port: UInt16, age: UInt32)] {
        UnsafeBufferPointer(start: entries, count: mask + 1).compactMap { e in
            e.key == 0 || now &- e.seen >= ageing ? nil : (MACAddress(rawValue: e.key &- 1), e.port, now &- e.seen)
        }
    }
}
