/// A secrets engine or built-in path handler: answers requests for paths below its mount point.
protocol Backend: Sendable {
    /// `path` is relative to the mount (no leading slash, may be empty).
    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply
    /// Vault's existence check for a POST/PUT on `path`: true when the item exists (the ACL then requires `update`),
    /// false when the write would create it (`create`), nil when the path has no such check.
    func existence(of path: String) async -> Bool?
    /// Serves the request on the calling thread (an event loop) when that needs no storage write and no wait;
    /// nil: not served, call `handle`. Nothing may have changed when it returns nil.
    func handleOnLoop(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply?
    /// Whether `existence(of:)` has anything to say (false: it always answers nil, so the ACL check needs no wait).
    var hasExistenceCheck: Bool { get }
}

extension Backend {
    func existence(of path: String) async -> Bool? { nil }
    func handleOnLoop(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply? { nil }
    var hasExistenceCheck: Bool { false }
}

/// One entry of the mount table (`sys/mounts`).
struct Mount: Sendable {
    var path: String  // with trailing "/"
    var type: String
    var description: String
    var accessor: String
    var uuid: String
    var options: [String: JSONValue]
    var backend: any Backend
    /// Lease TTLs set through `sys/mounts/<path>/tune`, in seconds (0: the system's).
    var defaultLeaseTTL: Int64 = 0
    var maxLeaseTTL: Int64 = 0

    /// The system's default and maximum lease TTL (Vault's 768 h), which a mount's 0 stands for.
    static let systemLeaseTTL: Int64 = 768 * 3600

    /// Refuses a default lease TTL above the maximum (either 0 stands for the system's), as Vault does.
    func checkLeaseTTLs() throws(VaultError) {
        let maxTTL = maxLeaseTTL > 0 ? maxLeaseTTL : Self.systemLeaseTTL
        guard defaultLeaseTTL <= maxTTL else {
            throw .badRequest(
                "backend max lease TTL of \(maxTTL) would be less than backend default lease TTL of \(defaultLeaseTTL)")
        }
    }

    /// `sys/mounts/<path>/tune`'s answer.
    var tuning: [String: JSONValue] {
        [
            "default_lease_ttl": .int(defaultLeaseTTL > 0 ? defaultLeaseTTL : Self.systemLeaseTTL),
            "max_lease_ttl": .int(maxLeaseTTL > 0 ? maxLeaseTTL : Self.systemLeaseTTL),
            "description": .string(description), "force_no_cache": .bool(false),
            "options": options.isEmpty ? .null : .object(options),
        ]
    }

    var listing: JSONValue {
        .object([
            "type": .string(type), "description": .string(description), "accessor": .string(accessor),
            "uuid": .string(uuid), "local": .bool(false), "seal_wrap": .bool(false),
            "external_entropy_access": .bool(false),
            "options": options.isEmpty ? .null : .object(options),
            "config": .object([
                "default_lease_ttl": .int(defaultLeaseTTL), "max_lease_ttl": .int(maxLeaseTTL),
                "force_no_cache": .bool(false),
            ]),
        ])
    }
}
