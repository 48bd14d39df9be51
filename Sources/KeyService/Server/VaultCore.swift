import Foundation
import HTTPTypes

/// Routes an API request: unauthenticated sys paths, then token authentication, authorisation, and the mount
/// that serves the path. Every failure is a `VaultError` in Vault's shape.
struct VaultCore: Sendable {
    let runtime: Runtime
    /// The enabled audit devices (none: nothing is audited).
    var audit = AuditBroker()

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
        var allowed = false
        let entry = try await services.tokens.authenticate(request.token)
        if let entry {
            request.caller = Caller(key: await services.tokens.key(token: request.token ?? ""), entry: entry)
            let acl = await services.policies.acl(for: entry.policies)
            allowed = Self.authorize(request, acl: acl)
            request.acl = acl
        }
        let denial: VaultError = entry == nil ? .permissionDenied : Self.aclDenied
        guard audit.audits(path) else {
            guard allowed else { throw denial }
            return try await route(request, services: services, state: state)
        }
        // Audited: the request line is durable before anything happens, the response line before the answer leaves.
        var record = AuditRequest(request, id: request.id)
        if let (mount, _) = await services.mounts.route(path) {
            record.mountPoint = mount.path
            record.mountType = mount.type
        }
        try Self.audited { () throws(AuditError) in
            try audit.logRequest(record, error: allowed ? nil : denial.messages.first)
        }
        let outcome: Result<VaultReply, VaultError>
        if allowed {
            do { outcome = .success(try await route(request, services: services, state: state)) } catch {
                outcome = .failure(error)
            }
        } else {
            outcome = .failure(denial)
        }
        let response: AuditResponse
        switch outcome {
        case .success(let reply): response = AuditResponse(reply)
        case .failure(let error): response = AuditResponse(error)
        }
        try Self.audited { () throws(AuditError) in try audit.logResponse(record, response: response) }
        return try outcome.get()
    }

    /// sys/, auth/token/ and the mounted engines.
    private func route(
        _ request: VaultRequest, services: Services, state: ServerState
    ) async throws(VaultError)
        -> VaultReply
    {
        let path = request.path
        if path.hasPrefix("sys/") {
            return try await SysBackend(state: state, mounts: services.mounts, services: services, audit: audit)
                .handle(request, path: String(path.dropFirst(4)))
        }
        if path.hasPrefix("auth/token/") {
            return try await TokenBackend(store: services.tokens).handle(request, path: String(path.dropFirst(11)))
        }
        guard let (mount, relative) = await services.mounts.route(path) else { throw .unsupportedPath(path) }
        return try await mount.backend.handle(request, path: relative)
    }

    /// An audit failure fails the request (Vault: a request no device can record is refused); the cause goes to
    /// the server's standard error, never to the client.
    static func audited(_ body: () throws(AuditError) -> Void) throws(VaultError) {
        do { try body() } catch {
            FileHandle.standardError.write(Data("vhsmd: audit failed: \(error)\n".utf8))
            throw VaultError(status: .internalServerError, messages: ["internal error"])
        }
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
