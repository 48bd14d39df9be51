import FoundationEssentials
import Synchronization

/// One transit mount's keys, settings and BYOK wrapping key, kept in the sealed store below the mount's prefix. A
/// class behind mutexes (not an actor), so that a request on the event loop finds its key without suspending.
///
/// Every change of a key is a read-modify-write under that key's own lock (`modify`): the key is read, changed and
/// written while no other change of it runs, so two rotations cannot both make version N+1, and a config change
/// cannot write back a key that a rotation has replaced meanwhile. Keys are cached decoded, at most the mount's
/// `cache-config` size (`defaultCacheLimit` when it is 0), the least recently used dropped first. The cache's lock
/// is never held across storage I/O: the event loop reads it (`cachedKey`) and never waits for a write. A key
/// leaves the cache before its record changes in storage and comes back after the write committed, and the cache
/// is filled from storage only under the key's lock, so it never holds what storage no longer does.
final class TransitStore: Sendable {
    /// The most keys cached when `cache-config`'s size is 0 (which is unlimited in Vault).
    static let defaultCacheLimit = 1024

    private let storage: EngineStorage
    /// Decoded keys by name.
    private let cache = Mutex(LeastRecentlyUsed<TransitKey>(capacity: TransitStore.defaultCacheLimit))
    /// One lock per key name, held by every read-modify-write of the key and by every cache fill from storage.
    private let locks = KeyLocks()
    /// The settings once read; its lock is held while they are read or written (task path only).
    private let settingsCache = Mutex<Settings?>(nil)
    /// Held while the wrapping key is read or generated (task path only).
    private let wrapping = Mutex(())

    init(storage: EngineStorage) { self.storage = storage }

    static func path(_ name: String) -> String { "keys/" + name }

    // MARK: Keys

    /// The key, from the cache or else from storage (then cached).
    func key(_ name: String) throws(VaultError) -> TransitKey? {
        if let cached = cachedKey(name) { return cached }
        return try locks.withLock(name) { () throws(VaultError) -> TransitKey? in try current(name) }
    }

    /// The key when it is in the cache: no storage read and no lock held across I/O, so the event loop may ask.
    func cachedKey(_ name: String) -> TransitKey? { cache.withLock { $0.get(name) } }

    /// What `modify` does with the key once its body has run.
    enum Change {
        /// Leave storage as it is.
        case keep
        /// Store this key (its name is the one `modify` was called with).
        case put(TransitKey)
        /// Delete the key.
        case delete
    }

    /// Runs `body` on the current key (nil: none) under the key's lock and applies its change before the lock is
    /// released: the read, the change and the write are one step for every other change of this key.
    func modify<Result: Sendable>(
        _ name: String, _ body: (TransitKey?) throws -> (change: Change, result: Result)
    ) throws -> Result {
        try locks.withLock(name) { () throws -> Result in
            let (change, result) = try body(try current(name))
            try apply(change, to: name, cacheAfter: true)
            return result
        }
    }

    /// Under `name`'s lock: the key from the cache, else from storage. `caching`: a key read from storage is
    /// cached, and the cache's recency order is updated.
    private func current(_ name: String, caching: Bool = true) throws(VaultError) -> TransitKey? {
        let cached = cache.withLock { caching ? $0.get(name) : $0.peek(name) }
        if let cached { return cached }
        guard let key = try storage.read(TransitKey.self, Self.path(name)) else { return nil }
        if caching { remember(key) }
        return key
    }

    /// Under `name`'s lock: writes the change through. The key leaves the cache before storage changes, so that
    /// no one finds the old key once the new one may be in storage, and is cached again once the write committed
    /// (when `cacheAfter`; else only if it was cached before).
    private func apply(_ change: Change, to name: String, cacheAfter: Bool) throws(VaultError) {
        switch change {
        case .keep: return
        case .put(let key):
            guard key.name == name else {
                throw .internalError("transit key '\(key.name)' cannot be stored under the name '\(name)'")
            }
            let wasCached = cache.withLock { cache in
                defer { cache.remove(name) }
                return cache.peek(name) != nil
            }
            try storage.write(key, Self.path(name))
            if cacheAfter || wasCached { remember(key) }
        case .delete:
            cache.withLock { $0.remove(name) }
            try storage.remove(Self.path(name))
        }
    }

    /// Caches `key` within the mount's configured size (the settings' lock, then the cache's, as `updateSettings`).
    private func remember(_ key: TransitKey) {
        settingsCache.withLock { settings in
            // The settings are normally loaded already; if they cannot be read, the current size stays.
            let size = (try? loadSettings(&settings))?.cacheSize
            cache.withLock { cache in
                if let size { cache.resize(Self.cacheLimit(size)) }
                cache.set(key.name, key)
            }
        }
    }

