import FoundationEssentials
import Synchronization

/// Named ACL policies (`sys/policies/acl/:name`, legacy `sys/policy/:name`), following OpenBao's policy store:
/// names are lower-cased and trimmed, `root` and `response-wrapping` are built in and immutable, `default` is created on start and cannot be
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
        // A built-in name kept by an older version is not restored: the built-in stands.
        for entry in saved where !Self.immutable.contains(entry.name) {
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
        let compact = text.filter { !$0.isNewline }
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

    /// Policies that can be neither written nor deleted: `root` (everything) and `response-wrapping` (what a
    /// response-wrapping token may do), as OpenBao's `immutablePolicies`.
    static let immutable: Set<String> = ["root", TokenStore.wrappingPolicy]
    /// Policies no token may be given at creation (OpenBao's `nonAssignablePolicies`): only the token store gives
    /// `response-wrapping`, to its wrapping tokens.
    static let nonAssignable: Set<String> = [TokenStore.wrappingPolicy]

    /// Creates or updates a policy from the request's `policy` (or legacy `rules`) text. `cas`: -1 = must not exist,
    /// n = current version must be n; required when the policy (or this write) sets `cas_required`. `persist` is
    /// given the stored entries as they will be and runs before the change is made: when it fails, the store is
    /// left as it was (nothing is served that is not kept).
    @discardableResult
    func put(
        name rawName: String, policy text: String, cas: Int? = nil, casRequired: Bool = false,
        persist: ([Entry]) throws(VaultError) -> Void = { _ in }
    )
        throws(VaultError) -> Entry
    {
        let name = Self.sanitize(rawName)
        guard !name.isEmpty else { throw .badRequest("policy name must be provided in the URL") }
        guard !text.isEmpty else { throw .badRequest("'policy' parameter not supplied or empty") }
        let raw = Self.decodeIfBase64(text)
        let policy: Policy
        do { policy = try Policy.parse(raw, name: name) } catch { throw .badRequest(error.message) }
        if Self.immutable.contains(name) { throw .badRequest("cannot update \"\(name)\" policy") }

        return try state.withLock { (state) throws(VaultError) -> Entry in
            var next = state
            let entry = try Self.put(
                name: name, raw: raw, policy: policy, cas: cas, casRequired: casRequired, into: &next)
            try persist(Self.stored(next))
            state = next
            return entry
        }
    }

    /// The entries a persistence layer keeps, sorted by name (the built-ins that cannot change are not among them).
    private static func stored(_ state: State) -> [Entry] {
        state.entries.values.sorted { $0.name < $1.name }
    }

    private static func put(
        name: String, raw: String, policy: Policy, cas: Int?, casRequired: Bool, into state: inout State
    ) throws(VaultError) -> Entry {
        let existing = state.entries[name]
        if cas == nil, existing?.casRequired == true || casRequired {
            throw .badRequest("check-and-set parameter required for this call")
        }
        if let cas {
            if cas == -1, existing != nil {
                throw .badRequest("check-and-set parameter set to -1 on existing entry")
            }
            if cas != -1, cas != existing?.version ?? 0 {
                throw .badRequest("check-and-set parameter did not match the current version")
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
        if name == TokenStore.wrappingPolicy { return Self.wrappingEntry }
        return state.withLock { $0.entries[name] }
    }

    /// The parsed policy, or nil when unknown.
    func policy(_ rawName: String) -> Policy? {
        state.withLock { Self.resolve(rawName, in: $0.parsed) }
    }

    /// A policy name looked up as Vault does: sanitised, `root` and `response-wrapping` built in.
    private static func resolve(_ rawName: String, in parsed: [String: Policy]) -> Policy? {
        switch sanitize(rawName) {
        case "root": .root
        case TokenStore.wrappingPolicy: wrappingPolicy
        case let name: parsed[name]
        }
    }

    /// OpenBao's built-in `response-wrapping` policy: what a response-wrapping token may do.
    static let wrappingRules = """

        path "cubbyhole/response" {
            capabilities = ["create", "read"]
        }

        path "sys/wrapping/unwrap" {
            capabilities = ["update"]
        }

        path "auth/token/revoke-self" {
            capabilities = ["update"]
        }

        """

    static let wrappingPolicy: Policy = {
        do { return try Policy.parse(wrappingRules, name: TokenStore.wrappingPolicy) } catch {
            fatalError("response-wrapping policy: \(error)")
        }
    }()

    private static let wrappingEntry = Entry(
        name: TokenStore.wrappingPolicy, raw: wrappingRules, version: 1, casRequired: false,
        modified: Date(timeIntervalSince1970: 0))

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

    /// Deletes a policy; deleting an unknown one succeeds. `root`, `response-wrapping` and `default` cannot be
    /// deleted. `persist` runs first, with the entries as they will be: when it fails, the policy stays.
    func delete(_ rawName: String, persist: ([Entry]) throws(VaultError) -> Void = { _ in }) throws(VaultError) {
        let name = Self.sanitize(rawName)
        if Self.immutable.contains(name) { throw .badRequest("cannot delete \"\(name)\" policy") }
        if name == "default" { throw .badRequest("cannot delete default policy") }
        try state.withLock { (state) throws(VaultError) in
            var next = state
            next.entries[name] = nil
            next.parsed[name] = nil
            next.acls = [:]
            try persist(Self.stored(next))
            state = next
        }
    }

    /// Policy names as `LIST sys/policies/acl` and `GET sys/policy` return them: the stored names sorted, then
    /// `root` appended.
    func list() -> [String] {
        state.withLock { $0.entries.keys.sorted() } + ["root"]
    }

    /// Every stored entry (for persistence), sorted by name.
    func snapshot() -> [Entry] {
        state.withLock { Self.stored($0) }
    }
}
