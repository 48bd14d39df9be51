import FoundationEssentials
import Synchronization

/// Named ACL policies (`sys/policies/acl/:name`, legacy `sys/policy/:name`), following OpenBao's policy store:
/// names are lower-cased and trimmed, `root` is built in and immutable, `default` is created on start and cannot be
/// deleted, and every write bumps the policy's version (check-and-set via `cas`). A class behind a mutex (not an
/// actor), so that a request reads its ACL without suspending; resolved ACLs are cached by the token's policy names
/// until a policy changes or one of their rules expires.
final class PolicyStore: Sendable {
    /// What is kept per policy (and what a persistence layer would save).
    struct Entry: Sendable, Equatable, Codable {
        var name: String
        /// The text as written (after base64 decoding), returned as `policy` / `rules`.
        var raw: String
        /// 1 after the first write, +1 per update (`version` on read).
        var version: Int
        var casRequired: Bool
        var modified: Date
    }

    private struct State {
        var entries: [String: Entry]
        var parsed: [String: Policy]
        /// Resolved ACLs by the token's policy names (in order), with the time the first of their rules expires.
        var acls: [[String]: (acl: ACL, validUntil: Date?)] = [:]
    }

    private let state: Mutex<State>
    /// Bounds the ACL cache (tokens with many distinct policy sets): it is cleared when it grows past this.
    private static let aclCacheLimit = 1024

    /// A store holding the `default` policy (version 1) and the `saved` entries (e.g. restored from the barrier).
    init(restoring saved: [Entry]) throws(PolicyError) {
        var entries = [
            "default": Entry(
                name: "default", raw: Policy.defaultRules, version: 1, casRequired: false, modified: Date())
        ]
        var parsed = ["default": Policy.defaultPolicy]
        for entry in saved {
            entries[entry.name] = entry
            parsed[entry.name] = try Policy.parse(entry.raw, name: entry.name)
        }
        state = Mutex(State(entries: entries, parsed: parsed))
    }

    /// A store holding only the `default` policy.
    init() {
        let entry = Entry(name: "default", raw: Policy.defaultRules, version: 1, casRequired: false, modified: Date())
        state = Mutex(State(entries: ["default": entry], parsed: ["default": Policy.defaultPolicy]))
    }

    /// Vault's normalisation of policy names.
    static func sanitize(_ name: String) -> String {
        name.trimmedWhitespace.lowercased()
    }

    /// Vault decodes a `policy` that is valid standard base64 (e.g. `vault policy write` of a file) before parsing.
    static func decodeIfBase64(_ text: String) -> String {
        let compact = text.filter { $0 != "\n" && $0 != "\r" }
        guard !compact.isEmpty, compact.utf8.count % 4 == 0,
            compact.utf8.allSatisfy({ byte in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "+")
                    || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
            }),
            let data = Data(base64Encoded: compact)
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    /// Creates or updates a policy from the request's `policy` (or legacy `rules`) text. `cas`: -1 = must not exist,
    /// n = current version must be n; required when the policy (or this write) sets `cas_required`.
    @discardableResult
    func put(
        name rawName: String, policy text: String, cas: Int? = nil, casRequired: Bool = false
    )
        throws(PolicyError) -> Entry
    {
        let name = Self.sanitize(rawName)
        guard !name.isEmpty else { throw PolicyError("policy name must be provided in the URL") }
        guard !text.isEmpty else { throw PolicyError("'policy' parameter not supplied or empty") }
        let raw = Self.decodeIfBase64(text)
        let policy = try Policy.parse(raw, name: name)
        if name == "root" { throw PolicyError("cannot update \"root\" policy") }

        return try state.withLock { (state) throws(PolicyError) -> Entry in
            try Self.put(name: name, raw: raw, policy: policy, cas: cas, casRequired: casRequired, into: &state)
        }
    }

    private static func put(
        name: String, raw: String, policy: Policy, cas: Int?, casRequired: Bool, into state: inout State
    ) throws(PolicyError) -> Entry {
        let existing = state.entries[name]
        if cas == nil, existing?.casRequired == true || casRequired {
            throw PolicyError("check-and-set parameter required for this call")
        }
        if let cas {
            if cas == -1, existing != nil {
                throw PolicyError("check-and-set parameter set to -1 on existing entry")
            }
            if cas != -1, cas != existing?.version ?? 0 {
                throw PolicyError("check-and-set parameter did not match the current version")
            }
        }
        let entry = Entry(
            name: name, raw: raw, version: (existing?.version ?? 0) + 1, casRequired: casRequired, modified: Date())
        state.entries[name] = entry
        state.parsed[name] = policy
        state.acls = [:]
        return entry
    }

    /// The stored entry, or nil. `root` reads as an empty policy (as in Vault).
    func entry(_ rawName: String) -> Entry? {
        let name = Self.sanitize(rawName)
        if name == "root" {
            return Entry(
                name: "root", raw: "", version: 0, casRequired: false, modified: Date(timeIntervalSince1970: 0))
        }
        return state.withLock { $0.entries[name] }
    }

    /// The parsed policy, or nil when unknown.
    func policy(_ rawName: String) -> Policy? {
        state.withLock { Self.resolve(rawName, in: $0.parsed) }
    }

    /// A policy name looked up as Vault does: sanitised, `root` built in.
    private static func resolve(_ rawName: String, in parsed: [String: Policy]) -> Policy? {
        let name = sanitize(rawName)
        return name == "root" ? .root : parsed[name]
    }

    /// The policies of a token, in order; unknown names are skipped (Vault ignores them too).
    func policies(named names: [String]) -> [Policy] {
        names.compactMap { policy($0) }
    }

    /// An ACL for a token holding `names`, from the cache while no policy has changed and no rule has expired.
    func acl(for names: [String], now: Date = Date()) -> ACL {
        state.withLock { state in
            if let cached = state.acls[names], cached.validUntil.map({ now < $0 }) ?? true { return cached.acl }
            let policies = names.compactMap { Self.resolve($0, in: state.parsed) }
            let acl = ACL(policies: policies, now: now)
            let validUntil = policies.flatMap(\.rules).compactMap(\.expiration).filter { $0 > now }.min()
            if state.acls.count >= Self.aclCacheLimit { state.acls = [:] }
            state.acls[names] = (acl, validUntil)
            return acl
        }
    }

    /// Deletes a policy; deleting an unknown one succeeds. `root` and `default` cannot be deleted.
    func delete(_ rawName: String) throws(PolicyError) {
        let name = Self.sanitize(rawName)
        if name == "root" { throw PolicyError("cannot delete \"root\" policy") }
        if name == "default" { throw PolicyError("cannot delete default policy") }
        state.withLock { state in
            state.entries[name] = nil
            state.parsed[name] = nil
            state.acls = [:]
        }
    }

    /// Policy names as `LIST sys/policies/acl` and `GET sys/policy` return them: the stored names sorted, then
    /// `root` appended.
    func list() -> [String] {
        state.withLock { $0.entries.keys.sorted() } + ["root"]
    }

    /// Every stored entry (for persistence), sorted by name.
    func snapshot() -> [Entry] {
        state.withLock { $0.entries.values.sorted { $0.name < $1.name } }
    }
}