    /// The most keys cached for a `cache-config` size (0: `defaultCacheLimit`).
    static func cacheLimit(_ size: Int64) -> Int {
        size > 0 ? Int(clamping: size) : defaultCacheLimit
    }

    /// The names of the keys now in the cache, the most recently used first.
    var cachedNames: [String] { cache.withLock { $0.keys } }

    func names() throws(VaultError) -> [String] {
        try storage.children("keys/").filter { !$0.hasSuffix("/") }
    }

    // MARK: Automatic rotation

    /// What one sweep of `rotateDueKeys` did.
    struct RotationSweep: Sendable, Equatable {
        /// The keys rotated, each to its new latest version.
        var rotated: [String: Int] = [:]
        /// The keys that were due and could not be rotated, with the reason.
        var failed: [String: String] = [:]
    }

    /// Rotates every key whose newest version is older than its `auto_rotate_period` at `now` (Unix nanoseconds),
    /// each checked and rotated under its key's lock, as `keys/:name/rotate` is, so that a rotation that ran
    /// meanwhile is not doubled. An imported key that does not allow rotation is left alone (rotating it is refused
    /// anyway). A key the cache does not hold is read from storage without being cached, so that the sweep does
    /// not push keys in use out of the cache; a cached key is replaced in the cache by its rotated self.
    func rotateDueKeys(now: Int64) throws(VaultError) -> RotationSweep {
        var sweep = RotationSweep()
        for name in try names() {
            do {
                let latest = try locks.withLock(name) { () throws -> Int? in
                    guard var key = try current(name, caching: false), key.needsAutoRotation(now: now),
                        !key.config.importedKey || key.config.allowImportedKeyRotation
                    else { return nil }
                    try key.rotate(now: now)
                    try apply(.put(key), to: name, cacheAfter: false)
                    return key.config.latestVersion
                }
                if let latest { sweep.rotated[name] = latest }
            } catch let error as TransitError {
                sweep.failed[name] = error.message
            } catch let error as VaultError {
                sweep.failed[name] = error.messages.joined(separator: "; ")
            } catch {
                sweep.failed[name] = "\(error)"
            }
        }
        return sweep
    }

    // MARK: Settings

    /// The mount's `cache-config` size and `config/keys` upsert switch, kept at `config/settings`.
    struct Settings: Codable, Sendable {
        var cacheSize: Int64 = 0
        var disableUpsert = false
    }

    func settings() throws(VaultError) -> Settings {
        try settingsCache.withLock { (cached) throws(VaultError) in try loadSettings(&cached) }
    }

    /// Changes the settings in storage; a new cache size applies at once (the least recently used keys beyond it
    /// leave the cache).
    func updateSettings(_ change: (inout Settings) -> Void) throws(VaultError) {
        try settingsCache.withLock { (cached) throws(VaultError) in
            var settings = try loadSettings(&cached)
            change(&settings)
            try storage.write(settings, "config/settings")
            cached = settings
            cache.withLock { $0.resize(Self.cacheLimit(settings.cacheSize)) }
        }
    }

    /// The cached settings, read from the store the first time (under `settingsCache`'s lock).
    private func loadSettings(_ cached: inout Settings?) throws(VaultError) -> Settings {
        if let cached { return cached }
        let loaded = try storage.read(Settings.self, "config/settings") ?? Settings()
        cached = loaded
        return loaded
    }

    // MARK: Wrapping key

    /// The mount's RSA-4096 wrapping key, generated on first use and kept for the mount's life.
    func wrappingKey() throws -> TransitWrappingKey {
        try wrapping.withLock { _ in
            if let stored = try storage.read(TransitWrappingKey.self, "wrapping_key") { return stored }
            let generated = try TransitWrappingKey.generate()
            try storage.write(generated, "wrapping_key")
            return generated
        }
    }
}

/// One lock per name, made when first needed and dropped when no one holds or waits for it (so the table holds only
/// the names in use, however many keys there are).
final class KeyLocks: Sendable {
    private final class Lock: Sendable {
        let mutex = Mutex(())
    }

    private let table = Mutex<[String: (lock: Lock, users: Int)]>([:])

    /// Runs `body` holding `name`'s lock. `body` must not suspend or take another name's lock.
    func withLock<Result: Sendable, Failure: Error>(
        _ name: String, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let lock = table.withLock { table in
            let entry = table[name] ?? (Lock(), 0)
            table[name] = (entry.lock, entry.users + 1)
            return entry.lock
        }
        defer {
            table.withLock { table in
                guard let entry = table[name] else { return }
                table[name] = entry.users > 1 ? (entry.lock, entry.users - 1) : nil
            }
        }
        return try lock.mutex.withLock { (_) throws(Failure) -> Result in try body() }
    }

    /// How many names have a lock now (held or waited for).
    var count: Int { table.withLock { $0.count } }
}
