import FoundationEssentials

/// A token's policies compiled for checks, following OpenBao's `vault/acl.go`: exact rules win outright; otherwise
/// the longest prefix (`*`) rule and every matching `+` rule compete and the most specific wins. The same pattern in
/// several policies (or stanzas) merges: capabilities are united, and `deny` replaces everything.
struct ACL: Sendable {
    /// The merged grant of one pattern.
    struct Permissions: Sendable, Equatable {
        var capabilities: Set<Capability>
        /// Wrapping-TTL bounds in seconds (0: none); with either, only a wrapped request within them is allowed.
        var minWrappingTTL: Int64 = 0
        var maxWrappingTTL: Int64 = 0
        var requiredParameters: [String] = []
        /// `allowed_parameters` / `denied_parameters`: lower-cased name → permitted (denied) values; an empty list
        /// means any value, the name `*` any parameter.
        var allowedParameters: [String: [ParameterValue]] = [:]
        var deniedParameters: [String: [ParameterValue]] = [:]
    }

    /// A value in a parameter constraint: a string (`*` at either end globs), or a scalar compared as text.
    struct ParameterValue: Sendable, Equatable {
        var text: String
        var isString: Bool

        init(_ value: HCL.Value) {
            switch value {
            case .string(let text): (self.text, isString) = (text, true)
            case .number(let text): (self.text, isString) = (text, false)
            case .bool(let flag): (text, isString) = (flag ? "true" : "false", false)
            case .null: (text, isString) = ("null", false)
            case .list, .object: (text, isString) = ("\u{0}composite", false)
            }
        }

        /// Vault's `valueInSliceCheck` for one request value: globbed strings, otherwise equality.
        func matches(_ value: JSONValue) -> Bool {
            let candidate: String
            switch value {
            case .string(let text):
                if isString, self.text.count >= 2, self.text.first == "*" || self.text.last == "*" {
                    return Self.glob(self.text, text)
                }
                candidate = text
            case .int(let number): candidate = String(number)
            case .double(let number): candidate = String(number)
            case .bool(let flag): candidate = flag ? "true" : "false"
            case .null: candidate = "null"
            case .array, .object: return false
            }
            return candidate == text
        }

        /// Vault's `GlobbedStringsMatch`: `*x*` contains, `*x` suffix, `x*` prefix.
        static func glob(_ pattern: String, _ value: String) -> Bool {
            let prefix = pattern.hasPrefix("*")
            let suffix = pattern.hasSuffix("*")
            if prefix && suffix { return value.contains(pattern.dropFirst().dropLast()) }
            if prefix { return value.hasSuffix(pattern.dropFirst()) }
            return value.hasPrefix(pattern.dropLast())
        }
    }

    /// The token holds `root`: everything is allowed, with sudo.
    let isRoot: Bool
    private var exact: [String: Permissions] = [:]
    private var prefixes: [String: Permissions] = [:]
    private var segmentWildcards: [String: Permissions] = [:]

    init(policies: [Policy], now: Date = Date()) {
        isRoot = policies.contains { $0.name == "root" }
        for policy in policies {
            for rule in policy.rules {
                if let expiration = rule.expiration, now > expiration { continue }
                let permissions = Permissions(
                    capabilities: rule.capabilities, minWrappingTTL: rule.minWrappingTTL,
                    maxWrappingTTL: rule.maxWrappingTTL,
                    requiredParameters: rule.requiredParameters,
                    allowedParameters: (rule.allowedParameters ?? [:]).mapValues { $0.map(ParameterValue.init) },
                    deniedParameters: (rule.deniedParameters ?? [:]).mapValues { $0.map(ParameterValue.init) })
                if rule.hasSegmentWildcards {
                    Self.merge(permissions, into: &segmentWildcards[rule.path])
                } else if rule.isPrefix {
                    Self.merge(permissions, into: &prefixes[rule.path])
                } else {
                    Self.merge(permissions, into: &exact[rule.path])
                }
            }
        }
    }

