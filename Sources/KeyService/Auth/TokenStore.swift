import Crypto
import FoundationEssentials
import SNP

/// Tokens, stored only as keyed hashes (HMAC-SHA256 under a per-store salt) in the sealed store: the token string
/// itself is never kept, logged or compared in the clear. Records: `core/tokens/<hash hex>`,
/// `core/accessors/<accessor>` → hash hex, and the salt at `core/token-salt`.
actor TokenStore {
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
        var expireTime: Date? { ttl.map { (lastRenewal ?? creationTime).addingTimeInterval(TimeInterval($0)) } }
        var isRoot: Bool { policies.contains("root") }
    }

    private let storage: EngineStorage
    private let salt: SymmetricKey
    /// Entries by record path, written through to the sealed store.
    private var cache: [String: Entry] = [:]

    private func load(_ path: String) throws(VaultError) -> Entry? {
        if let cached = cache[path] { return cached }
        let entry = try storage.read(Entry.self, path)
        if let entry { cache[path] = entry }
        return entry
    }

    private func store(_ entry: Entry, _ path: String) throws(VaultError) {
        try storage.write(entry, path)
        cache[path] = entry
    }

    private func drop(_ path: String) throws(VaultError) {
        try storage.remove(path)
        cache[path] = nil
    }
    /// Default and maximum TTL of non-root tokens (Vault's system defaults: 32 days).
    static let maxTTL: Int64 = 768 * 3600

    /// Opens the token store, creating its salt on first use.
    init(storage: EngineStorage) throws(VaultError) {
        self.storage = storage
        if let stored = try storage.read([UInt8].self, "core/token-salt") {
            salt = SymmetricKey(data: stored)
        } else {
            let fresh = SymmetricKey(size: .bits256)
            try storage.write(fresh.withUnsafeBytes { Array($0) }, "core/token-salt")
            salt = fresh
        }
    }

    private func hash(_ token: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: salt))
    }

    private func record(_ key: [UInt8]) -> String { "core/tokens/" + Hex.encode(key) }

    /// A token hash back from its hex form in a record name or the accessor index.
    private static func key(hex: String) throws(VaultError) -> [UInt8] {
        do { return try Hex.decode(hex, count: 32) } catch {
            throw .internalError("sealed storage holds a malformed token hash '\(hex)': \(error)")
        }
    }

    static func newToken(prefix: String = "s.") -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<24).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Creates a token; `id` is honoured for the dev root token (`--dev-root-token-id`).
    func create(id: String? = nil, entry: Entry) throws(VaultError) -> String {
        let token = id ?? Self.newToken()
        let key = hash(token)
        try store(entry, record(key))
        try storage.write(Hex.encode(key), "core/accessors/" + entry.accessor)
        return token
    }

    /// The live entry of a token, consuming one use when the token has a use limit. Expired tokens are removed.
    func authenticate(_ token: String?) throws(VaultError) -> Entry? {
        guard let token else { return nil }
        let key = hash(token)
        guard var entry = try load(record(key)) else { return nil }
        if let expiry = entry.expireTime, expiry < Date() {
            try revoke(key: key)
            return nil
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

    func entry(token: String) throws(VaultError) -> Entry? { try load(record(hash(token))) }

    func entry(accessor: String) throws(VaultError) -> Entry? {
        guard let key = try key(accessor: accessor) else { return nil }
        return try load(record(key))
    }

    func key(token: String) -> [UInt8] { hash(token) }

    func key(accessor: String) throws(VaultError) -> [UInt8]? {
        guard let hex = try storage.read(String.self, "core/accessors/" + accessor) else { return nil }
        return try Self.key(hex: hex)
    }

    /// Revokes a token and, unless `orphanChildren`, every token created under it.
    func revoke(key: [UInt8], orphanChildren: Bool = false) throws(VaultError) {
        guard let entry = try load(record(key)) else { return }
        try drop(record(key))
        try storage.remove("core/accessors/" + entry.accessor)
        for name in try storage.children("core/tokens/") where !name.hasSuffix("/") {
            guard var child = try load("core/tokens/" + name), child.parent == key else { continue }
            let childKey = try Self.key(hex: name)
            if orphanChildren {
                child.parent = nil
                child.orphan = true
                try store(child, "core/tokens/" + name)
            } else {
                try revoke(key: childKey)
            }
        }
    }

    /// Extends a token's lease by `increment` (or its original TTL), capped by its explicit max TTL and the
    /// system maximum.
    func renew(key: [UInt8], increment: Int64?) throws(VaultError) -> Entry {
        guard var entry = try load(record(key)) else { throw .permissionDenied }
        guard entry.ttl != nil else { return entry }
        guard entry.renewable else { throw .badRequest("lease is not renewable") }
        var ttl = increment ?? entry.ttl ?? Self.maxTTL
        let age = Int64(Date().timeIntervalSince(entry.creationTime))
        let cap = entry.explicitMaxTTL > 0 ? min(entry.explicitMaxTTL, Self.maxTTL) : Self.maxTTL
        ttl = max(0, min(ttl, cap - age))
        entry.lastRenewal = Date()
        entry.ttl = ttl
        try store(entry, record(key))
        return entry
    }

    func accessorList() throws(VaultError) -> [String] {
        try storage.children("core/accessors/").filter { !$0.hasSuffix("/") }
    }
}
