import FoundationEssentials

/// KV version 1: one unversioned JSON object per path (`kv` mounts enabled without `options.version`, or with
/// "1"). Reads carry a lease duration, as Vault's do: the secret's own `ttl` field when it has one, else the
/// mount's default lease TTL.
struct KVV1Backend: Backend {
    let storage: EngineStorage

    /// Writes to an existing secret need `update`, new ones `create`.
    var hasExistenceCheck: Bool { true }

    func existence(of path: String) async -> Bool? {
        guard !path.isEmpty, !path.hasSuffix("/") else { return nil }
        do { return try storage.read([String: JSONValue].self, Self.record(path)) != nil } catch { return false }
    }

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        switch request.operation {
        case .list:
            let base = path.isEmpty || path.hasSuffix("/") ? path : path + "/"
            let keys = try storage.children(Self.record(base))
            guard !keys.isEmpty else { throw .notFound }
            return .data(["keys": .array(keys.map(JSONValue.string))])
        case .read:
            guard !path.isEmpty else { throw .unsupportedOperation(path) }
            guard let data = try storage.read([String: JSONValue].self, Self.record(path)) else { throw .notFound }
            var reply = VaultReply(data: .object(data))
            reply.leaseDuration = try JSONValue.object(data).duration("ttl") ?? VaultReply.mountDefaultLease
            return reply
        case .create, .update:
            guard !path.isEmpty, !path.hasSuffix("/") else { throw .badRequest("missing secret path") }
            guard case .object(let data) = request.body, !data.isEmpty else { throw .badRequest("no data provided") }
            if data["ttl"] != nil, (try? JSONValue.object(data).duration("ttl")) == nil {
                throw .badRequest("failed to parse ttl: invalid duration")
            }
            try storage.write(data, Self.record(path))
            return .noContent
        case .delete:
            guard !path.isEmpty else { throw .unsupportedOperation(path) }
            try storage.remove(Self.record(path))
            return .noContent
        case .patch:
            throw .unsupportedOperation(path)
        }
    }

    static func record(_ path: String) -> String { "secrets/" + path }
}
