import FoundationEssentials

/// Named ACL policies (`sys/policies/acl/:name`, legacy `sys/policy/:name`), following OpenBao's policy store:
/// names are lower-cased and trimmed, `root` is built in and immutable, `default` is created on start and cannot be
/// deleted, and every write bumps the policy's version (check-and-set via `cas`).
actor PolicyStore {
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

    private var entries: [String: Entry] = [:]
    private var parsed: [String: Policy] = [:]

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
        self.entries = entries
        self.parsed = parsed
    }

    /// A store holding only the `default` policy.
    init() {
        let entry = Entry(name: "default", raw: Policy.defaultRules, version: 1, casRequired: false, modified: Date())
        entries = ["default": entry]
        parsed = ["default": Policy.defaultPolicy]
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

        let existing = entries[name]
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
        entries[name] = entry
        parsed[name] = policy
        return entry
    }

    /// The stored entry, or nil. `root` reads as an empty policy (as in Vault).
    func entry(_ rawName: String) -> Entry? {
        let name = Self.sanitize(rawName)
        if name == "root" {
            return Entry(
                name: "root", raw: "", version: 0, casRequired: false, modified: Date(timeIntervalSince1970: 0))
        }
        return entries[name]
    }

    /// The parsed policy, or nil when unknown.
    func policy(_ rawName: String) -> Policy? {
        let name = Self.sanitize(rawName)
        return name == "root" ? .root : parsed[name]
    }

    /// The policies of a token, in order; unknown names are skipped (Vault ignores them too).
    func policies(named names: [String]) -> [Policy] {
        names.compactMap { policy($0) }
    }

    /// An ACL for a token holding `names`.
    func acl(for names: [String]) -> ACL {
        ACL(policies: policies(named: names))
    }

    /// Deletes a policy; deleting an unknown one succeeds. `root` and `default` cannot be deleted.
    func delete(_ rawName: String) throws(PolicyError) {
        let name = Self.sanitize(rawName)
        if name == "root" { throw PolicyError("cannot delete \"root\" policy") }
        if name == "default" { throw PolicyError("cannot delete default policy") }
        entries[name] = nil
        parsed[name] = nil
    }

    /// Policy names as `LIST sys/policies/acl` and `GET sys/policy` return them: the stored names sorted, then
    /// `root` appended.
    func list() -> [String] {
        entries.keys.sorted() + ["root"]
    }

    /// Every stored entry (for persistence), sorted by name.
    func snapshot() -> [Entry] {
        entries.values.sorted { $0.name < $1.name }
    }
}
