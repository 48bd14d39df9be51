/// Routes an API request: unauthenticated sys paths, then token authentication, authorisation, and the mount
/// that serves the path. Every failure is a `VaultError` in Vault's shape.
struct VaultCore: Sendable {
    let state: ServerState
    let tokens: TokenStore
    let mounts: MountTable

    /// Paths anyone may call without a token.
    static let unauthenticated: Set<String> = ["sys/health", "sys/seal-status", "sys/init", "sys/leader"]
    /// What the built-in `default` policy grants every token. Until ACL policies are enforced, a token without
    /// `root` gets exactly these paths and is denied everything else (fail closed).
    static let defaultPolicyPaths: Set<String> = [
        "auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self", "sys/capabilities-self",
    ]

    func handle(_ request: VaultRequest) async throws(VaultError) -> VaultReply {
        var request = request
        let path = request.path
        if Self.unauthenticated.contains(path) {
            return try await SysBackend(state: state, mounts: mounts).handle(request, path: String(path.dropFirst(4)))
        }
        guard let entry = try await tokens.authenticate(request.token) else { throw .permissionDenied }
        request.caller = Caller(key: await tokens.key(token: request.token ?? ""), entry: entry)
        guard entry.isRoot || Self.defaultPolicyPaths.contains(path) else { throw .permissionDenied }
        if path.hasPrefix("sys/") {
            return try await SysBackend(state: state, mounts: mounts).handle(request, path: String(path.dropFirst(4)))
        }
        if path.hasPrefix("auth/token/") {
            return try await TokenBackend(store: tokens).handle(request, path: String(path.dropFirst(11)))
        }
        guard let (mount, relative) = await mounts.route(path) else { throw .unsupportedPath(path) }
        return try await mount.backend.handle(request, path: relative)
    }
}