    private static func merge(_ new: Permissions, into slot: inout Permissions?) {
        guard var existing = slot else {
            slot = new
            return
        }
        if existing.capabilities.contains(.deny) { return }
        if new.capabilities.contains(.deny) {
            existing.capabilities = [.deny]
        } else {
            existing.capabilities.formUnion(new.capabilities)
        }
        // Vault keeps the loosest bounds: the lowest minimum and the highest maximum.
        if new.minWrappingTTL > 0, existing.minWrappingTTL == 0 || new.minWrappingTTL < existing.minWrappingTTL {
            existing.minWrappingTTL = new.minWrappingTTL
        }
        if new.maxWrappingTTL > 0, new.maxWrappingTTL > existing.maxWrappingTTL {
            existing.maxWrappingTTL = new.maxWrappingTTL
        }
        for parameter in new.requiredParameters where !existing.requiredParameters.contains(parameter) {
            existing.requiredParameters.append(parameter)
        }
        mergeParameters(new.allowedParameters, into: &existing.allowedParameters)
        mergeParameters(new.deniedParameters, into: &existing.deniedParameters)
        slot = existing
    }

    /// Vault's merge of parameter maps: values are united, and an empty list (any value) wins.
    private static func mergeParameters(
        _ new: [String: [ParameterValue]], into existing: inout [String: [ParameterValue]]
    ) {
        guard !existing.isEmpty else {
            existing = new
            return
        }
        for (name, values) in new {
            if let present = existing[name], present.isEmpty || values.isEmpty {
                existing[name] = []
            } else {
                existing[name, default: []] += values
            }
        }
    }

    // MARK: Checks

    /// The permissions governing `operation` on `path` (below `/v1/`; LIST paths end in `/`), nil when no rule
    /// matches. Root tokens have no rule-based permissions; check `isRoot` first.
    func permissions(for path: String, operation: ACLOperation) -> Permissions? {
        var path = Substring(path)
        while path.first == "/" { path.removeFirst() }
        if let found = exact[String(path)] { return found }
        let trimmed = path.last == "/" ? path.dropLast() : path
        if operation == .list || operation == .scan, let found = exact[String(trimmed)] { return found }
        // LIST first tries without the trailing slash: a `foo*` rule then also covers `foo/`.
        if operation == .list, path.last == "/", let found = nonExactMatch(String(trimmed)) { return found }
        return nonExactMatch(String(path))
    }

    /// What the token may do on `path` as `sys/capabilities-self` computes it (the LIST fallbacks apply). Root tokens
    /// get every granting capability; an explicit deny yields `[.deny]`; no matching rule yields `[]`.
    func capabilities(for path: String) -> Set<Capability> {
        if isRoot { return Capability.granting }
        return permissions(for: path, operation: .list)?.capabilities ?? []
    }

    /// The answer of `sys/capabilities(-self)` for one path: sorted names, `["root"]` for root tokens, `["deny"]`
    /// when denied or nothing is granted.
    func capabilityNames(for path: String) -> [String] {
        if isRoot { return ["root"] }
        let granted = capabilities(for: path)
        if granted.isEmpty || granted.contains(.deny) { return ["deny"] }
        return granted.map(\.rawValue).sorted()
    }

    /// May the token perform `operation` on `path`? (Vault's `AllowOperation`.) With `parameters` (the request's
    /// data: the JSON body's members, or a read's query), a read, create, update or patch is also checked against
    /// the rule's required, denied and allowed parameters. `wrapTTL` is the request's `X-Vault-Wrap-TTL` (nil: not
    /// wrapped), checked against the rule's wrapping-TTL bounds.
    func allows(
        _ operation: ACLOperation, path: String, parameters: [String: JSONValue]? = nil, wrapTTL: Int64? = nil
    ) -> Bool {
        if isRoot { return true }
        guard let permissions = permissions(for: path, operation: operation) else { return false }
        let granted = permissions.capabilities
        guard !granted.contains(.deny), granted.contains(operation.capability) else { return false }
        if permissions.minWrappingTTL > 0, (wrapTTL ?? 0) < permissions.minWrappingTTL { return false }
        if permissions.maxWrappingTTL > 0, (wrapTTL ?? .max) > permissions.maxWrappingTTL { return false }
        guard let parameters, operation.checksParameters else { return true }
        return Self.parametersAllowed(parameters, by: permissions)
    }

