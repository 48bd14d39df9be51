import Crypto
import Foundation

/// Tokens, stored only as keyed hashes (HMAC-SHA256 under a per-server salt): the token string itself is
/// never kept, logged or compared in the clear.
actor TokenStore {
    struct Entry: Sendable {
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

    private let salt: SymmetricKey
    private var entries: [[UInt8]: Entry] = [:]
    private var accessors: [String: [UInt8]] = [:]
    /// Default and maximum TTL of non-root tokens (Vault's system defaults: 32 days).
    static let maxTTL: Int64 = 768 * 3600

    init() { salt = SymmetricKey(size: .bits256) }

    private func hash(_ token: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: salt))
    }

    static func newToken(prefix: String = "s.") -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<24).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Creates a token; `id` is honoured for the dev root token (`--dev-root-token-id`).
    func create(id: String? = nil, entry: Entry) -> String {
        let token = id ?? Self.newToken()
        let key = hash(token)
        entries[key] = entry
        accessors[entry.accessor] = key
        return token
    }

    /// The live entry of a token, consuming one use when the token has a use limit. Expired tokens are removed.
    func authenticate(_ token: String?) -> Entry? {
        guard let token else { return nil }
        let key = hash(token)
        guard var entry = entries[key] else { return nil }
        if let expiry = entry.expireTime, expiry < Date() {
            revoke(key: key)
            return nil
        }
        if entry.numUses > 0 {
            entry.numUses -= 1
            if entry.numUses == 0 {
                revoke(key: key)
            } else {
                entries[key] = entry
            }
        }
        return entry
    }

    func entry(token: String) -> Entry? { entries[hash(token)] }

    func entry(accessor: String) -> Entry? { accessors[accessor].flatMap { entries[$0] } }

    func key(token: String) -> [UInt8] { hash(token) }

    func key(accessor: String) -> [UInt8]? { accessors[accessor] }

    /// Revokes a token and, unless `orphanChildren`, every token created under it.
    func revoke(key: [UInt8], orphanChildren: Bool = false) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        accessors[entry.accessor] = nil
        for (childKey, child) in entries where child.parent == key {
            if orphanChildren {
                entries[childKey]?.parent = nil
                entries[childKey]?.orphan = true
            } else {
                revoke(key: childKey)
            }
        }
    }

    /// Extends a token's lease by `increment` (or its original TTL), capped by its explicit max TTL and the
    /// system maximum; returns the new TTL.
    func renew(key: [UInt8], increment: Int64?) throws(VaultError) -> Entry {
        guard var entry = entries[key] else { throw .permissionDenied }
        guard entry.ttl != nil else { return entry }
        guard entry.renewable else { throw .badRequest("lease is not renewable") }
        var ttl = increment ?? entry.ttl ?? Self.maxTTL
        let age = Int64(Date().timeIntervalSince(entry.creationTime))
        let cap = entry.explicitMaxTTL > 0 ? min(entry.explicitMaxTTL, Self.maxTTL) : Self.maxTTL
        ttl = max(0, min(ttl, cap - age))
        entry.lastRenewal = Date()
        entry.ttl = ttl
        entries[key] = entry
        return entry
    }

    func accessorList() -> [String] { Array(accessors.keys).sorted() }
}
