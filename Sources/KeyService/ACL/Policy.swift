package import FoundationEssentials
import SNP

/// One `path "<pattern>" { ... }` stanza after parsing, keyed the way Vault's ACL keys it.
struct PathRule: Sendable, Equatable {
    /// The pattern without a leading `/`; for a plain prefix rule (`secret/*`) also without the trailing `*`. Rules
    /// with `+` segments keep a trailing `*` here, as in Vault.
    var path: String
    /// A trailing-`*` rule without `+` segments: matches every path starting with `path`.
    var isPrefix: Bool
    /// Has a `+` segment (matched segment by segment; may also end in `*`).
    var hasSegmentWildcards: Bool
    /// `[.deny]` when the stanza denies, else the granted capabilities (possibly empty).
    var capabilities: Set<Capability>
    /// Parameter constraints, checked on reads, creates and updates (see `ACL.parametersAllowed`).
    var allowedParameters: [String: [HCL.Value]]?
    var deniedParameters: [String: [HCL.Value]]?
    var requiredParameters: [String]
    /// `min_wrapping_ttl` / `max_wrapping_ttl` in seconds (0: none). With either, Vault allows only response-wrapped
    /// requests (`X-Vault-Wrap-TTL`) whose TTL lies within the bounds.
    var minWrappingTTL: Int64 = 0
    var maxWrappingTTL: Int64 = 0
    /// OpenBao's per-path `expiration`; an expired rule is ignored.
    var expiration: Date?
}

