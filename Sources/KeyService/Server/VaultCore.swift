import FoundationEssentials
import HTTPTypes

/// Routes an API request: unauthenticated sys paths, then token authentication, authorisation, and the mount
/// that serves the path. Every failure is a `VaultError` in Vault's shape.
struct VaultCore: Sendable {
    let runtime: Runtime
    /// The enabled audit devices (none: nothing is audited).
    var audit = AuditBroker()
    /// Request counts and latencies for `sys/metrics` (none in tests that do not ask).
    var metrics: ServiceMetrics? = nil

    /// Paths anyone may call without a token.
    static let unauthenticated: Set<String> = ["sys/health", "sys/seal-status", "sys/init", "sys/leader"]
    /// Vault's answer to an ACL denial (as opposed to a missing or unknown token).
    static let aclDenied = VaultError(status: .forbidden, messages: ["1 error occurred:\n\t* permission denied\n\n"])

    func handle(_ request: VaultRequest) async throws(VaultError) -> VaultReply {
        let start = metrics == nil ? nil : ContinuousClock.now
        var area = "unrouted"
        let outcome: Result<VaultReply, VaultError>
        do { outcome = .success(try await dispatch(request, area: &area)) } catch { outcome = .failure(error) }
        record(request, area: area, outcome: outcome, since: start)
        return try outcome.get()
    }

    /// Serves the request on the calling thread (an event loop) when it needs no storage write, no audit line and
    /// nothing that waits: sys/health and the other unauthenticated reads, and the transit operations that only read
    /// their key. nil: nothing happened (no metrics either), call `handle`.
    func handleOnLoop(_ request: VaultRequest) -> Result<VaultReply, VaultError>? {
        let start = metrics == nil ? nil : ContinuousClock.now
        var area = "unrouted"
        let outcome: Result<VaultReply, VaultError>
        do {
            guard let reply = try dispatchOnLoop(request, area: &area) else { return nil }
            outcome = .success(reply)
        } catch {
            outcome = .failure(error)
        }
        record(request, area: area, outcome: outcome, since: start)
        return outcome
    }

    /// Counts the answer in the metrics (`start` is nil when there are none).
    private func record(
        _ request: VaultRequest, area: String, outcome: Result<VaultReply, VaultError>,
        since start: ContinuousClock.Instant?
    ) {
        guard let metrics, let start else { return }
        let status: Int
        switch outcome {
        case .success(let reply): status = reply.status.code
        case .failure(let error): status = error.status.code
        }
        metrics.record(operation: request.operation.rawValue, area: area, status: status, duration: .now - start)
    }

    private func dispatchOnLoop(_ request: VaultRequest, area: inout String) throws(VaultError) -> VaultReply? {
        let path = request.path
        // Wrapping an answer writes the wrapping token.
        guard !audit.audits(path), request.wrapTTL == nil else { return nil }
        let (state, services) = runtime.current
        if Self.unauthenticated.contains(path) {
            guard path != "sys/init", request.operation == .read || request.operation == .list else { return nil }
            area = "sys"
            return try SysBackend(state: state, mounts: nil).respond(request, path: String(path.dropFirst(4)))
        }
        guard let services, !path.hasPrefix("sys/"), !path.hasPrefix("auth/") else { return nil }
        // Only a mount that can serve on the loop is worth authenticating for here.
        guard let (mount, relative) = services.mounts.route(path), !mount.backend.hasExistenceCheck else { return nil }
        var request = request
        let entry: TokenStore.Entry
        switch try services.tokens.lookup(request.token) {
        case .needsWrite: return nil
        // No such token: the answer `handle` gives (counted as unrouted, as there).
        case .unknown: throw .permissionDenied
        case .entry(let found, let key):
            entry = found
            request.caller = Caller(key: key, entry: found)
        }
        let acl = services.policies.acl(for: entry.policies)
        request.acl = acl
        // A denial: the answer `handle` gives (unrouted too).
        guard Self.authorize(request, acl: acl, exists: nil) else { throw Self.aclDenied }
        guard let reply = try mount.backend.handleOnLoop(request, path: relative) else { return nil }
        area = mount.type
        return reply
    }

