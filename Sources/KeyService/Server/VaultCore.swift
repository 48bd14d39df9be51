import FoundationEssentials
import HTTPTypes
import NIOHTTP1
import SNP

/// Routes an API request: unauthenticated sys paths, then token authentication, authorisation, and the mount
/// that serves the path. Every failure is a `VaultError` in Vault's shape.
///
/// Both dispatchers (`handleOnLoop` on the event loop, `handle` in a task) let a request in through one function,
/// `admit`: token lookup, ACL, sudo, the existence check. The event-loop dispatcher only adds "this admitted request
/// can be answered without waiting"; whenever admitting it would wait (a token write, a storage read, the
/// backend's existence check) it hands the request to the task, which admits it again from the start.
struct VaultCore: Sendable {
    let runtime: Runtime
    /// The enabled audit devices (none: nothing is audited).
    var audit = AuditBroker()
    /// Request counts and latencies for `sys/metrics` (none in tests that do not ask).
    var metrics: ServiceMetrics? = nil
    /// `sys/attestation`: fresh reports binding the served TLS key, or the 501 that says why there are none.
    var attestation: AttestationEndpoint = .notSNP
    /// The SHA-256 of the SPKI of the TLS certificate vhsmd serves, which `auth/sev-snp` logins bind (S of
    /// `AttestedLoginBinding`); 32 zero bytes over plain HTTP (dev mode).
    var servedSPKISHA256: [UInt8] = AttestedLoginBinding.absent
    /// vhsmd's address as clients reach it (`api_addr`): the default issuer of identity tokens.
    var apiAddress = APIAddress()
    /// The attested join's sponsor (a node of a cluster; nil elsewhere): `sys/cluster/join/nonce`,
    /// `sys/cluster/join` and `sys/cluster/join-policy`.
    var clusterJoin: ClusterJoinSponsor? = nil
    /// A standby's forwarding to the active node over attested TLS (config mode with TLS, in a cluster).
    var forwarder: ClusterForwarder? = nil
    /// Where request tasks run when storage calls block on the network (a cluster on PostgreSQL); nil: the global
    /// executor.
    var storageExecutor: BlockingTaskExecutor? = nil

    /// Paths anyone may call without a token.
    static let unauthenticated: Set<String> = [
        "sys/health", "sys/seal-status", "sys/init", "sys/leader", operatorGenerateRoot, operatorUnseal,
        AttestationEndpoint.path, ClusterJoinSponsor.noncePath, ClusterJoinSponsor.joinPath,
    ]
    /// Mints a root token sealed to the operator key (`Runtime.generateOperatorRoot`).
    static let operatorGenerateRoot = "sys/generate-root/operator"
    /// Operator recovery of a store this launch cannot open: GET the request and escrow, PUT the grant
    /// (`Runtime.operatorRecoveryRequest`, `Runtime.operatorUnseal`).
    static let operatorUnseal = "sys/unseal/operator"
    /// Paths whose body is read without a live token: the wrapping calls (the wrapping token may be in the body,
    /// or the request's token is the wrapping token) and the OpenAPI document (served to anyone). Their bodies are
    /// bounded by the sys/ body limit.
    static let bodyWithoutToken: Set<String> = [
        "sys/wrapping/lookup", "sys/wrapping/unwrap", "sys/internal/specs/openapi",
    ]
    /// The most `batch_input` items served on the event loop; a larger batch is served by a task.
    static let onLoopBatchLimit = 64
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

    /// A request whose body is still bytes: the token is checked before the body is parsed, so a caller without a
    /// live token is refused (and audited) with the body unread; then the body is parsed and the request handled.
    func handle(_ request: VaultRequest, body: [UInt8]) async throws(VaultError) -> VaultReply {
        var request = request
        if !body.isEmpty, !tokenMayPass(request, onLoop: false) { return try await refuse(request) }
        try request.setBody(body)
        return try await handle(request)
    }

    /// Could the request's token authenticate it? False only when it certainly cannot: no token, or one the token
    /// store does not hold (on the event loop: one its cache knows to be unknown, no storage read). Paths that
    /// need no token pass, and so does everything while the store is sealed (the answer is then 503).
    func tokenMayPass(_ request: VaultRequest, onLoop: Bool) -> Bool {
        guard !Self.unauthenticated.contains(request.path), !Self.bodyWithoutToken.contains(request.path),
            !IdentityOIDC.unauthenticated.contains(request.path), let services = runtime.services,
            !Self.isAuthLogin(request.path, mounts: services.mounts)
        else { return true }
        guard let token = request.token else { return false }
        if onLoop {
            if case .unknown? = try? services.tokens.lookup(token) { return false }
            return true
        }
        // A storage failure is not a verdict on the token: `handle` meets it again and answers it.
        do { return try services.tokens.entry(token: token) != nil } catch { return true }
    }

