/// What the audit log records of an answer: its data and auth (strings hashed), or the error.
struct AuditResponse: Sendable {
    var data: JSONValue?
    /// The `auth` block of an answer that issued a token; its `client_token` and `accessor` are hashed.
    var auth: JSONValue?
    /// A response-wrapped answer's `wrap_info`; its `token`, `accessor` and `wrapped_accessor` are hashed.
    var wrapInfo: JSONValue? = nil
    /// Present when the request failed (`permission denied`, `cipher: message authentication failed`).
    var error: String?
}

extension AuditResponse {
    init(_ reply: VaultReply) {
        self.init(
            data: reply.bare ?? reply.data, auth: reply.auth ?? reply.auditedAuth, wrapInfo: reply.wrapInfo, error: nil)
    }

    /// A failed request: its messages as Vault's `error` string, and any `data` the error carries (batch results,
    /// KV's deleted-version metadata). A bare 404 has no message and records no `error`, as in Vault.
    init(_ error: VaultError) {
        self.init(
            data: error.data, auth: nil,
            error: error.messages.isEmpty ? nil : error.messages.joined(separator: "; "))
    }
}
