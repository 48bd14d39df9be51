import FoundationEssentials
import HTTPTypes

/// `auth/token/…`: create, look up, renew and revoke tokens, in Vault's request and response shapes.
struct TokenBackend: Backend {
    let store: TokenStore

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        guard let caller = request.caller else { throw .permissionDenied }
        let body = request.body
        switch (request.operation, path) {
        case (.update, "create"), (.update, "create-orphan"):
            return try create(request, caller: caller, orphan: path == "create-orphan")
        case (.update, _) where path.hasPrefix("create/"):
            let name = String(path.dropFirst("create/".count))
            guard let role = try store.role(name) else { throw .badRequest("unknown role \(name)") }
            return try create(request, caller: caller, orphan: false, role: (name, role))
        case (.list, "roles"):
            let names = try store.roleNames()
            guard !names.isEmpty else { throw .notFound }
            return .data(["keys": .array(names.map(JSONValue.string))])
        case (.read, _) where path.hasPrefix("roles/"):
            guard let role = try store.role(String(path.dropFirst("roles/".count))) else { throw .notFound }
            return .data(role.description(name: String(path.dropFirst("roles/".count))))
        case (.update, _) where path.hasPrefix("roles/"):
            let name = String(path.dropFirst("roles/".count))
            guard !name.isEmpty, !name.contains("/") else { throw .badRequest("invalid role name") }
            var role = try store.role(name) ?? TokenStore.Role()
            try role.update(from: body)
            try store.putRole(name, role)
            return .noContent
        case (.delete, _) where path.hasPrefix("roles/"):
            try store.deleteRole(String(path.dropFirst("roles/".count)))
            return .noContent
        case (.read, "lookup-self"), (.update, "lookup-self"):
            return .data(Self.lookup(caller.entry, id: request.token ?? ""))
        case (.update, "lookup"), (.read, "lookup"):
            // No token (or an empty one) looks up the caller, as lookup-self; GET takes it from the query.
            let named = request.operation == .read ? request.query["token"] : try body.string("token")
            guard let token = named, !token.isEmpty else {
                return .data(Self.lookup(caller.entry, id: request.token ?? ""))
            }
            guard let entry = try store.entry(token: token) else {
                throw VaultError(status: .forbidden, messages: ["bad token"])
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
            // Orphaning a token's children takes sudo on the path, as Vault's handler checks it (the path itself
            // is not root-protected: only `revoke-orphan/<token>` is).
            if path == "revoke-orphan", !Self.isSudo(request, caller: caller) {
                throw .badRequest("root or sudo privileges required to revoke and orphan")
            }
            let entry = try store.entry(token: token)
            if entry?.isBatch == true { throw .badRequest("batch tokens cannot be revoked") }
            if entry == nil, path == "revoke-orphan" { throw .badRequest("token to revoke not found") }
            try store.revoke(key: store.key(token: token), orphanChildren: path == "revoke-orphan")
            return .noContent
        case (.update, "revoke-accessor"):
            guard let accessor = try body.string("accessor") else { throw .badRequest("missing accessor") }
            guard let key = try store.key(accessor: accessor) else {
                return .warning("No token found with this accessor")
            }
            try store.revoke(key: key)
            return .noContent
        case (.update, "renew-accessor"):
            guard let accessor = try body.string("accessor"), let key = try store.key(accessor: accessor) else {
                throw .badRequest("invalid accessor")
            }
            // The token itself is not known from its accessor: the answer's client_token is empty, as in Vault.
            let entry = try store.renew(key: key, increment: try body.duration("increment"))
            return VaultReply(auth: Self.auth(entry, token: ""))
        case (.update, "tidy"):
            guard caller.entry.isRoot else { throw .permissionDenied }
            let removed = try store.tidy()
            // Done before answering (Vault starts it in the background): the same 202 and a warning.
            return .warning(
                "Tidy operation finished: \(removed) expired token\(removed == 1 ? "" : "s") removed.",
                status: .accepted)
        case (.list, "accessors"):
            guard caller.entry.isRoot else { throw .permissionDenied }
            return .data(["keys": .array(try store.accessorList().map(JSONValue.string))])
        default:
            throw .unsupportedPath("auth/token/\(path)")
        }
    }