    /// `area` names what served the request for the metrics: "sys", "auth/token" or the mount's type.
    private func dispatch(_ request: VaultRequest, area: inout String) async throws(VaultError) -> VaultReply {
        var request = request
        let path = request.path
        let (state, currentServices) = runtime.current
        if path.hasPrefix("sys/") { area = "sys" }
        if path == "sys/init", request.operation == .update { return try runtime.initialize() }
        if Self.unauthenticated.contains(path) {
            return try await SysBackend(state: state, mounts: nil).handle(request, path: String(path.dropFirst(4)))
        }
        guard let services = currentServices else {
            throw VaultError(status: .serviceUnavailable, messages: ["Vault is sealed"])
        }
        var allowed = false
        // The holder of a wrapping token looks it up or unwraps it with that token alone: it is not authenticated
        // (that would spend its one use) and no ACL applies; the backend checks it is a live wrapping token.
        let wrappingTokenCall = Self.usesWrappingToken(request)
        let authenticated = wrappingTokenCall ? nil : try services.tokens.authenticate(request.token)
        let entry = authenticated?.entry
        if let (entry, key) = authenticated {
            request.caller = Caller(key: key, entry: entry)
            let acl = services.policies.acl(for: entry.policies)
            var exists: Bool?
            if request.operation == .update, !acl.isRoot, let (mount, relative) = services.mounts.route(path),
                mount.backend.hasExistenceCheck
            {
                exists = await mount.backend.existence(of: relative)
            }
            allowed = Self.authorize(request, acl: acl, exists: exists)
            request.acl = acl
        }
        if wrappingTokenCall { allowed = true }
        if path == "sys/internal/specs/openapi", request.operation == .read {
            // Vault serves its document to anyone, listing the paths the caller's token can reach.
            let document = OpenAPIDocument.build(
                mounts: services.mounts.list(), acl: entry == nil ? nil : request.acl)
            return VaultReply(bare: document)
        }
        let denial: VaultError = entry == nil ? .permissionDenied : Self.aclDenied
        guard audit.audits(path) else {
            guard allowed else { throw denial }
            return try await route(request, services: services, state: state, area: &area)
        }
        // Audited: the request line is durable before anything happens, the response line before the answer leaves.
        var record = AuditRequest(request, id: request.id)
        if let (mount, _) = services.mounts.route(path) {
            record.mountPoint = mount.path
            record.mountType = mount.type
        }
        try await audited { () async throws(AuditError) in
            try await audit.logRequest(record, error: allowed ? nil : denial.messages.first)
        }
        let outcome: Result<VaultReply, VaultError>
        if allowed {
            do { outcome = .success(try await route(request, services: services, state: state, area: &area)) } catch {
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
        try await audited { () async throws(AuditError) in try await audit.logResponse(record, response: response) }
        return try outcome.get()
    }

    /// `sys/wrapping/lookup`, and `sys/wrapping/unwrap` without a `token` in the body: the wrapping token is the
    /// request's own.
    static func usesWrappingToken(_ request: VaultRequest) -> Bool {
        if request.operation == .read { return request.path == "sys/wrapping/lookup" }
        guard request.operation == .update else { return false }
        switch request.path {
        case "sys/wrapping/lookup": return true
        case "sys/wrapping/unwrap":
            if case .string(let token)? = request.body.objectMembers["token"], !token.isEmpty { return false }
            return true
        default: return false
        }
    }

    /// Routes the request, then response-wraps the answer when the request asked for it (`X-Vault-Wrap-TTL`) and
    /// there is something to wrap: a 200 in Vault's envelope that is not a wrapping already (a 204 stays a 204).
    private func route(
        _ request: VaultRequest, services: Services, state: ServerState, area: inout String
    ) async throws(VaultError) -> VaultReply {
        let reply = try await serve(request, services: services, state: state, area: &area)
        guard let ttl = request.wrapTTL, reply.status == .ok, reply.wrapInfo == nil, reply.bare == nil,
            reply.raw == nil
        else { return reply }
        return try services.tokens.wrap(reply, path: request.path, ttl: ttl)
    }

    /// sys/, auth/token/ and the mounted engines.
    private func serve(
        _ request: VaultRequest, services: Services, state: ServerState, area: inout String
    ) async throws(VaultError)
        -> VaultReply
    {
        let path = request.path
        if path.hasPrefix("sys/") {
            return try await SysBackend(
                state: state, mounts: services.mounts, services: services, audit: audit, metrics: metrics
            )
            .handle(request, path: String(path.dropFirst(4)))
        }
        if path.hasPrefix("auth/token/") {
            area = "auth/token"
            return try await TokenBackend(store: services.tokens).handle(request, path: String(path.dropFirst(11)))
        }
        guard let (mount, relative) = services.mounts.route(path) else { throw .unsupportedPath(path) }
        area = mount.type
        var reply = try await mount.backend.handle(request, path: relative)
        if reply.leaseDuration == VaultReply.mountDefaultLease {
            reply.leaseDuration = mount.defaultLeaseTTL > 0 ? mount.defaultLeaseTTL : Mount.systemLeaseTTL
        }
        return reply
    }

    /// An audit failure fails the request (Vault: a request no device can record is refused); the cause goes to
    /// the server's standard error, never to the client.
    func audited(_ body: () async throws(AuditError) -> Void) async throws(VaultError) {
        do { try await body() } catch {
            metrics?.recordAuditFailure()
            complain("vhsmd: audit failed: \(error)")
            throw VaultError(status: .internalServerError, messages: ["internal error"])
        }
    }

    /// The ACL check of Vault's router (`ACL.authorize(_:exists:)`): LIST is matched on the path with a trailing
    /// slash; a POST/PUT needs `update` on an existing item and `create` on a new one where the backend has an
    /// existence check (`exists`); reads, creates, updates and PATCHes must satisfy the rule's parameter
    /// constraints; root-protected paths need sudo.
    static func authorize(_ request: VaultRequest, acl: ACL, exists: Bool? = nil) -> Bool {
        acl.authorize(request, exists: exists)
    }
}