    /// Vault's parameter checks: every required parameter present; with no data, allowed; `*` denied refuses any
    /// data; a denied name with a matching value refuses; without an allow-list, allowed; with one, every name
    /// must be in it (or `*` be) and its value match.
    static func parametersAllowed(_ data: [String: JSONValue], by permissions: Permissions) -> Bool {
        let names = Set(data.keys.map { $0.lowercased() })
        for required in permissions.requiredParameters where !names.contains(required.lowercased()) { return false }
        if data.isEmpty { return true }
        if permissions.allowedParameters.isEmpty && permissions.deniedParameters.isEmpty { return true }
        if permissions.deniedParameters["*"] != nil { return false }
        func contained(_ value: JSONValue, in list: [ParameterValue]) -> Bool {
            if list.isEmpty { return true }
            if case .array(let elements) = value {
                return elements.allSatisfy { element in list.contains { $0.matches(element) } }
            }
            return list.contains { $0.matches(value) }
        }
        for (name, value) in data {
            if let denied = permissions.deniedParameters[name.lowercased()], contained(value, in: denied) {
                return false
            }
        }
        if permissions.allowedParameters.isEmpty { return true }
        let anyName = permissions.allowedParameters["*"] != nil
        for (name, value) in data {
            guard let allowed = permissions.allowedParameters[name.lowercased()] else {
                if anyName { continue }
                return false
            }
            if !contained(value, in: allowed) { return false }
        }
        return true
    }

    /// Does the rule governing `operation` on `path` carry `sudo`? (Vault's "root privileges".)
    func hasSudo(_ operation: ACLOperation, path: String) -> Bool {
        if isRoot { return true }
        guard let granted = permissions(for: path, operation: operation)?.capabilities else { return false }
        return granted.contains(.sudo) && !granted.contains(.deny)
    }

    /// The full check for a request: the operation is allowed and, on a root-protected path, the rule grants `sudo`.
    func authorize(_ operation: ACLOperation, path: String, requiresSudo: Bool = false) -> Bool {
        allows(operation, path: path) && (!requiresSudo || hasSudo(operation, path: path))
    }

    /// The ACL check of Vault's router for a whole request (`VaultCore.authorize`): LIST is matched on the path with
    /// a trailing slash; a POST/PUT needs `update` on an existing item and `create` on a new one where the backend
    /// has an existence check (`exists`), else either (a backend that creates checks `create` itself); a read is
    /// checked with its query and a create, update or PATCH with its body's members against the rule's parameter
    /// constraints; root-protected paths need sudo. Every request operation maps to exactly one ACL operation
    /// (`ACLOperation.init`): none is checked as another.
    func authorize(_ request: VaultRequest, exists: Bool? = nil) -> Bool {
        let operation = ACLOperation(request.operation)
        let path = operation == .list ? request.path + "/" : request.path
        let wrap = request.wrapTTL
        let allowed: Bool
        switch operation {
        case .update:
            let data = request.body.objectMembers
            if let exists {
                allowed = allows(exists ? .update : .create, path: path, parameters: data, wrapTTL: wrap)
            } else {
                allowed =
                    allows(.update, path: path, parameters: data, wrapTTL: wrap)
                    || allows(.create, path: path, parameters: data, wrapTTL: wrap)
            }
        case .read:
            allowed = allows(.read, path: path, parameters: request.query.mapValues(JSONValue.string), wrapTTL: wrap)
        case .create, .patch:
            allowed = allows(operation, path: path, parameters: request.body.objectMembers, wrapTTL: wrap)
        case .delete, .list, .scan:
            allowed = allows(operation, path: path, wrapTTL: wrap)
        }
        guard allowed else { return false }
        return isRoot || !SudoPaths.requiresSudo(request.path) || hasSudo(.read, path: path)
    }

    /// Convenience: `ACL(policies:).capabilities(for:)`.
    static func capabilities(for path: String, policies: [Policy]) -> Set<Capability> {
        ACL(policies: policies).capabilities(for: path)
    }

    /// Convenience: builds the ACL and checks `operation` on `path`, demanding sudo when the path is root-protected
    /// (`SudoPaths`) unless `requiresSudo` says otherwise.
    static func authorize(
        operation: ACLOperation, path: String, policies: [Policy], requiresSudo: Bool? = nil
    )
        -> Bool
    {
        ACL(policies: policies).authorize(
            operation, path: path, requiresSudo: requiresSudo ?? SudoPaths.requiresSudo(path))
    }

    // MARK: Glob and segment-wildcard matching

    private struct Candidate {
        var firstWildcardOrGlob: Int
        var wildcards: Int
        var isPrefix: Bool
        var path: String
        var permissions: Permissions