    private func create(
        _ request: VaultRequest, caller: Caller, orphan requestedOrphan: Bool,
        role: (name: String, role: TokenStore.Role)? = nil
    ) throws(VaultError) -> VaultReply {
        let body = request.body
        let isSudo = Self.isSudo(request, caller: caller)
        let noDefault = try body.bool("no_default_policy") == true || role?.role.tokenNoDefaultPolicy == true
        // Names are sanitised as everywhere else (trimmed, lower-cased): `ROOT` is `root`.
        let requested = try Self.stringList(body, "policies").map { TokenStore.sanitizePolicies($0) }
        // Without `policies` the child inherits its parent's, root included (with a role: the role's allowed ones).
        var policies: [String]
        if let (_, role) = role {
            policies = try role.policies(
                requested: requested, parent: TokenStore.sanitizePolicies(caller.entry.policies), noDefault: noDefault)
        } else {
            policies = requested ?? TokenStore.sanitizePolicies(caller.entry.policies)
        }
        if !isSudo {
            // A token cannot grant policies its creator does not hold, unless a role lists them as allowed.
            let roleAllows = role.map { !$0.role.allowedPolicies.isEmpty } ?? false
            guard roleAllows || Set(policies).isSubset(of: Set(TokenStore.sanitizePolicies(caller.entry.policies)))
            else {
                throw .badRequest("child policies must be subset of parent")
            }
            guard try body.string("id") == nil else {
                throw .badRequest("root or sudo privileges required to specify token id")
            }
        }
        if let reserved = policies.first(where: { PolicyStore.nonAssignable.contains($0) }) {
            throw .badRequest("cannot assign policy \"\(reserved)\"")
        }
        if !noDefault, !policies.contains("default"), !policies.contains("root") {
            policies.append("default")
        }
        policies = TokenStore.sanitizePolicies(policies)
        let isRoot = policies == ["root"]
        // Whatever a role allows or sudo grants: only a root token creates a root token (Vault's guard against
        // escalation by `sudo` holders and by roles listing `root`).
        if isRoot, !caller.entry.isRoot {
            throw .badRequest("root tokens may not be created without parent token being root")
        }
        let type: String?
        switch try body.string("type") ?? role?.role.tokenType {
        case nil, "", "service", "default", "default-service": type = nil
        case "batch", "default-batch":
            guard !isRoot else { throw .badRequest("batch tokens cannot be root tokens") }
            type = "batch"
        default: throw .badRequest("invalid 'token_type' value")
        }
        var explicitMax = try body.duration("explicit_max_ttl") ?? 0
        if let roleMax = role?.role.tokenExplicitMaxTTL, roleMax > 0 {
            explicitMax = explicitMax > 0 ? min(explicitMax, roleMax) : roleMax
        }
        if try body.string("entity_alias") != nil, role == nil {
            throw .badRequest("'entity_alias' is only allowed in combination with token role")
        }
        var period = try body.duration("period") ?? 0
        if period > 0, type == "batch" { throw .badRequest("batch tokens cannot have \"period\" set") }
        if let rolePeriod = role?.role.tokenPeriod, rolePeriod > 0 { period = rolePeriod }
        if period > 0, !isSudo, role?.role.tokenPeriod ?? 0 == 0 {
            throw .badRequest("root or sudo privileges required to create periodic token")
        }
        // Vault's order: a TTL is computed for a periodic token, one asked with a TTL, and every non-root token
        // (the token method's default when none is asked; never above its maximum, a period included, as in
        // OpenBao); a root token asked without one is bound only by an explicit max TTL, else it never expires.
        let tuning = store.tuning
        let askedTTL = try body.duration("ttl") ?? 0
        var ttl: Int64 = 0
        if period > 0 || askedTTL > 0 || !isRoot {
            ttl = period > 0 ? period : askedTTL > 0 ? askedTTL : tuning.defaultTTL
            ttl = min(ttl, tuning.maximum)
            if explicitMax > 0 { ttl = min(ttl, explicitMax) }
        } else if explicitMax > 0 {
            ttl = explicitMax
        }
        // A token that expires cannot create one that never does.
        if ttl == 0, caller.entry.ttl != nil {
            throw .badRequest("expiring root tokens cannot create non-expiring root tokens")
        }
        let numUses = try body.int("num_uses") ?? 0
        guard numUses >= 0 else { throw .badRequest("number of uses cannot be negative") }
        var meta: [String: JSONValue] = [:]
        if case .object(let object)? = body["meta"] {
            // Vault's metadata is a map of strings: numbers and booleans are taken in their text form.
            for (key, value) in object {
                guard let text = value.text else {
                    throw .badRequest("'meta' must map names to strings: '\(key)' does not")
                }
                meta[key] = .string(text)
            }
        }
        let noParent = try body.bool("no_parent") ?? false
        let orphan = requestedOrphan || role?.role.orphan == true
        // `create-orphan` (or an orphan role) is for whoever may call it; `no_parent` elsewhere takes sudo (Vault).
        if noParent, !orphan, !isSudo {
            throw .badRequest("root or sudo privileges required to create orphan token")
        }
        let renewable = (try body.bool("renewable") ?? true) && role?.role.renewable != false
        var entry = TokenStore.Entry(
            accessor: TokenStore.newToken(prefix: ""), policies: policies,
            displayName: Self.displayName(try body.string("display_name")), creationTime: Date(),
            // A root token created without a TTL never expires (and so is not renewable).
            ttl: ttl == 0 ? nil : ttl, explicitMaxTTL: explicitMax,
            renewable: type == nil && renewable, numUses: numUses,
            meta: meta, parent: orphan || noParent ? nil : caller.key, orphan: orphan || noParent,
            path: "auth/token/create" + (role.map { "/" + $0.name + $0.role.pathSuffixPart } ?? ""))
        entry.period = period > 0 ? period : nil
        entry.type = type
        entry.role = role?.name
        let token = try store.create(id: try body.string("id"), entry: entry)
        return VaultReply(auth: Self.auth(entry, token: token))
    }

