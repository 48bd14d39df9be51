import FoundationEssentials
import SNP

/// Vault's response wrapping: an answer asked for with `X-Vault-Wrap-TTL` is kept in the sealed store and replaced
/// by a single-use wrapping token (policy `response-wrapping`, one use, the wrap TTL, an orphan); whoever holds the
/// token unwraps the original answer once through `sys/wrapping/unwrap`. Records: `core/wrapping/<token hash hex>`,
/// removed with the token (unwrap, revocation, expiry, or its one use spent elsewhere).
extension TokenStore {
    /// What a wrapping token stands for: the original answer and where and when it was made.
    struct WrappedResponse: Codable, Sendable {
        /// The original answer's `data`, `auth`, `lease_duration` and `warnings`.
        var response: JSONValue
        var creationPath: String
        var creationTTL: Int64
        var creationTime: Date

        /// `sys/wrapping/lookup`'s data.
        var description: [String: JSONValue] {
            [
                "creation_path": .string(creationPath), "creation_time": .string(TransitTime.rfc3339(creationTime)),
                "creation_ttl": .int(creationTTL),
            ]
        }

        /// The answer as it was before wrapping.
        var reply: VaultReply {
            var reply = VaultReply()
            if case .object(let members) = response {
                reply.data = members["data"].flatMap { $0 == .null ? nil : $0 }
                reply.auth = members["auth"].flatMap { $0 == .null ? nil : $0 }
                if case .int(let lease)? = members["lease_duration"] { reply.leaseDuration = lease }
                if let warnings = members["warnings"], warnings != .null { reply.topLevel["warnings"] = warnings }
            }
            return reply
        }
    }

    static let wrappingPolicy = "response-wrapping"
    static let invalidWrappingToken = VaultError.badRequest("wrapping token is not valid or does not exist")

    static func wrappingRecord(_ key: [UInt8]) -> String { "core/wrapping/" + Hex.encode(key) }

    /// Wraps `reply` (already answered for `path`) for `ttl` seconds: its `wrap_info`.
    func wrap(_ reply: VaultReply, path: String, ttl: Int64) throws(VaultError) -> VaultReply {
        var inner: [String: JSONValue] = [
            "data": reply.data ?? .null, "auth": reply.auth ?? .null,
            "lease_duration": .int(max(0, reply.leaseDuration ?? 0)),
        ]
        if let warnings = reply.topLevel["warnings"] { inner["warnings"] = warnings }
        let wrapped = WrappedResponse(
            response: .object(inner), creationPath: path, creationTTL: ttl, creationTime: Date())
        return try wrap(wrapped)
    }

    /// Stores `wrapped` under a new wrapping token (also `sys/wrapping/rewrap`, which keeps the original's path and
    /// TTL). A wrapped token creation also names the new token's accessor (`wrapped_accessor`).
    func wrap(_ wrapped: WrappedResponse) throws(VaultError) -> VaultReply {
        let entry = Entry(
            accessor: Self.newToken(prefix: ""), policies: [Self.wrappingPolicy], displayName: "token",
            creationTime: wrapped.creationTime, ttl: wrapped.creationTTL, explicitMaxTTL: wrapped.creationTTL,
            renewable: false, numUses: 1, meta: [:], parent: nil, orphan: true, path: wrapped.creationPath)
        let token = try create(entry: entry, wrapping: wrapped)
        var info: [String: JSONValue] = [
            "token": .string(token), "accessor": .string(entry.accessor), "ttl": .int(wrapped.creationTTL),
            "creation_time": .string(TransitTime.rfc3339(wrapped.creationTime)),
            "creation_path": .string(wrapped.creationPath),
        ]
        if case .string(let accessor)? = wrapped.response.objectMembers["auth"]?.objectMembers["accessor"],
            !accessor.isEmpty
        {
            info["wrapped_accessor"] = .string(accessor)
        }
        return VaultReply(wrapInfo: .object(info))
    }

    /// The wrapped answer of a live wrapping token, without using it (`sys/wrapping/lookup`).
    func wrapped(token: String) throws(VaultError) -> WrappedResponse { try wrapped(token: token, consume: false) }

    /// The wrapped answer of a live wrapping token, which is revoked in the same step: a second unwrap fails.
    func unwrap(token: String) throws(VaultError) -> WrappedResponse { try wrapped(token: token, consume: true) }
}

extension VaultRequest {
    /// `X-Vault-Wrap-TTL`: a Go duration or seconds; 0 or absent: not wrapped.
    static func wrapTTL(_ header: String?) throws(VaultError) -> Int64? {
        guard let header else { return nil }
        let text = header.trimmedWhitespace
        guard let seconds = JSONValue.parseDuration(text.hasPrefix("-") ? String(text.dropFirst()) : text) else {
            throw .badRequest("error parsing X-Vault-Wrap-TTL header: time: invalid duration \"\(text)\"")
        }
        if text.hasPrefix("-"), seconds > 0 {
            throw .badRequest("error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative")
        }
        return seconds > 0 ? seconds : nil
    }
}
