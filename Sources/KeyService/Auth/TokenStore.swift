import Crypto
import FoundationEssentials
import SNP
import Synchronization

/// Tokens, stored only as keyed hashes (HMAC-SHA256 under a per-store salt) in the sealed store: the token string
/// itself is never kept, logged or compared in the clear. Records: `core/tokens/<hash hex>`,
/// `core/accessors/<accessor>` → hash hex, and the salt at `core/token-salt`. A class behind a mutex (not an actor),
/// so that a request with a warm cache reads its token without suspending; writes hold the lock while they commit.
final class TokenStore: Sendable {
    struct Entry: Codable, Sendable {
        var accessor: String
        var policies: [String]
        var displayName: String
        var creationTime: Date
        /// nil = never expires (root).
        var ttl: Int64?
        var explicitMaxTTL: Int64
        var renewable: Bool
        var numUses: Int64
        var meta: [String: JSONValue]
        var parent: [UInt8]?
        var orphan: Bool
        var path: String
        var lastRenewal: Date?
        /// A periodic token's period in seconds: each renewal sets its TTL back to it (nil: not periodic).
        var period: Int64? = nil
        /// Vault's token type: nil or "service", or "batch" (not renewable, not revocable on its own).
        var type: String? = nil
        /// The token role it was created through (`auth/token/create/:role`).
        var role: String? = nil
        /// A root token minted by `sys/generate-root/operator` that has not yet authenticated a request: the next
        /// operator generation revokes it (`createOperatorRoot`). Cleared by its first use.
        var unusedOperatorRoot: Bool? = nil
        var isBatch: Bool { type == "batch" }
        var expireTime: Date? { ttl.map { (lastRenewal ?? creationTime).addingTimeInterval(TimeInterval($0)) } }
        var isExpired: Bool { expireTime.map { $0 < Date() } ?? false }
        /// Holds `root`, by the same sanitised name the ACL resolves (`PolicyStore.sanitize`).
        var isRoot: Bool { policies.contains { PolicyStore.sanitize($0) == "root" } }

        /// A root token's entry, as `sys/init`, dev mode and `generate-root` make them: policy `root`, no TTL, an
        /// orphan, path `auth/token/root`; a new random accessor unless one is given.
        static func root(accessor: String = TokenStore.newToken(prefix: ""), unusedOperatorRoot: Bool? = nil) -> Entry {
            Entry(
                accessor: accessor, policies: ["root"], displayName: "root", creationTime: Date(), ttl: nil,
                explicitMaxTTL: 0, renewable: false, numUses: 0, meta: [:], parent: nil, orphan: true,
                path: "auth/token/root", unusedOperatorRoot: unusedOperatorRoot)
        }
    }

    /// Vault's `policyutil.SanitizePolicies` (without adding `default`): names trimmed and lower-cased, empty ones
    /// dropped, duplicates removed, sorted; `root` stands alone (a root token holds nothing else).
    static func sanitizePolicies(_ names: [String]) -> [String] {
        let clean = Set(names.map(PolicyStore.sanitize).filter { !$0.isEmpty })
        return clean.contains("root") ? ["root"] : clean.sorted()
    }

    /// Default and maximum TTL of non-root tokens (Vault's system defaults: 32 days).
    static let maxTTL: Int64 = 768 * 3600

    /// HMAC-SHA256 keyed with the store's salt, before any input: copied for each token (the key schedule is
    /// computed once).
    private let keyedHash: HMAC<SHA256>
    private let records: Mutex<Records>
    /// What the event loop reads (`lookup`): never locked across storage I/O.
    private let cache = TokenCache()
    private let tuned: Mutex<Tuning>

    /// Opens the token store, creating its salt on first use.
    init(storage: EngineStorage) throws(VaultError) {
        let salt: SymmetricKey
        if let stored = try storage.read([UInt8].self, "core/token-salt") {
            salt = SymmetricKey(data: stored)
        } else {
            let fresh = SymmetricKey(size: .bits256)
            try storage.write(fresh.withUnsafeBytes { Array($0) }, "core/token-salt")
            salt = fresh
        }
        keyedHash = HMAC<SHA256>(key: salt)
        records = Mutex(Records(storage: storage, cache: cache))
        tuned = Mutex(try storage.read(Tuning.self, Tuning.record) ?? Tuning())
    }