    /// Vault's `SudoPrivilege` on the request's path: a root token, or `sudo` on the rule that governs the path.
    static func isSudo(_ request: VaultRequest, caller: Caller) -> Bool {
        caller.entry.isRoot || request.acl?.hasSudo(.read, path: request.path) == true
    }

    /// Vault's token display name: "token-" and the requested name with every character other than letters,
    /// digits and '-' turned into '-', and one trailing '-' removed (Go's `strings.TrimSuffix`).
    static func displayName(_ requested: String?) -> String {
        guard let requested, !requested.isEmpty else { return "token" }
        var name = String(
            ("token-" + requested).unicodeScalars.map { scalar -> Character in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-")
                    ? Character(scalar) : "-"
            })
        if name.hasSuffix("-") { name.removeLast() }
        return name
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
            "token_type": .string(entry.type ?? "service"), "orphan": .bool(entry.orphan), "mfa_requirement": .null,
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
            "ttl": .int(remaining), "type": .string(entry.type ?? "service"),
        ]
        // A period that came from a role is the role's: lookup shows it only for tokens asked with one (as OpenBao).
        if let period = entry.period, entry.role == nil { data["period"] = .int(period) }
        if let role = entry.role { data["role"] = .string(role) }
        if let renewal = entry.lastRenewal {
            data["last_renewal"] = .string(TransitTime.rfc3339(renewal))
            data["last_renewal_time"] = .int(Int64(renewal.timeIntervalSince1970))
        }
        return data
    }
}