/// An ACL policy: its name, its rules and the raw text it was parsed from (returned as `policy`/`rules`).
package struct Policy: Sendable, Equatable {
    var name: String
    var rules: [PathRule]
    var raw: String

    /// Parses HCL or its JSON form, as Vault's `ParseACLPolicy`; errors carry Vault's texts
    /// (`failed to parse policy: path "x": invalid capability "fly"`).
    package static func parse(_ raw: String, name: String = "", now: Date = Date()) throws(PolicyError) -> Policy {
        let items: [HCL.Item]
        do { items = try HCL.parse(raw) } catch { throw PolicyError("failed to parse policy: \(error.message)") }
        let invalid = items.filter { !["name", "path"].contains($0.keys[0]) }
        if !invalid.isEmpty {
            throw PolicyError(
                "failed to parse policy: "
                    + PolicyError.multi(invalid.map { "invalid key \"\($0.keys[0])\" on line \($0.line)" }))
        }
        var rules: [PathRule] = []
        for stanza in try pathStanzas(items) {
            do {
                if let rule = try parseRule(pattern: stanza.pattern, body: stanza.body, now: now) { rules.append(rule) }
            } catch {
                throw PolicyError("failed to parse policy: \(error.message)")
            }
        }
        return Policy(name: name, rules: rules, raw: raw)
    }

    /// The built-in `root` policy: everything, including `sudo`; it has no text and cannot be changed.
    static let root = Policy(name: "root", rules: [], raw: "")

    /// The built-in `default` policy (Vault's and OpenBao's text), attached to tokens unless `no_default_policy`.
    static let defaultPolicy: Policy = {
        do { return try parse(defaultRules, name: "default") } catch { fatalError("default policy: \(error)") }
    }()

    package static let defaultRules = """

        # Allow tokens to look up their own properties
        path "auth/token/lookup-self" {
            capabilities = ["read"]
        }

        # Allow tokens to renew themselves
        path "auth/token/renew-self" {
            capabilities = ["update"]
        }

        # Allow tokens to revoke themselves
        path "auth/token/revoke-self" {
            capabilities = ["update"]
        }

        # Allow a token to look up its own capabilities on a path
        path "sys/capabilities-self" {
            capabilities = ["update"]
        }

        # Allow a token to look up its own entity by id or name
        path "identity/entity/id/{{identity.entity.id}}" {
          capabilities = ["read"]
        }
        path "identity/entity/name/{{identity.entity.name}}" {
          capabilities = ["read"]
        }


        # Allow a token to look up its resultant ACL from all policies. This is useful
        # for UIs. It is an internal path because the format may change at any time
        # based on how the internal ACL features and capabilities change.
        path "sys/internal/ui/resultant-acl" {
            capabilities = ["read"]
        }

        # Allow a token to renew a lease via lease_id in the request body; old path for
        # old clients, new path for newer
        path "sys/renew" {
            capabilities = ["update"]
        }
        path "sys/leases/renew" {
            capabilities = ["update"]
        }

        # Allow looking up lease properties. This requires knowing the lease ID ahead
        # of time and does not divulge any sensitive information.
        path "sys/leases/lookup" {
            capabilities = ["update"]
        }

        # Allow a token to manage its own cubbyhole
        path "cubbyhole/*" {
            capabilities = ["create", "read", "update", "delete", "list"]
        }

        # Allow a token to wrap arbitrary values in a response-wrapping token
        path "sys/wrapping/wrap" {
            capabilities = ["update"]
        }

        # Allow a token to look up the creation time and TTL of a given
        # response-wrapping token
        path "sys/wrapping/lookup" {
            capabilities = ["update"]
        }

        # Allow a token to unwrap a response-wrapping token. This is a convenience to
        # avoid client token swapping since this is also part of the response wrapping
        # policy.
        path "sys/wrapping/unwrap" {
            capabilities = ["update"]
        }

        # Allow general purpose tools
        path "sys/tools/hash" {
            capabilities = ["update"]
        }
        path "sys/tools/hash/*" {
            capabilities = ["update"]
        }

        # Allow a token to make requests to the Authorization Endpoint for OIDC providers.
        path "identity/oidc/provider/+/authorize" {
            capabilities = ["read", "update"]
        }

        """

    private struct Stanza {
        var pattern: String
        var body: HCL.Value
    }

    /// The `path` stanzas in document order: HCL's `path "p" { ... }` and JSON's `{"path": {"p": {...}}}` (or a
    /// list of such objects).
    private static func pathStanzas(_ items: [HCL.Item]) throws(PolicyError) -> [Stanza] {
        var stanzas: [Stanza] = []
        for item in items where item.keys[0] == "path" {
            if item.keys.count == 2 {
                stanzas.append(Stanza(pattern: item.keys[1], body: item.value))
                continue
            }
            guard item.keys.count == 1 else {
                throw PolicyError(
                    "failed to parse policy: path \"\(item.keys[1])\": unexpected label \"\(item.keys[2])\"")
            }
            let objects: [[HCL.Item]]
            switch item.value {
            case .object(let children): objects = [children]
            case .list(let elements):
                objects = try elements.map { element throws(PolicyError) in
                    guard case .object(let children) = element else {
                        throw PolicyError("failed to parse policy: path: expected an object of path rules")
                    }
                    return children
                }
            default: throw PolicyError("failed to parse policy: path: expected an object of path rules")
            }
            for child in objects.joined() {
                guard child.keys.count == 1 else {
                    throw PolicyError(
                        "failed to parse policy: path \"\(child.keys[0])\": unexpected label \"\(child.keys[1])\"")
                }
                stanzas.append(Stanza(pattern: child.keys[0], body: child.value))
            }
        }
        return stanzas
    }

    private static let validRuleKeys: Set<String> = [
        "comment", "policy", "capabilities", "allowed_parameters", "denied_parameters", "required_parameters",
        "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "pagination_limit", "expiration",
        "list_scan_response_keys_filter_path", "control_group",
    ]

    /// One stanza, following OpenBao's `parsePaths`; nil for an expired rule. Errors lack the common prefix.
    private static func parseRule(pattern key: String, body: HCL.Value, now: Date) throws(PolicyError) -> PathRule? {
        guard case .object(let fields) = body else {
            throw PolicyError("path \(quote(key)): the rule must be an object")
        }
        let invalid = fields.filter { !validRuleKeys.contains($0.keys[0]) }
        if !invalid.isEmpty {
            throw PolicyError(
                PolicyError.multi(
                    invalid.map { "path \(quote(key)): invalid key \(quote($0.keys[0])) on line \($0.line)" }))
        }
        var capabilityNames: [String] = []
        var oldPolicy = ""
        var rule = PathRule(
            path: key, isPrefix: false, hasSegmentWildcards: false, capabilities: [], requiredParameters: [])
        for field in fields {
            let name = field.keys[0]
            switch name {
            case "capabilities":
                capabilityNames += try strings(field.value, key: key, field: name)
            case "policy":
                oldPolicy = try strings(field.value, key: key, field: name).last ?? ""
            case "required_parameters":
                rule.requiredParameters += try strings(field.value, key: key, field: name)
            case "allowed_parameters":
                rule.allowedParameters = try parameters(field.value, key: key, field: name)
            case "denied_parameters":
                rule.deniedParameters = try parameters(field.value, key: key, field: name)
            case "min_wrapping_ttl":
                rule.minWrappingTTL = try duration(field.value, key: key, field: name)
            case "max_wrapping_ttl":
                rule.maxWrappingTTL = try duration(field.value, key: key, field: name)
            case "expiration":
                let text = try strings(field.value, key: key, field: name).last ?? ""
                guard !text.isEmpty else { break }
                guard let date = absoluteTime(text) else {
                    throw PolicyError("path \(quote(key)): invalid expiration time: \(quote(text)) is not a valid time")
                }
                rule.expiration = date
            default:
                break
            }
        }
        if let expiration = rule.expiration, now > expiration { return nil }
        if rule.minWrappingTTL > 0, rule.maxWrappingTTL > 0, rule.maxWrappingTTL < rule.minWrappingTTL {
            throw PolicyError("path \(quote(key)): max_wrapping_ttl cannot be less than min_wrapping_ttl")
        }

        var path = key
        if path.hasPrefix("/") { path.removeFirst() }
        if path.contains("+*") {
            throw PolicyError("path \(quote(path)): invalid use of wildcards ('+*' is forbidden)")
        }
        rule.hasSegmentWildcards = path == "+" || path.contains("/+") || path.hasPrefix("+/")
        if path.hasSuffix("*"), !rule.hasSegmentWildcards {
            path.removeLast()
            rule.isPrefix = true
        }
        rule.path = path

        switch oldPolicy {
        case "": break
        case "deny": capabilityNames = ["deny"]
        case "read": capabilityNames += ["read", "list"]
        case "write": capabilityNames += ["create", "read", "update", "delete", "list"]
        case "sudo": capabilityNames += ["create", "read", "update", "delete", "list", "sudo"]
        default: throw PolicyError("path \(quote(key)): invalid policy \(quote(oldPolicy))")
        }
        for name in capabilityNames {
            guard let capability = Capability(rawValue: name) else {
                throw PolicyError("path \(quote(key)): invalid capability \(quote(name))")
            }
            if capability == .deny {
                rule.capabilities = [.deny]
                rule.allowedParameters = nil
                rule.deniedParameters = nil
                break
            }
            rule.capabilities.insert(capability)
        }
        return rule
    }

    /// Go's `%q` for the plain strings policies contain.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20: out += "\\x" + Hex.encode([UInt8(scalar.value)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A list of strings (HCL also decodes a single value into a list; numbers and booleans become their text).
    private static func strings(_ value: HCL.Value, key: String, field: String) throws(PolicyError) -> [String] {
        func scalar(_ value: HCL.Value) throws(PolicyError) -> String {
            switch value {
            case .string(let text), .number(let text): return text
            case .bool(let flag): return flag ? "true" : "false"
            default: throw PolicyError("path \(quote(key)): \(field): expected a string or a list of strings")
            }
        }
        if case .list(let elements) = value {
            return try elements.map { element throws(PolicyError) in try scalar(element) }
        }
        return [try scalar(value)]
    }

    /// `allowed_parameters`/`denied_parameters`: a map of (lower-cased) parameter name → allowed values.
    private static func parameters(
        _ value: HCL.Value, key: String, field: String
    ) throws(PolicyError)
        -> [String: [HCL.Value]]
    {
        var objects: [[HCL.Item]] = []
        switch value {
        case .object(let items): objects = [items]
        case .list(let elements):
            for element in elements {
                guard case .object(let items) = element else {
                    throw PolicyError("path \(quote(key)): \(field): expected a map of parameter names to lists")
                }
                objects.append(items)
            }
        default: throw PolicyError("path \(quote(key)): \(field): expected a map of parameter names to lists")
        }
        var result: [String: [HCL.Value]] = [:]
        for item in objects.joined() {
            let values: [HCL.Value]
            if case .list(let elements) = item.value { values = elements } else { values = [item.value] }
            result[item.keys[0].lowercased(), default: []] += values
        }
        return result
    }

    /// A wrapping TTL: a Go duration or seconds, as a string or a number; null or empty is 0.
    private static func duration(_ value: HCL.Value, key: String, field: String) throws(PolicyError) -> Int64 {
        let text: String
        switch value {
        case .null: return 0
        case .number(let number), .string(let number): text = number
        default: throw PolicyError("path \(quote(key)): \(field) must be a duration")
        }
        guard !text.isEmpty else { return 0 }
        guard let seconds = JSONValue.parseDuration(text), seconds >= 0 else {
            throw PolicyError("path \(quote(key)): error parsing \(field): invalid duration \(quote(text))")
        }
        return seconds
    }

    /// OpenBao's `ParseAbsoluteTime`: RFC 3339 (with or without fractional seconds) or Unix seconds.
    private static func absoluteTime(_ text: String) -> Date? {
        if let seconds = Int64(text) { return Date(timeIntervalSince1970: TimeInterval(seconds)) }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