    private func hash(_ token: String) -> [UInt8] {
        var mac = keyedHash
        mac.update(data: Array(token.utf8))
        return Array(mac.finalize())
    }

    static func newToken(prefix: String = "s.") -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<24).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Creates a token; `id` is honoured for the dev root token (`--dev-root-token-id`).
    func create(id: String? = nil, entry: Entry) throws(VaultError) -> String {
        let token = id ?? Self.newToken(prefix: entry.isBatch ? "b." : "s.")
        let key = hash(token)
        try records.withLock { (records) throws(VaultError) in
            if id != nil, try records.load(records.record(key)) != nil {
                throw .badRequest("cannot create a token with a duplicate ID")
            }
            try records.create(key: key, entry: entry)
        }
        return token
    }

    /// Where the hash of the last root token `sys/generate-root/operator` minted is kept.
    static let operatorRootRecord = "core/operator-root"

    /// Mints a root token for `sys/generate-root/operator`. At most one such token is outstanding unused: the
    /// previous one is revoked first when it has never authenticated a request, so callers without a token cannot
    /// grow the store. Returns the token and whether an unused one was revoked.
    func createOperatorRoot() throws(VaultError) -> (token: String, revokedUnused: Bool) {
        let token = Self.newToken(prefix: "")
        let key = hash(token)
        let entry = Entry.root(unusedOperatorRoot: true)
        let revoked = try records.withLock { (records) throws(VaultError) -> Bool in
            var revoked = false
            if let hex = try records.storage.read(String.self, Self.operatorRootRecord) {
                let previous = try Records.key(hex: hex)
                if let old = try records.load(records.record(previous)), old.unusedOperatorRoot == true {
                    try records.revoke(key: previous)
                    revoked = true
                }
            }
            try records.create(key: key, entry: entry)
            try records.storage.write(Hex.encode(key), Self.operatorRootRecord)
            return revoked
        }
        return (token, revoked)
    }

    /// Creates a wrapping token and the record of the answer it wraps, in one step.
    func create(entry: Entry, wrapping wrapped: WrappedResponse) throws(VaultError) -> String {
        let token = Self.newToken()
        let key = hash(token)
        try records.withLock { (records) throws(VaultError) in
            try records.create(key: key, entry: entry)
            try records.storage.write(wrapped, Self.wrappingRecord(key))
        }
        return token
    }

    /// The answer a live wrapping token wraps; `consume` revokes the token in the same step. A token that is not a
    /// wrapping token is left alone; an expired one is removed.
    func wrapped(token: String, consume: Bool) throws(VaultError) -> WrappedResponse {
        let key = hash(token)
        return try records.withLock { (records) throws(VaultError) in
            guard let entry = try records.load(records.record(key)), entry.policies == [Self.wrappingPolicy] else {
                throw Self.invalidWrappingToken
            }
            guard !entry.isExpired,
                let wrapped = try records.storage.read(WrappedResponse.self, Self.wrappingRecord(key))
            else {
                try records.revoke(key: key)
                throw Self.invalidWrappingToken
            }
            if consume { try records.revoke(key: key) }
            return wrapped
        }
    }

    /// What `authenticate` found when it may not write or read storage.
    enum Lookup: Sendable {
        /// No token, or one the store does not hold (cached as unknown).
        case unknown
        /// The entry and the token's hash (`key(token:)`).
        case entry(Entry, key: [UInt8])
        /// The token has a use limit or has expired (authenticating it changes the store), or it is not in the
        /// cache (finding it reads storage).
        case needsWrite
    }

    /// The live entry of a token and its hash (`key(token:)`), consuming one use when the token has a use limit.
    /// Expired tokens are removed.
    func authenticate(_ token: String?) throws(VaultError) -> (entry: Entry, key: [UInt8])? {
        guard let token else { return nil }
        let key = hash(token)
        let entry = try records.withLock { (records) throws(VaultError) in try records.authenticate(key: key) }
        return entry.map { ($0, key) }
    }

    /// `authenticate` for the event loop, from the cache alone: it neither writes nor reads storage, and does not
    /// wait for a writer (the records lock is held across commits; the cache's lock never is). `.needsWrite` when
    /// the token would be consumed or removed, or is not cached (the caller then authenticates where it may block
    /// on storage).
    func lookup(_ token: String?) throws(VaultError) -> Lookup {
        guard let token else { return .unknown }
        let key = hash(token)
        switch cache.find(Records.record(key)) {
        case .unknown: return .unknown
        case .notCached: return .needsWrite
        // An expired token is removed when used, a use-limited one loses a use, an unused operator root token is
        // marked used: all write.
        case .entry(let entry):
            return entry.isExpired || entry.numUses > 0 || entry.unusedOperatorRoot == true
                ? .needsWrite : .entry(entry, key: key)
        }
    }

    func entry(token: String) throws(VaultError) -> Entry? {
        let key = hash(token)
        return try records.withLock { (records) throws(VaultError) in try records.load(records.record(key)) }
    }

    func entry(accessor: String) throws(VaultError) -> Entry? {
        try records.withLock { (records) throws(VaultError) -> Entry? in
            guard let key = try records.key(accessor: accessor) else { return nil }
            return try records.load(records.record(key))
        }
    }

    func key(token: String) -> [UInt8] { hash(token) }

    func key(accessor: String) throws(VaultError) -> [UInt8]? {
        try records.withLock { (records) throws(VaultError) in try records.key(accessor: accessor) }
    }

    /// Revokes a token and, unless `orphanChildren`, every token created under it.
    func revoke(key: [UInt8], orphanChildren: Bool = false) throws(VaultError) {
        try records.withLock { (records) throws(VaultError) in
            try records.revoke(key: key, orphanChildren: orphanChildren)
        }
    }

    /// Extends a token's lease by `increment` (or its original TTL), capped by its explicit max TTL and the token
    /// method's maximum (`tuning`); a periodic token goes back to its period.
    func renew(key: [UInt8], increment: Int64?) throws(VaultError) -> Entry {
        let maximum = tuning.maximum
        return try records.withLock { (records) throws(VaultError) in
            try records.renew(key: key, increment: increment, maximum: maximum)
        }
    }

    /// The token auth method's tuning (`sys/auth/token/tune`): the default and maximum TTL of the tokens it issues,
    /// in seconds (0: the system's 768 h), and its description. Kept in the sealed store at `core/token-tuning`.
    struct Tuning: Codable, Sendable, Equatable {
        static let record = "core/token-tuning"

        var defaultLeaseTTL: Int64 = 0
        var maxLeaseTTL: Int64 = 0
        var description = "token based credentials"

        /// The longest TTL a token is created with or renewed to (a periodic token's renewals go back to its period).
        var maximum: Int64 { maxLeaseTTL > 0 ? maxLeaseTTL : TokenStore.maxTTL }
        /// The default as set (the system's for 0), before the maximum caps it.
        var effectiveDefault: Int64 { defaultLeaseTTL > 0 ? defaultLeaseTTL : TokenStore.maxTTL }
        /// The TTL of a token created without one.
        var defaultTTL: Int64 { min(effectiveDefault, maximum) }
    }

    var tuning: Tuning { tuned.withLock { $0 } }

    /// Tunes the token auth method; nil leaves a value as it is, 0 is the system's.
    func tune(defaultLeaseTTL: Int64?, maxLeaseTTL: Int64?, description: String?) throws(VaultError) {
        let storage = records.withLock { $0.storage }
        try tuned.withLock { (current) throws(VaultError) in
            var next = current
            if let defaultLeaseTTL { next.defaultLeaseTTL = defaultLeaseTTL }
            if let maxLeaseTTL { next.maxLeaseTTL = maxLeaseTTL }
            if let description { next.description = description }
            guard next.effectiveDefault <= next.maximum else {
                throw .badRequest(
                    "backend max lease TTL of \(next.maximum) would be less than backend default lease TTL of "
                        + "\(next.effectiveDefault)")
            }
            try storage.write(next, Tuning.record)
            current = next
        }
    }

    /// A token role (`auth/token/roles/:name`): what tokens created through it get, and which policies they may ask
    /// for.
    struct Role: Codable, Sendable {
        var allowedPolicies: [String] = []
        var disallowedPolicies: [String] = []
        var orphan = false
        var renewable = true
        var pathSuffix = ""
        var tokenPeriod: Int64 = 0
        var tokenExplicitMaxTTL: Int64 = 0
        var tokenNoDefaultPolicy = false
        var tokenType = "default-service"

        var pathSuffixPart: String { pathSuffix.isEmpty ? "" : "/" + pathSuffix }

        mutating func update(from body: JSONValue) throws(VaultError) {
            // Sanitised as token policies are (OpenBao too): a role allowing `ROOT` allows `root`.
            if let list = try TokenBackend.stringList(body, "allowed_policies") {
                allowedPolicies = TokenStore.sanitizePolicies(list)
            }
            if let list = try TokenBackend.stringList(body, "disallowed_policies") {
                disallowedPolicies = TokenStore.sanitizePolicies(list)
            }
            if let value = try body.bool("orphan") { orphan = value }
            if let value = try body.bool("renewable") { renewable = value }
            if let value = try body.string("path_suffix") {
                guard !value.contains("..") else { throw .badRequest("error reading path_suffix") }
                pathSuffix = value
            }
            // The token_ names and Vault's older ones.
            if let value = try body.duration("period") { tokenPeriod = value }
            if let value = try body.duration("token_period") { tokenPeriod = value }
            if let value = try body.duration("explicit_max_ttl") { tokenExplicitMaxTTL = value }
            if let value = try body.duration("token_explicit_max_ttl") { tokenExplicitMaxTTL = value }
            if let value = try body.bool("token_no_default_policy") { tokenNoDefaultPolicy = value }
            if let value = try body.string("token_type") {
                guard ["default-service", "default-batch", "service", "batch", "default"].contains(value) else {
                    throw .badRequest("invalid 'token_type' value \"\(value)\"")
                }
                tokenType = value == "default" ? "default-service" : value
            }
        }

        /// The policies a token created through the role gets: those asked for (else the allowed ones, else the
        /// parent's), checked against the allowed list (with "default" added) or else the disallowed one.
        func policies(requested: [String]?, parent: [String], noDefault: Bool) throws(VaultError) -> [String] {
            func withDefault(_ list: [String]) -> [String] {
                Array(Set(list + (noDefault ? [] : ["default"]))).sorted()
            }
            if !allowedPolicies.isEmpty {
                let asked = withDefault(requested ?? allowedPolicies)
                let allowed = withDefault(allowedPolicies)
                guard Set(asked).isSubset(of: Set(allowed)) else {
                    func quoted(_ list: [String]) -> String { list.map { "\"\($0)\"" }.joined(separator: " ") }
                    throw .badRequest(
                        "token policies ([\(quoted(asked))]) must be subset of the role's allowed policies "
                            + "([\(quoted(allowed))]) or glob policies ([])")
                }
                return asked
            }
            let asked = requested ?? parent
            if let refused = asked.first(where: { disallowedPolicies.contains($0) }) {
                throw .badRequest("token policy \"\(refused)\" is disallowed by this role")
            }
            return asked
        }

        func description(name: String) -> [String: JSONValue] {
            func list(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
            return [
                "name": .string(name), "allowed_policies": list(allowedPolicies), "allowed_policies_glob": .array([]),
                "disallowed_policies": list(disallowedPolicies), "disallowed_policies_glob": .array([]),
                "allowed_entity_aliases": .null, "orphan": .bool(orphan), "renewable": .bool(renewable),
                "path_suffix": .string(pathSuffix), "period": .int(0), "explicit_max_ttl": .int(0),
                "token_period": .int(tokenPeriod), "token_explicit_max_ttl": .int(tokenExplicitMaxTTL),
                "token_no_default_policy": .bool(tokenNoDefaultPolicy), "token_type": .string(tokenType),
            ]
        }
    }

    func role(_ name: String) throws(VaultError) -> Role? {
        try records.withLock { (records) throws(VaultError) in
            try records.storage.read(Role.self, "core/token-roles/" + name)
        }
    }

    func putRole(_ name: String, _ role: Role) throws(VaultError) {
        try records.withLock { (records) throws(VaultError) in
            try records.storage.write(role, "core/token-roles/" + name)
        }
    }

    func deleteRole(_ name: String) throws(VaultError) {
        try records.withLock { (records) throws(VaultError) in try records.storage.remove("core/token-roles/" + name) }
    }

    func roleNames() throws(VaultError) -> [String] {
        try records.withLock { (records) throws(VaultError) in
            try records.storage.children("core/token-roles/").filter { !$0.hasSuffix("/") }.sorted()
        }
    }

    /// Removes every expired token now (they are otherwise removed when next used); returns how many.
    func tidy() throws(VaultError) -> Int {
        try records.withLock { (records) throws(VaultError) in try records.tidy() }
    }

    func accessorList() throws(VaultError) -> [String] {
        try records.withLock { (records) throws(VaultError) in
            try records.storage.children("core/accessors/").filter { !$0.hasSuffix("/") }
        }
    }
}