        /// OpenBao's ordering: is `self` less specific than `other`? Earlier first `+`/`*` loses; then ending in
        /// `*`; then more `+` segments; then shorter; then lexicographically smaller.
        func isLessSpecific(than other: Candidate) -> Bool {
            if firstWildcardOrGlob != other.firstWildcardOrGlob {
                return firstWildcardOrGlob < other.firstWildcardOrGlob
            }
            if isPrefix != other.isPrefix { return isPrefix }
            if wildcards != other.wildcards { return wildcards > other.wildcards }
            if path.utf8.count != other.path.utf8.count { return path.utf8.count < other.path.utf8.count }
            return path.utf8.lexicographicallyPrecedes(other.path.utf8)
        }
    }

    private func nonExactMatch(_ path: String) -> Permissions? {
        var best: Candidate?
        // The longest matching prefix rule (a radix-tree LongestPrefix in Vault).
        for (prefix, permissions) in prefixes where path.utf8.starts(with: prefix.utf8) {
            if let current = best, current.path.utf8.count >= prefix.utf8.count { continue }
            best = Candidate(
                firstWildcardOrGlob: prefix.utf8.count, wildcards: 0, isPrefix: true, path: prefix,
                permissions: permissions)
        }
        if segmentWildcards.isEmpty { return best?.permissions }

        let pathParts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for (fullPattern, permissions) in segmentWildcards where !fullPattern.isEmpty {
            guard let candidate = Self.segmentMatch(fullPattern, permissions: permissions, pathParts: pathParts) else {
                continue
            }
            if let current = best, !current.isLessSpecific(than: candidate) { continue }
            best = candidate
        }
        return best?.permissions
    }

    private static func segmentMatch(
        _ fullPattern: String, permissions: Permissions, pathParts: [Substring.UTF8View.SubSequence]
    ) -> Candidate? {
        let utf8 = Array(fullPattern.utf8)
        let plus = utf8.firstIndex(of: UInt8(ascii: "+")) ?? -1
        var pattern = utf8[...]
        let isPrefix = utf8.last == UInt8(ascii: "*")
        if isPrefix { pattern = pattern.dropLast() }
        let patternParts = pattern.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if pathParts.count < patternParts.count { return nil }
        if !isPrefix, patternParts.count != pathParts.count { return nil }
        var wildcards = 0
        for (index, part) in patternParts.enumerated() {
            let segment = pathParts[index]
            if part.elementsEqual([UInt8(ascii: "+")]) {
                wildcards += 1
            } else if part.elementsEqual(segment) {
                continue
            } else if isPrefix, index == patternParts.count - 1, segment.starts(with: part) {
                continue
            } else {
                return nil
            }
        }
        return Candidate(
            firstWildcardOrGlob: plus, wildcards: wildcards, isPrefix: isPrefix,
            path: String(decoding: pattern, as: UTF8.self), permissions: permissions)
    }
}

/// Paths whose handlers Vault marks root-protected: a token needs `sudo` on them (besides the operation's
/// capability). Patterns are full API paths; a trailing `*` is a prefix match.
enum SudoPaths {
    static let patterns: [String] = [
        // sys backend (`PathsSpecial.Root`), OpenBao
        "sys/auth/*", "sys/remount", "sys/audit", "sys/audit/*", "sys/raw", "sys/raw/*", "sys/rotate",
        "sys/config/cors", "sys/config/auditing/*", "sys/config/ui/headers/*", "sys/plugins/catalog/*",
        "sys/revoke-prefix/*", "sys/revoke-force/*", "sys/leases/revoke-prefix/*", "sys/leases/revoke-force/*",
        "sys/leases/lookup/*", "sys/leases", "sys/seal", "sys/step-down",
        // vhsm (issue 17): cluster membership, the cluster root key, and the join policy (who receives that key)
        "sys/cluster/members/*", "sys/cluster/rotate-root", "sys/cluster/join-policy",
        // token store
        "auth/token/revoke-orphan/*", "auth/token/accessors*",
    ]

    /// Is `path` (below `/v1/`, LIST paths with their trailing `/`) root-protected?
    static func requiresSudo(_ path: String) -> Bool {
        var path = Substring(path)
        while path.first == "/" { path.removeFirst() }
        return patterns.contains { pattern in
            pattern.hasSuffix("*")
                ? path.utf8.starts(with: pattern.utf8.dropLast()) : path.utf8.elementsEqual(pattern.utf8)
        }
    }
}
