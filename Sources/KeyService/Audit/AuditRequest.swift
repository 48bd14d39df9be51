/// What the audit log records of a request, taken before it is handled; shared by its two lines.
struct AuditRequest: Sendable {
    /// The request id, also the `request_id` of the response envelope.
    var id: String
    /// Vault's operation: `read`, `create`, `update`, `delete`, `list`, `patch`.
    var operation: String
    /// The path below `/v1/`.
    var path: String
    /// The request body; every string in it is hashed in the log.
    var data: JSONValue?
    /// The client token as sent (hashed in the log), nil when none was sent.
    var clientToken: String?
    /// The accessor of the authenticated token (hashed in the log); nil when the caller is not authenticated.
    var accessor: String?
    var displayName: String = ""
    var policies: [String] = []
    var remoteAddress: String?
    var remotePort: Int?
    /// The mount serving the path (`transit/`) and its type (`transit`), when one does.
    var mountPoint: String?
    var mountType: String?

    /// Was the caller authenticated (the log then carries the token's accessor, name and policies)?
    var isAuthenticated: Bool { accessor != nil }
}

extension AuditRequest {
    /// The entry for a routed request; the caller's token entry is used when `request.caller` is set, the peer's
    /// address and port are the request's unless given.
    init(_ request: VaultRequest, id: String, remoteAddress: String? = nil, remotePort: Int? = nil) {
        self.init(
            id: id, operation: request.operation.rawValue, path: request.path, data: request.body,
            clientToken: request.token, accessor: request.caller?.entry.accessor,
            displayName: request.caller?.entry.displayName ?? "", policies: request.caller?.entry.policies ?? [],
            remoteAddress: remoteAddress ?? request.remoteAddress, remotePort: remotePort ?? request.remotePort)
    }
}