/// The token cache the event loop reads: entries by record path, and record paths known to hold no token, each
/// bounded (a full map drops an arbitrary member for a new one). Its lock is never held across storage I/O. It is
/// changed only under `TokenStore`'s records lock, by `Records`, which writes every token record through
/// `store` and `drop`: an entry is dropped from the cache before its record changes in storage and put back
/// after, so the cache never holds what storage no longer does.
final class TokenCache: Sendable {
    static let entryLimit = 16384
    static let unknownLimit = 16384

    enum Found {
        case entry(TokenStore.Entry)
        case unknown
        case notCached
    }

    private struct State {
        var entries: [String: TokenStore.Entry] = [:]
        var unknown: Set<String> = []
    }

    private let state = Mutex(State())

    func find(_ path: String) -> Found {
        state.withLock { state in
            if let entry = state.entries[path] { return .entry(entry) }
            return state.unknown.contains(path) ? .unknown : .notCached
        }
    }

    func put(_ path: String, _ entry: TokenStore.Entry) {
        state.withLock { state in
            state.unknown.remove(path)
            if state.entries[path] == nil, state.entries.count >= Self.entryLimit {
                state.entries.remove(at: state.entries.startIndex)
            }
            state.entries[path] = entry
        }
    }

    func putUnknown(_ path: String) {
        state.withLock { state in
            state.entries[path] = nil
            if state.unknown.count >= Self.unknownLimit, !state.unknown.contains(path) {
                state.unknown.remove(at: state.unknown.startIndex)
            }
            state.unknown.insert(path)
        }
    }

