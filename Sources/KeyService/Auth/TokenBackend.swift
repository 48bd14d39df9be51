import FoundationEssentials

/// `auth/token/…`: create, look up, renew and revoke tokens, in Vault's request and response shapes.
struct TokenBackend: Backend {
    let store: TokenStore

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        guard let caller = request.caller else { throw .permissionDenied }
        let body = request.body
        switch (request.operation, path) {
        case (.update, "create"), (.update, "create-orphan"):
            return try create(request, caller: caller, orphan: path == "create-orphan")
        case (.read, "lookup-self"), (.update, "lookup-self"):
            return .data(Self.lookup(caller.entry, id: request.token ?? ""))
        case (.update, "lookup"):
            guard let token = try body.string("token"), let entry = try store.entry(token: token) else {
                throw .badRequest("bad token")
            }
            return .data(Self.lookup(entry, id: token))
        case (.update, "lookup-accessor"):
            guard let accessor = try body.string("accessor"), let entry = try store.entry(accessor: accessor)
            else { throw .badRequest("invalid accessor") }
            return .data(Self.lookup(entry, id: ""))
        case (.update, "renew-self"):
            let entry = try store.renew(key: caller.key, increment: try body.duration("increment"))
            return VaultReply(auth: Self.auth(entry, token: request.token ?? ""))
        case (.update, "renew"):
            guard let token = try body.string("token") else { throw .badRequest("missing token") }
            let entry = try store.renew(
                key: store.key(token: token), increment: try body.duration("increment"))
            return VaultReply(auth: Self.auth(entry, token: token))
        case (.update, "revoke-self"):
            try store.revoke(key: caller.key)
            return .noContent
        case (.update, "revoke"), (.update, "revoke-orphan"):
            guard let token = try body.string("token") else { throw .badRequest("missing token") }
            try store.revoke(key: store.key(token: token), orphanChildren: path == "revoke-orphan")
            return .noContent
        case (.update, "revoke-accessor"):
            guard let accessor = try body.string("accessor"), let key = try store.key(accessor: accessor) else {
                throw .badRequest("invalid accessor")
            }
            try store.revoke(key: key)
            return .noContent
        case (.list, "accessors"):
            guard caller.entry.isRoot else { throw .permissionDenied }
            return .data(["keys": .array(try store.accessorList().map(JSONValue.string))])
        default:
            throw .unsupportedPath("auth/token/\(path)")
        }
    }

    private func create(_ request: VaultRequest, caller: Caller, orphan: Bool) throws(VaultError) -> VaultReply {
        let body = request.body
        var policies = try Self.stringList(body, "policies") ?? caller.entry.policies.filter { $0 != "root" }
        if !caller.entry.isRoot {
            // A token cannot grant policies its creator does not hold.
            guard Set(policies).isSubset(of: Set(caller.entry.policies)) else {
                throw .badRequest("child policies must be subset of parent")
            }
            guard try body.string("id") == nil else {
                throw .badRequest("root or sudo privileges required to specify token id")
            }
        }
        if try body.bool("no_default_policy") != true, !policies.contains("default"), !policies.contains("root") {
            policies.append("default")
        }
        policies = Array(Set(policies)).sorted()
        let explicitMax = try body.duration("explicit_max_ttl") ?? 0
        var ttl = try body.duration("ttl") ?? TokenStore.maxTTL
        if ttl == 0 { ttl = TokenStore.maxTTL }
        if explicitMax > 0 { ttl = min(ttl, explicitMax) }
        let isRoot = policies.contains("root")
        var meta: [String: JSONValue] = [:]
        if case .object(let object)? = body["meta"] { meta = object }
        let noParent = try body.bool("no_parent") ?? false
        let entry = TokenStore.Entry(
            accessor: TokenStore.newToken(prefix: ""), policies: policies,
            displayName: "token" + ((try body.string("display_name")).map { "-" + $0 } ?? ""), creationTime: Date(),
            ttl: isRoot && body["ttl"] == nil ? nil : ttl, explicitMaxTTL: explicitMax,
            renewable: try body.bool("renewable") ?? true, numUses: try body.int("num_uses") ?? 0, meta: meta,
            parent: orphan || noParent ? nil : caller.key, orphan: orphan || noParent, path: "auth/token/create")
        let token = try store.create(id: try body.string("id"), entry: entry)
        return VaultReply(auth: Self.auth(entry, token: token))
    }

    static func stringList(_ body: JSONValue, _ key: String) throws(VaultError) -> [String]? {
        switch body[key] {
        case nil: return nil
        case .array(let values)?:
            var out: [String] = []
            for value in values {
                guard case .string(let text) = value else { throw .badRequest("'\(key)' must be a list of strings") }
                out.append(text)
            }
            return out
        case .string(let text)?:
            return text.split(separator: ",").map { $0.trimmedWhitespace }.filter { !$0.isEmpty }
        default: throw .badRequest("'\(key)' must be a list of strings")
        }
    }

    /// The `auth` block of create and renew responses.
    static func auth(_ entry: TokenStore.Entry, token: String) -> JSONValue {
        .object([
            "client_token": .string(token), "accessor": .string(entry.accessor),
            "policies": .array(entry.policies.map(JSONValue.string)),
            "token_policies": .array(entry.policies.map(JSONValue.string)),
            "metadata": entry.meta.isEmpty ? .null : .object(entry.meta), "lease_duration": .int(entry.ttl ?? 0),
            "renewable": .bool(entry.renewable && entry.ttl != nil), "entity_id": .string(""),
            "token_type": .string("service"), "orphan": .bool(entry.orphan), "mfa_requirement": .null,
            "num_uses": .int(entry.numUses),
        ])
    }

    /// The `data` of lookup responses.
    static func lookup(_ entry: TokenStore.Entry, id: String) -> [String: JSONValue] {
        let remaining = entry.expireTime.map { max(0, Int64($0.timeIntervalSinceNow.rounded())) } ?? 0
        var data: [String: JSONValue] = [
            "accessor": .string(entry.accessor), "creation_time": .int(Int64(entry.creationTime.timeIntervalSince1970)),
            "creation_ttl": .int(entry.ttl ?? 0), "display_name": .string(entry.displayName), "entity_id": .string(""),
            "expire_time": entry.expireTime.map { .string(TransitTime.rfc3339($0)) } ?? .null,
            "explicit_max_ttl": .int(entry.explicitMaxTTL), "id": .string(id),
            "issue_time": .string(TransitTime.rfc3339(entry.creationTime)),
            "meta": entry.meta.isEmpty ? .null : .object(entry.meta), "num_uses": .int(entry.numUses),
            "orphan": .bool(entry.orphan), "path": .string(entry.path),
            "policies": .array(entry.policies.map(JSONValue.string)),
            "renewable": .bool(entry.renewable && entry.ttl != nil),
            "ttl": .int(remaining), "type": .string("service"),
        ]
        if let renewal = entry.lastRenewal {
            data["last_renewal"] = .string(TransitTime.rfc3339(renewal))
            data["last_renewal_time"] = .int(Int64(renewal.timeIntervalSince1970))
        }
        return data
    }
}
