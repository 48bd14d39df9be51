import HTTPTypes

/// Routes an API request: unauthenticated sys paths, then token authentication, authorisation, and the mount
/// that serves the path. Every failure is a `VaultError` in Vault's shape.
struct VaultCore: Sendable {
    let runtime: Runtime

    /// Paths anyone may call without a token.
    static let unauthenticated: Set<String> = ["sys/health", "sys/seal-status", "sys/init", "sys/leader"]
    /// Vault's answer to an ACL denial (as opposed to a missing or unknown token).
    static let aclDenied = VaultError(status: .forbidden, messages: ["1 error occurred:\n\t* permission denied\n\n"])

    func handle(_ request: VaultRequest) async throws(VaultError) -> VaultReply {
        var request = request
        let path = request.path
        let state = await runtime.state
        if path == "sys/init", request.operation == .update { return try await runtime.initialize() }
        if Self.unauthenticated.contains(path) {
            return try await SysBackend(state: state, mounts: nil).handle(request, path: String(path.dropFirst(4)))
        }
        guard let services = await runtime.services else {
            throw VaultError(status: .serviceUnavailable, messages: ["Vault is sealed"])
        }
        let tokens = services.tokens
        let mounts = services.mounts
        guard let entry = try await tokens.authenticate(request.token) else { throw .permissionDenied }
        request.caller = Caller(key: await tokens.key(token: request.token ?? ""), entry: entry)
        let acl = await services.policies.acl(for: entry.policies)
        guard Self.authorize(request, acl: acl) else { throw Self.aclDenied }
        request.acl = acl
        if path.hasPrefix("sys/") {
            return try await SysBackend(state: state, mounts: mounts, services: services)
                .handle(request, path: String(path.dropFirst(4)))
        }
        if path.hasPrefix("auth/token/") {
            return try await TokenBackend(store: tokens).handle(request, path: String(path.dropFirst(11)))
        }
        guard let (mount, relative) = await mounts.route(path) else { throw .unsupportedPath(path) }
        return try await mount.backend.handle(request, path: relative)
    }

    /// The ACL check of Vault's router: LIST is matched on the path with a trailing slash; a POST/PUT is allowed
    /// with `update` or `create` (a backend that creates checks `create` itself); root-protected paths need sudo.
    static func authorize(_ request: VaultRequest, acl: ACL) -> Bool {
        let path = request.operation == .list ? request.path + "/" : request.path
        let allowed: Bool
        switch request.operation {
        case .update: allowed = acl.allows(.update, path: path) || acl.allows(.create, path: path)
        default: allowed = acl.allows(ACLOperation(rawValue: request.operation.rawValue) ?? .read, path: path)
        }
        guard allowed else { return false }
        return !SudoPaths.requiresSudo(request.path) || acl.hasSudo(.read, path: path) || acl.isRoot
    }
}