    func remove(_ path: String) {
        state.withLock { state in
            state.entries[path] = nil
            state.unknown.remove(path)
        }
    }

    var counts: (entries: Int, unknown: Int) { state.withLock { ($0.entries.count, $0.unknown.count) } }
}

/// The token records; only used under `TokenStore`'s lock. Every token record is written through `store` and
/// removed through `drop`, which keep `cache` in step.
private struct Records: Sendable {
    let storage: EngineStorage
    /// Entries by record path, written through to the sealed store (shared with `TokenStore.lookup`).
    let cache: TokenCache

    init(storage: EngineStorage, cache: TokenCache) {
        self.storage = storage
        self.cache = cache
    }

    static func record(_ key: [UInt8]) -> String { "core/tokens/" + Hex.encode(key) }

    func record(_ key: [UInt8]) -> String { Self.record(key) }

    mutating func load(_ path: String) throws(VaultError) -> TokenStore.Entry? {
        if case .entry(let cached) = cache.find(path) { return cached }
        let entry = try storage.read(TokenStore.Entry.self, path)
        if let entry { cache.put(path, entry) } else { cache.putUnknown(path) }
        return entry
    }

    private mutating func store(_ entry: TokenStore.Entry, _ path: String) throws(VaultError) {
        cache.remove(path)
        try storage.write(entry, path)
        cache.put(path, entry)
    }