    /// Refuses a request whose token cannot pass (`tokenMayPass`) before its body is read: Vault's "permission
    /// denied", with its audit lines when a device is enabled (no request data: the body was not read).
    func refuse(_ request: VaultRequest) async throws(VaultError) -> VaultReply {
        let start = metrics == nil ? nil : ContinuousClock.now
        let outcome: Result<VaultReply, VaultError>
        do {
            outcome = .success(
                try await audited(request, mount: nil, allowed: false, denial: .permissionDenied) {
                    () throws(VaultError) in throw .permissionDenied
                })
        } catch { outcome = .failure(error) }
        record(request, area: request.path.hasPrefix("sys/") ? "sys" : "unrouted", outcome: outcome, since: start)
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

    /// How `admit` let a request in.
    private enum Admission {
        /// A path that needs no token (sys/health, sys/seal-status, sys/leader, reading sys/init).
        case open(ServerState)
        /// `PUT sys/init`.
        case initialize
        /// `PUT sys/generate-root/operator`.
        case generateRoot
        /// `GET` (false) or `PUT` (true) `sys/unseal/operator`.
        case operatorUnseal(put: Bool)
        /// `POST sys/cluster/join/nonce` or `POST sys/cluster/join`.
        case clusterJoin
        /// Authenticated (or not) and authorised (or not).
        case decided(Decision)
        /// Authenticated; the ACL needs the backend's existence check of `relative` in `mount` (task path only).
        case needsExistence(Decision, mount: Mount, relative: String, acl: ACL)
        /// On the event loop: admitting would wait (the token must be written or read from storage, or the ACL
        /// needs the existence check). Nothing has changed.
        case wait
    }

    /// What authentication and authorisation decided; `request` carries the caller and its ACL.
    private struct Decision {
        var request: VaultRequest
        let services: Services
        let state: ServerState
        var allowed = false
        /// Did a token authenticate the caller (the denial is then the ACL's)?
        var authenticated = false
        var denial: VaultError { authenticated ? VaultCore.aclDenied : .permissionDenied }
    }

    /// The one authentication and authorisation path of both dispatchers: the paths without a token, the sealed
    /// state, the wrapping-token calls (the backend checks the token; no ACL applies), then the token (on the event
    /// loop: looked up in the token cache without writing), its ACL, the existence check where the backend has one,
    /// and sudo (`authorize`).
    private func admit(_ request: VaultRequest, onLoop: Bool) throws(VaultError) -> Admission {
        let path = request.path
        let (state, current) = runtime.current
        if let ha = state.ha, !ha.isActive, !Self.servedByStandby(request) { throw Self.toActive(request, ha: ha) }
        if path == "sys/init", request.operation == .update { return onLoop ? .wait : .initialize }
        if path == Self.operatorGenerateRoot {
            guard request.operation == .update else { throw .unsupportedOperation(path) }
            return onLoop ? .wait : .generateRoot
        }
        if path == Self.operatorUnseal {
            guard request.operation == .update || request.operation == .read else { throw .unsupportedOperation(path) }
            return onLoop ? .wait : .operatorUnseal(put: request.operation == .update)
        }
        if path == ClusterJoinSponsor.noncePath || path == ClusterJoinSponsor.joinPath {
            guard request.operation == .update || request.operation == .create else {
                throw .unsupportedOperation(path)
            }
            return onLoop ? .wait : .clusterJoin
        }
        if Self.unauthenticated.contains(path) { return .open(state) }
        guard let services = current else {
            throw VaultError(status: .serviceUnavailable, messages: ["Vault is sealed"])
        }
        var decision = Decision(request: request, services: services, state: state)
        // An auth method's login and nonce: anyone may call them (the method authenticates the caller itself).
        if Self.isAuthLogin(path, mounts: services.mounts) {
            decision.allowed = true
            return .decided(decision)
        }
        // The identity tokens' discovery document and JWKS: a relying party reads them without a token.
        if IdentityOIDC.unauthenticated.contains(path) {
            decision.allowed = true
            return .decided(decision)
        }
        // The holder of a wrapping token looks it up or unwraps it with that token alone: it is not authenticated
        // (that would spend its one use) and no ACL applies; the backend checks it is a live wrapping token.
        if Self.usesWrappingToken(request) {
            decision.allowed = true
            return .decided(decision)
        }
        let found: (entry: TokenStore.Entry, key: [UInt8])?
        if onLoop {
            switch try services.tokens.lookup(request.token) {
            case .needsWrite: return .wait
            case .unknown: found = nil
            case .entry(let entry, let key): found = (entry, key)
            }
        } else {
            found = try services.tokens.authenticate(request.token)
        }
        guard let (entry, key) = found else { return .decided(decision) }
        decision.authenticated = true
        decision.request.caller = Caller(key: key, entry: entry)
        let acl = services.policies.acl(for: entry.policies)
        if request.operation == .update, !acl.isRoot, let (mount, relative) = services.route(path),
            mount.backend.hasExistenceCheck
        {
            if onLoop { return .wait }
            return .needsExistence(decision, mount: mount, relative: relative, acl: acl)
        }
        decision.allowed = Self.authorize(decision.request, acl: acl, exists: nil)
        decision.request.acl = acl
        return .decided(decision)
    }

    /// What a standby answers itself: its health, the leader, its seal status, its attestation and its own operator
    /// recovery. Everything else goes to the active node.
    static func servedByStandby(_ request: VaultRequest) -> Bool {
        switch request.path {
        case "sys/health", "sys/leader", "sys/seal-status", AttestationEndpoint.path, operatorUnseal,
            ClusterJoinSponsor.noncePath, ClusterJoinSponsor.joinPath:
            true
        case "sys/init": request.operation == .read
        default: false
        }
    }

    /// A standby's answer to the rest: 307 to the same target on the active node's `api_addr`, or 503 when no node
    /// holds an unexpired lease (never a redirect to a leader whose lease has expired), or while this node is
    /// becoming active.
    static func toActive(_ request: VaultRequest, ha: ServerState.HA) -> VaultError {
        guard let leader = ha.leader else {
            var error = VaultError(
                status: .serviceUnavailable, messages: ["local node not active but active cluster node not found"])
            error.retryAfter = 1
            return error
        }
        if leader.nodeID == ha.nodeID || leader.apiAddress.isEmpty {
            var error = VaultError(
                status: .serviceUnavailable, messages: ["this node is becoming the active node; retry in a moment"])
            error.retryAfter = 1
            return error
        }
        var base = leader.apiAddress
        while base.hasSuffix("/") { base.removeLast() }
        return .redirect(to: base + (request.target.isEmpty ? "/v1/" + request.path : request.target))
    }

    /// Should this request be forwarded to the active node, and where? Only on a standby, for what it does not serve
    /// itself, when the client did not opt out and the request was not forwarded already, to a leader it can name.
    func forwarding(
        _ request: VaultRequest, headers: HTTPHeaders
    ) -> (
        forwarder: ClusterForwarder, leader: String, ha: ServerState.HA
    )? {
        guard let forwarder, headers[ClusterForwarder.noForwardingHeader].isEmpty,
            headers[ClusterForwarder.forwardedHeader].isEmpty, !Self.servedByStandby(request)
        else { return nil }
        guard let ha = runtime.current.state.ha, !ha.isActive, let leader = ha.leader, leader.nodeID != ha.nodeID,
            !leader.apiAddress.isEmpty
        else { return nil }
        return (forwarder, leader.apiAddress, ha)
    }

    /// The event loop's dispatcher: `admit` without waiting, then what answers without waiting.
    private func dispatchOnLoop(_ request: VaultRequest, area: inout String) throws(VaultError) -> VaultReply? {
        let path = request.path
        // An audit line waits for the disk; wrapping an answer writes the wrapping token.
        guard !audit.audits(path), request.wrapTTL == nil else { return nil }
        // A large batch would hold the loop (and every connection on it) for its whole length.
        if case .array(let items)? = request.body.objectMembers["batch_input"], items.count > Self.onLoopBatchLimit {
            return nil
        }
        let open = Self.unauthenticated.contains(path)
        // sys/ and auth/token/ are served by the task (their writes commit to storage).
        guard open || (!path.hasPrefix("sys/") && !path.hasPrefix("auth/")) else { return nil }
        if open { area = "sys" }
        if path == AttestationEndpoint.path {
            // A refusal (method, nonce, no SNP seal, rate) is answered here; a report is made off the loop.
            if let refusal = attestation.refusal(request) { throw refusal }
            return nil
        }
        switch try admit(request, onLoop: true) {
        case .wait, .initialize, .generateRoot, .operatorUnseal, .clusterJoin, .needsExistence: return nil
        case .open(let state):
            guard request.operation == .read || request.operation == .list else { return nil }
            return try SysBackend(state: state, mounts: nil).respond(request, path: String(path.dropFirst(4)))
        case .decided(let decision):
            // A denial: the answer `handle` gives (counted as unrouted, as there).
            guard decision.allowed else { throw decision.denial }
            guard let (mount, relative) = decision.services.route(path),
                let reply = try mount.backend.handleOnLoop(decision.request, path: relative)
            else { return nil }
            area = mount.type
            return reply
        }
    }

    /// The task's dispatcher. `area` names what served the request for the metrics: "sys", "auth/token" or the
    /// mount's type.
    private func dispatch(_ request: VaultRequest, area: inout String) async throws(VaultError) -> VaultReply {
        let path = request.path
        if path.hasPrefix("sys/") { area = "sys" }
        switch try admit(request, onLoop: false) {
        case .wait: throw .internalError("the request to \(path) was not admitted off the event loop")
        case .initialize:
            return try await audited(request, mount: nil, allowed: true, denial: nil) { () throws(VaultError) in
                try runtime.initialize()
            }
        case .generateRoot:
            // Audited as a request and a response line, whatever the devices' path filters: it mints a root token.
            return try await audited(request, mount: nil, allowed: true, denial: nil) { () throws(VaultError) in
                try runtime.generateOperatorRoot()
            }
        case .operatorUnseal(let put):
            // Audited: a PUT rekeys the store with a key the operator released.
            return try await audited(request, mount: nil, allowed: true, denial: nil) { () throws(VaultError) in
                guard put else { return try runtime.operatorRecoveryRequest() }
                guard case .string(let grant)? = request.body.objectMembers["grant"] else {
                    throw .badRequest(
                        "PUT sys/unseal/operator takes {\"grant\": \"<armored VHSM RECOVERY GRANT>\"} "
                            + "(made by vhsm operator recover)")
                }
                return try runtime.operatorUnseal(grant: grant)
            }
        case .clusterJoin:
            // Audited as a request and a response line whatever the devices' path filters: every attempt, accepted
            // or refused with its reason (the sealed root key only as its HMAC, as every string).
            return try await audited(request, mount: nil, allowed: true, denial: nil) { () throws(VaultError) in
                guard let sponsor = clusterJoin else {
                    throw .badRequest(
                        "\(path) applies to a node of a cluster (storage.postgresql); this vhsmd sponsors no joins")
                }
                // Only an unsealed member sponsors (a 503 otherwise), from the nonce on.
                let context = try runtime.joinSponsorContext(servedSPKISHA256: servedSPKISHA256)
                if path == ClusterJoinSponsor.noncePath { return try sponsor.issueNonce() }
                return try sponsor.join(request, context: context)
            }
        case .open(let state):
            let backend = SysBackend(state: state, mounts: nil)
            let attestation = path == AttestationEndpoint.path ? self.attestation : nil
            let work = { () async throws(VaultError) -> VaultReply in
                if let attestation { return try await attestation.answer(request) }
                return try await backend.handle(request, path: String(path.dropFirst(4)))
            }
            guard audit.audits(path) else { return try await work() }
            return try await audited(request, mount: nil, allowed: true, denial: nil, work)
        case .needsExistence(var decision, let mount, let relative, let acl):
            let exists = await mount.backend.existence(of: relative)
            decision.allowed = Self.authorize(decision.request, acl: acl, exists: exists)
            decision.request.acl = acl
            return try await serve(decision, area: &area)
        case .decided(let decision):
            return try await serve(decision, area: &area)
        }
    }

    /// An admitted request: refused, or routed; audited when a device is enabled.
    private func serve(_ decision: Decision, area: inout String) async throws(VaultError) -> VaultReply {
        let request = decision.request
        let path = request.path
        let services = decision.services
        if path == "sys/internal/specs/openapi", request.operation == .read {
            // Vault serves its document to anyone, listing the paths the caller's token can reach.
            let document = OpenAPIDocument.build(
                mounts: services.mounts.list(),
                authMounts: Dictionary(
                    services.mounts.mounted.filter { MountTable.isAuth($0.path) }.map { ($0.path, $0.type) },
                    uniquingKeysWith: { first, _ in first }),
                acl: decision.authenticated ? request.acl : nil)
            return VaultReply(bare: document)
        }
        guard audit.audits(path) else {
            guard decision.allowed else { throw decision.denial }
            return try await route(request, services: services, state: decision.state, area: &area)
        }
        var routed = area
        defer { area = routed }
        return try await audited(
            request, mount: services.route(path)?.0, allowed: decision.allowed, denial: decision.denial
        ) { () async throws(VaultError) in
            try await route(request, services: services, state: decision.state, area: &routed)
        }
    }

    /// Audits a request: the request line is durable before anything happens (with the denial's message when it is
    /// refused), the response line before the answer leaves. Nothing is recorded when no device is enabled.
    private func audited(
        _ request: VaultRequest, mount: Mount?, allowed: Bool, denial: VaultError?,
        _ work: () async throws(VaultError) -> VaultReply
    ) async throws(VaultError) -> VaultReply {
        guard !audit.devices.isEmpty else {
            if !allowed, let denial { throw denial }
            return try await work()
        }
        var record = AuditRequest(request, id: request.id)
        record.mountPoint = mount?.path
        record.mountType = mount?.type
        let refusal = allowed ? nil : denial
        try await audited { () async throws(AuditError) in
            try await audit.logRequest(record, error: refusal?.messages.first)
        }
        let outcome: Result<VaultReply, VaultError>
        if let refusal {
            outcome = .failure(refusal)
        } else {
            do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
        }
        let response: AuditResponse
        switch outcome {
        case .success(let reply): response = AuditResponse(reply)
        case .failure(let error): response = AuditResponse(error)
        }
        try await audited { () async throws(AuditError) in try await audit.logResponse(record, response: response) }
        return try outcome.get()
    }

    /// An auth method's unauthenticated path: `auth/<path>/nonce` or `auth/<path>/login` of a `sev-snp` mount.
    static func isAuthLogin(_ path: String, mounts: MountTable) -> Bool {
        guard path.hasPrefix("auth/"), !path.hasPrefix("auth/token/"), let (mount, relative) = mounts.route(path),
            MountTable.isAuth(mount.path), mount.backend is SevSNPAuthBackend
        else { return false }
        return SevSNPAuthBackend.unauthenticated.contains(relative)
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
        if path == "sys/step-down" {
            guard request.operation == .update else { throw .unsupportedOperation(path) }
            guard let ha = runtime.ha else {
                throw .badRequest(
                    "sys/step-down applies to a node of a cluster (storage.postgresql); this vhsmd is alone")
            }
            do { try await ha.stepDown() } catch {
                // Not active any more, or the database did not answer: the service's state, not a server fault.
                throw VaultError(status: .serviceUnavailable, messages: ["step-down failed: \(error)"])
            }
            return .noContent
        }
        if path == ClusterJoinSponsor.policyPath {
            guard let sponsor = clusterJoin else {
                throw .badRequest(
                    "\(path) applies to a node of a cluster (storage.postgresql); this vhsmd sponsors no joins")
            }
            return try sponsor.servePolicy(request, storage: services.storage)
        }
        if path.hasPrefix("sys/cluster/") {
            return try runtime.clusterRequest(request, path: String(path.dropFirst("sys/cluster/".count)))
        }
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
        guard let (mount, relative) = services.route(path) else { throw .unsupportedPath(path) }
        area = mount.type
        if let identity = mount.backend as? IdentityOIDC {
            return try await identity.serve(
                request, path: relative,
                context: IdentityOIDC.Context(mounts: services.mounts, apiAddress: apiAddress.current))
        }
        if let method = mount.backend as? SevSNPAuthBackend {
            return try await method.serve(
                request, path: relative,
                context: SevSNPAuthBackend.Context(
                    tokens: services.tokens, policies: services.policies, servedSPKISHA256: servedSPKISHA256,
                    defaultLeaseTTL: mount.defaultLeaseTTL, maxLeaseTTL: mount.maxLeaseTTL))
        }
        var reply = try await mount.backend.handle(request, path: relative)
        if reply.leaseDuration == VaultReply.mountDefaultLease {
            reply.leaseDuration = mount.defaultLeaseTTL > 0 ? mount.defaultLeaseTTL : Mount.systemLeaseTTL
        }
        return reply
    }

    /// An audit failure fails the request (Vault: a request no device can record is refused) with a 500 that says
    /// so and why (the system's reason, not the log's path); the full cause goes to the server's standard error.
    func audited(_ body: () async throws(AuditError) -> Void) async throws(VaultError) {
        do { try await body() } catch {
            metrics?.recordAuditFailure()
            complain("vhsmd: audit failed: \(error)")
            throw VaultError(status: .internalServerError, messages: [error.clientMessage])
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
