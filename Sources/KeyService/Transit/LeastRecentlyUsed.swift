/// A map that holds at most `capacity` members and, when full, drops the one used least recently for a new one.
/// Lookups, insertions and removals are O(1): members sit in slots linked from the most to the least recently used.
/// Not thread-safe; keep it behind a lock.
struct LeastRecentlyUsed<Value> {
    fileprivate struct Slot {
        var key: String
        var value: Value?
        /// Neighbours in recency order (-1: none).
        var newer: Int
        var older: Int
    }

    fileprivate var slots: [Slot] = []
    private var index: [String: Int] = [:]
    /// Slots freed by removals, reused before the array grows.
    private var free: [Int] = []
    private var newest = -1
    private var oldest = -1
    /// The most members kept (at least 1).
    private(set) var capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { index.count }

    /// The keys from the most to the least recently used.
    var keys: [String] {
        var keys: [String] = []
        var slot = newest
        while slot >= 0 {
            keys.append(slots[slot].key)
            slot = slots[slot].older
        }
        return keys
    }

    /// The value for `key`, which becomes the most recently used.
    mutating func get(_ key: String) -> Value? {
        guard let slot = index[key] else { return nil }
        moveToFront(slot)
        return slots[slot].value
    }

    /// The value for `key` without changing the order.
    func peek(_ key: String) -> Value? { index[key].flatMap { slots[$0].value } }

    /// Sets `key`'s value, the most recently used from now, dropping the least recently used member when full.
    mutating func set(_ key: String, _ value: Value) {
        if let slot = index[key] {
            slots[slot].value = value
            moveToFront(slot)
            return
        }
        while index.count >= capacity { removeOldest() }
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            slots[slot] = Slot(key: key, value: value, newer: -1, older: -1)
        } else {
            slot = slots.count
            slots.append(Slot(key: key, value: value, newer: -1, older: -1))
        }
        index[key] = slot
        linkAtFront(slot)
    }

    mutating func remove(_ key: String) {
        guard let slot = index.removeValue(forKey: key) else { return }
        unlink(slot)
        slots[slot].value = nil
        free.append(slot)
    }

    /// Changes the capacity, dropping the least recently used members beyond it.
    mutating func resize(_ capacity: Int) {
        self.capacity = max(1, capacity)
        while index.count > self.capacity { removeOldest() }
    }

    private mutating func removeOldest() {
        guard oldest >= 0 else { return }
        remove(slots[oldest].key)
    }

    private mutating func moveToFront(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAtFront(slot)
    }

    private mutating func linkAtFront(_ slot: Int) {
        slots[slot].newer = -1
        slots[slot].older = newest
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (slots[slot].newer, slots[slot].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }
}

extension LeastRecentlyUsed: Sendable where Value: Sendable {}
extension LeastRecentlyUsed.Slot: Sendable where Value: Sendable {}