    private mutating func drop(_ path: String) throws(VaultError) {
        cache.remove(path)
        try storage.remove(path)
        cache.putUnknown(path)
    }

    /// A token hash back from its hex form in a record name or the accessor index.
    static func key(hex: String) throws(VaultError) -> [UInt8] {
        do { return try Hex.decode(hex, count: 32) } catch {
            throw .internalError("sealed storage holds a malformed token hash '\(hex)': \(error)")
        }
    }

    mutating func create(key: [UInt8], entry: TokenStore.Entry) throws(VaultError) {
        try store(entry, record(key))
        try storage.write(Hex.encode(key), "core/accessors/" + entry.accessor)
    }

    mutating func authenticate(key: [UInt8]) throws(VaultError) -> TokenStore.Entry? {
        guard var entry = try load(record(key)) else { return nil }
        if entry.isExpired {
            try revoke(key: key)
            return nil
        }
        if entry.unusedOperatorRoot == true {
            entry.unusedOperatorRoot = nil
            try store(entry, record(key))
        }
        if entry.numUses > 0 {
            entry.numUses -= 1
            if entry.numUses == 0 {
                try revoke(key: key)
            } else {
                try store(entry, record(key))
            }
        }
        return entry
    }

    func key(accessor: String) throws(VaultError) -> [UInt8]? {
        guard let hex = try storage.read(String.self, "core/accessors/" + accessor) else { return nil }
        return try Self.key(hex: hex)
    }

    /// Revokes the token `key` and every token below it, or, with `orphanChildren`, makes its children orphans
    /// first. Iterative (an explicit stack), so a chain of any depth is revoked without deep recursion, and linear:
    /// the parent → children index is built once from one pass over the records. Children go before their parent
    /// (Vault's order): a failure part-way leaves the rest of the tree under a parent that still exists.
    mutating func revoke(key: [UInt8], orphanChildren: Bool = false) throws(VaultError) {
        guard try load(record(key)) != nil else { return }
        let children = try childIndex()
        let top = Hex.encode(key)
        if orphanChildren {
            for name in children[top] ?? [] {
                guard var child = try load("core/tokens/" + name) else { continue }
                child.parent = nil
                child.orphan = true
                try store(child, "core/tokens/" + name)
            }
            try remove(key: key)
            return
        }
        // Depth-first, parents before their descendants; removed in reverse, so every child before its parent.
        var order: [String] = []
        var seen: Set<String> = []
        var pending = [top]
        while let name = pending.popLast() {
            guard seen.insert(name).inserted else { continue }
            order.append(name)
            pending += children[name] ?? []
        }
        for name in order.reversed() { try remove(key: Self.key(hex: name)) }
    }

    /// Every stored token's children, by the parent's hash in hex (one pass over the records).
    private mutating func childIndex() throws(VaultError) -> [String: [String]] {
        var children: [String: [String]] = [:]
        for name in try storage.children("core/tokens/") where !name.hasSuffix("/") {
            guard let parent = try load("core/tokens/" + name)?.parent else { continue }
            children[Hex.encode(parent), default: []].append(name)
        }
        return children
    }

    /// Removes one token's records: the token, its accessor and, for a wrapping token, the answer it wraps.
    private mutating func remove(key: [UInt8]) throws(VaultError) {
        guard let entry = try load(record(key)) else { return }
        try drop(record(key))
        try storage.remove("core/accessors/" + entry.accessor)
        if entry.policies == [TokenStore.wrappingPolicy] { try storage.remove(TokenStore.wrappingRecord(key)) }
    }

    mutating func tidy() throws(VaultError) -> Int {
        var removed = 0
        for name in try storage.children("core/tokens/") where !name.hasSuffix("/") {
            guard let entry = try load("core/tokens/" + name), entry.isExpired else { continue }
            try revoke(key: try Self.key(hex: name))
            removed += 1
        }
        return removed
    }

    mutating func renew(key: [UInt8], increment: Int64?, maximum: Int64) throws(VaultError) -> TokenStore.Entry {
        guard var entry = try load(record(key)) else { throw .badRequest("token not found") }
        guard !entry.isBatch else { throw .badRequest("batch tokens cannot be renewed") }
        guard entry.ttl != nil, entry.renewable else { throw .badRequest("lease is not renewable") }
        // A periodic token goes back to its period, whatever the increment.
        var ttl = entry.period ?? increment ?? entry.ttl ?? maximum
        let age = Int64(Date().timeIntervalSince(entry.creationTime))
        if entry.period == nil || entry.explicitMaxTTL > 0 {
            let cap = entry.explicitMaxTTL > 0 ? min(entry.explicitMaxTTL, maximum) : maximum
            ttl = max(0, min(ttl, cap - age))
        }
        entry.lastRenewal = Date()
        entry.ttl = ttl
        try store(entry, record(key))
        return entry
    }
}
