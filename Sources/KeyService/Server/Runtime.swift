import Crypto
import FoundationEssentials
import HTTPTypes
import SNP
import Sealing
import Synchronization

/// What the server has once its barrier is open: the token store and the mount table.
struct Services: Sendable {
    let tokens: TokenStore
    let mounts: MountTable
    let policies: PolicyStore
    /// Where the policies are kept (`core/policies`).
    let storage: EngineStorage
    /// `identity/oidc/`: identity tokens, their keys and roles (kept at `identity/oidc/`).
    let identity: IdentityOIDC

    /// Opens the services kept in `storage`.
    static func open(_ storage: EngineStorage) throws -> Services {
        let mounts = MountTable(storage: storage)
        try mounts.load()
        let saved = try storage.read([PolicyStore.Entry].self, "core/policies") ?? []
        return Services(
            tokens: try TokenStore(storage: storage), mounts: mounts, policies: try PolicyStore(restoring: saved),
            storage: storage, identity: IdentityOIDC(storage: storage.scoped("identity/oidc/")))
    }

    /// The built-in `identity/` store as a mount entry (the audit log's mount point and type, and routing).
    var identityMount: Mount {
        Mount(
            path: "identity/", type: "identity", description: "identity store", accessor: "identity_oidc",
            uuid: "identity", options: [:], backend: identity)
    }

    /// The mount serving `path` (the identity store for `identity/…`) and the path relative to it.
    func route(_ path: String) -> (Mount, String)? {
        if path.hasPrefix("identity/") { return (identityMount, String(path.dropFirst("identity/".count))) }
        return mounts.route(path)
    }

    /// Writes the policy set `entries` (as `PolicyStore.put`/`delete` are about to make it) to the sealed store.
    func savePolicies(_ entries: [PolicyStore.Entry]) throws(VaultError) {
        try storage.write(entries.filter { $0.name != "default" }, "core/policies")
    }
}

/// The server's life: uninitialised → (sys/init) → unsealed, or sealed when the root key does not open the store.
/// A class behind a mutex (not an actor): every request reads the state and the services without suspending.
final class Runtime: Sendable {
    private struct Life {
        var state: ServerState
        var services: Services?
        /// In a cluster: this node holds the lease and has loaded its state (`becameActive`).
        var active = false
        var activeSince: Date?
        /// Set while the store waits for the operator to release its escrowed root key.
        var recovery: PendingRecovery?
    }

    /// The store is initialised but this launch's root key does not open it (another chip, measurement or TCB):
    /// vhsmd stays sealed and offers a request (an X25519 key bound to this launch by a report) for the operator,
    /// who verifies it and releases the escrowed root key to that key (`sys/unseal/operator`).
    struct PendingRecovery: Sendable {
        let request: RecoveryRequest
        let privateKey: Curve25519.KeyAgreement.PrivateKey
        let escrowed: SealedSecret
        let target: BarrierRecovery
        /// Why the store did not open, for the answer and the start line.
        let cause: String
    }

    private let life: Mutex<Life>
    /// The key of the leader advertisements, once derived (`advertisementKey()`).
    private let advertisement = Mutex<SymmetricKey?>(nil)
    /// The lease's view of leadership when vhsmd is one node of a cluster on a shared database (`attach`).
    private let coordinator = Mutex<(any HACoordinator)?>(nil)
    /// True for a node of a cluster: it serves only while active, and starts as a standby.
    let clustered: Bool
    /// The cluster's seal (member entries), barrier and escrow, for `sys/cluster/` (nil outside a cluster).
    var clusterSeal: ClusterSeal? { seal as? ClusterSeal }
    var clusterBarrier: Barrier? { barrier }
    var clusterEscrow: Barrier.Escrow? { escrow }
    /// Held by `sys/init` while it initialises the store (seal key, storage writes): `life`'s lock is only taken to
    /// publish the result, so requests reading the state meanwhile do not wait.
    private let initialization = Mutex(())
    var state: ServerState { current.state }
    var services: Services? { current.services }
    /// The state and the services, read together. In a cluster, a node serves only while the lease says it is active:
    /// a standby (or a node whose lease may have expired on its own clock) has no services.
    var current: (state: ServerState, services: Services?) {
        let (state, services, active) = life.withLock { ($0.state, $0.services, $0.active) }
        guard clustered else { return (state, services) }
        var clusterState = state
        let ha = coordinator.withLock { $0 }
        let view = ha?.view()
        clusterState.ha = ServerState.HA(
            nodeID: ha?.nodeID ?? "", isActive: active && (view?.isActive ?? false), leader: view?.leader,
            activeSince: view?.activeSince)
        return (clusterState, clusterState.ha!.isActive ? services : nil)
    }

    /// The lease that elects this node (cluster mode), attached once it exists.
    func attach(_ ha: any HACoordinator) { coordinator.withLock { $0 = ha } }
    var ha: (any HACoordinator)? { coordinator.withLock { $0 } }

    /// May this node compete for the lease? Only when it can serve once active: initialised and unsealed (a member),
    /// or a store nobody has initialised yet (the winner answers sys/init).
    var mayCompete: Bool {
        life.withLock { !$0.state.initialized || !$0.state.sealed }
    }
    /// The sealed store and its root key source, for `sys/init` in config mode; nil in dev mode.
    private let barrier: Barrier?
    private let seal: (any SealProvider)?
    /// The configuration's `operator_key`: root tokens leave vhsmd only sealed to it (`sys/init`,
    /// `sys/generate-root/operator`). nil: `sys/init` answers with the token in the clear, as Vault does.
    let operatorKey: HPKEPublicKey?
    /// Where the barrier root key is escrowed: the operator key and the data directory (nil without an operator key).
    private let escrow: Barrier.Escrow?
    /// What moves the store to this launch after operator recovery (config mode on an SNP seal).
    private let recoveryTarget: BarrierRecovery?

    /// Dev mode and already-unsealed stores.
    init(state: ServerState, services: Services, operatorKey: HPKEPublicKey? = nil) {
        life = Mutex(Life(state: state, services: services))
        clustered = false
        barrier = nil
        seal = nil
        self.operatorKey = operatorKey
        escrow = nil
        recoveryTarget = nil
    }

    /// Config mode: opens the barrier now if the data directory is initialised, else waits for `sys/init`. With an
    /// operator key the root key is escrowed to it (at `sys/init`, or now if the stored escrow is missing or for
    /// another key). When this launch's root key does not open the store and `recovery` is given, vhsmd starts
    /// sealed and waits for the operator (`sys/unseal/operator`) instead of failing.
    init(
        barrier: Barrier, seal: any SealProvider, storageType: String, operatorKey: HPKEPublicKey? = nil,
        recovery: BarrierRecovery? = nil, clustered: Bool = false, clusterName: String? = nil
    ) throws {
        self.clustered = clustered
        self.barrier = barrier
        self.seal = seal
        self.operatorKey = operatorKey
        let escrow = operatorKey.map {
            Barrier.Escrow(
                key: $0, context: recovery?.context ?? RecoveryRequest.context(purpose: .barrier, subject: "-"))
        }
        self.escrow = escrow
        recoveryTarget = recovery
        var state = ServerState(initialized: false, sealed: true, sealType: seal.name, storageType: storageType)
        if let clusterName { state.clusterName = clusterName }
        var pending: PendingRecovery?
        if try barrier.isInitialized {
            state.initialized = true
            do {
                try barrier.unseal(rootKey: try seal.rootKey())
                state.sealed = false
                // A cluster node writes only once it is active (`becameActive` checks the escrow then).
                if let escrow, !clustered { try barrier.ensureEscrow(escrow) }
            } catch let error where Self.isRecoverable(error) {
                guard let escrow, let recovery else { throw error }
                guard let escrowed = try barrier.escrowed() else {
                    throw RecoveryUnavailable(
                        "\(error); the store has no escrowed root key (it was initialised without an operator_key, "
                            + "and never started since with one), so it cannot be recovered")
                }
                guard escrowed.recipientFingerprint == escrow.key.fingerprint else {
                    throw RecoveryUnavailable(
                        "\(error); its root key is escrowed to operator key "
                            + "\(SealedRootToken.hex(escrowed.recipientFingerprint)), the configuration's is "
                            + "\(SealedRootToken.hex(escrow.key.fingerprint))")
                }
                let privateKey = Curve25519.KeyAgreement.PrivateKey()
                let request: RecoveryRequest
                do { request = try recovery.makeRequest(privateKey.publicKey) } catch {
                    throw RecoveryUnavailable("\(error); and no recovery request could be made: \(error)")
                }
                pending = PendingRecovery(
                    request: request, privateKey: privateKey, escrowed: escrowed, target: recovery, cause: "\(error)")
            }
        }
        life = Mutex(Life(state: state, services: nil, recovery: pending))
        if state.initialized, !state.sealed { learnAdvertisementKey() }
    }

    /// Why a store that does not open cannot wait for recovery either.
    struct RecoveryUnavailable: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The root key does not open the keyring, or (with the pin of another chip) cannot be derived at all.
    private static func isRecoverable(_ error: any Error) -> Bool {
        if case BarrierError.wrongRootKey = error { return true }
        if case SealError.derivation = error { return true }
        // A cluster node that has not joined, or whose entry was sealed by another launch.
        if case ClusterMemberError.notMember = error { return true }
        if case ClusterMemberError.wrongLaunch = error { return true }
        return false
    }

    /// Set while the store waits for the operator: the cause and the request's MEASUREMENT.
    var pendingRecovery: PendingRecovery? { life.withLock { $0.recovery } }

    /// `GET sys/unseal/operator`: the request and the escrowed root key, for `vhsm operator recover`. Both are
    /// public (the request binds a key to this launch; the escrow opens only with the operator's private key).
    func operatorRecoveryRequest() throws(VaultError) -> VaultReply {
        guard let pending = pendingRecovery, let escrow else { throw Self.notRecovering(state) }
        return VaultReply(
            bare: .object([
                "request": .string(pending.request.armored), "escrow": .string(pending.escrowed.armored),
                "operator_key_sha256": .string(SealedRootToken.hex(escrow.key.fingerprint)),
                "measurement": .string(Hex.encode(pending.request.report.measurement)),
                "cause": .string(pending.cause),
            ]))
    }

    /// `PUT sys/unseal/operator` with `grant`: the escrowed root key, released by the operator to this request's key.
    /// It must open the keyring; the keyring is then sealed under this launch's root key (a fresh pin), the new root
    /// key escrowed, seal.json rewritten, and the services opened.
    func operatorUnseal(grant text: String) throws(VaultError) -> VaultReply {
        guard let barrier, let escrow else { throw Self.notRecovering(state) }
        return try initialization.withLock { (_) throws(VaultError) -> VaultReply in
            guard let pending = pendingRecovery else { throw Self.notRecovering(state) }
            let grant: SealedSecret
            do { grant = try SealedSecret.parse(armored: text, kind: .recoveryGrant) } catch {
                throw .badRequest("\(error)")
            }
            guard grant.context == pending.target.context else {
                throw .badRequest(
                    "the grant is for '\(grant.context)', this store is '\(pending.target.context)': make it from this "
                        + "vhsmd's request (GET sys/unseal/operator)")
            }
            var secret: [UInt8]
            do { secret = try grant.open(with: .x25519(pending.privateKey)) } catch {
                throw .badRequest(
                    "\(error): a grant opens only for the request this vhsmd process made; fetch a fresh request")
            }
            defer { secret.zeroize() }
            guard secret.count == 32 else {
                throw .badRequest("the grant holds \(secret.count) bytes, not a 32-byte key")
            }
            let released = SymmetricKey(data: secret)
            // Anyone can seal a key of their choosing to the request's public key: check that it opens the keyring
            // before this launch's key is derived, so a forged grant costs no Secure Processor request.
            guard barrier.opens(rootKey: released) else {
                throw .badRequest(
                    "the released key does not open this data directory's keyring: the escrow blob served was not "
                        + "this store's (check the escrow the request came with)")
            }
            if let cluster = seal as? ClusterSeal {
                // A cluster node: the released key is the cluster's root key; this node enrolls with it (its own
                // member entry) instead of rekeying the shared keyring, and comes up as a standby.
                do {
                    try cluster.enroll(released)
                    try barrier.unseal(rootKey: released)
                    learnAdvertisementKey()
                } catch {
                    throw .internalError("cannot enroll this node in the cluster with the released key: \(error)")
                }
                life.withLock { life in
                    life.state.sealed = false
                    life.recovery = nil
                }
                return VaultReply(
                    bare: .object([
                        "sealed": .bool(false), "recovered": .bool(true), "enrolled": .bool(true),
                        "node_id": .string(cluster.members.nodeID),
                        "operator_key_sha256": .string(SealedRootToken.hex(escrow.key.fingerprint)),
                    ]))
            }
            let (provider, commit): (any SealProvider, @Sendable () throws -> Void)
            let rootKey: SymmetricKey
            do {
                (provider, commit) = try pending.target.repin()
                rootKey = try provider.rootKey()
            } catch {
                throw .internalError("cannot derive this launch's barrier root key: \(error)")
            }
            do { try barrier.rekey(from: released, to: rootKey, escrow: escrow) } catch BarrierError.wrongRootKey {
                throw .badRequest(
                    "the released key does not open this data directory's keyring: the escrow blob served was not "
                        + "this store's (check the escrow the request came with)")
            } catch {
                throw .internalError("cannot rekey the barrier to this launch: \(error)")
            }
            do { try commit() } catch {
                throw .internalError("the keyring was rekeyed but the seal pin was not written: \(error)")
            }
            let services: Services
            do { services = try Services.open(try engineStorage(barrier, create: true)) } catch {
                throw .internalError("the store did not open after recovery: \(error)")
            }
            life.withLock { life in
                life.state.sealed = false
                life.services = services
                life.recovery = nil
            }
            return VaultReply(
                bare: .object([
                    "sealed": .bool(false), "recovered": .bool(true),
                    "operator_key_sha256": .string(SealedRootToken.hex(escrow.key.fingerprint)),
                ]))
        }
    }

    private static func notRecovering(_ state: ServerState) -> VaultError {
        .badRequest(
            "vhsmd is not waiting for operator recovery: the store is "
                + (state.initialized
                    ? (state.sealed ? "sealed without an escrowed key" : "unsealed") : "not initialised")
                + "; recovery is offered only when this launch's seal does not open an initialised store that has an "
                + "operator_key escrow")
    }

    /// What the services read and write: the barrier, and in a cluster the barrier behind `HiddenPaths` (the shared
    /// database sees no names); `create` makes the path key of a store that has none (the active node only).
    private func engineStorage(_ barrier: Barrier, create: Bool) throws -> EngineStorage {
        guard clustered else { return EngineStorage(backend: barrier, prefix: "") }
        guard let key = try HiddenPaths.key(in: barrier, create: create) else {
            throw BarrierError.corrupt(path: HiddenPaths.keyPath, reason: "the cluster's path key is missing")
        }
        return EngineStorage(backend: HiddenPaths(inner: barrier, key: key), prefix: "")
    }

    /// What a cluster join's sponsor reads (this node, active or standby, once unsealed): the sealed store behind
    /// hidden path names (nothing is written through it on a standby) and the cluster root key from this node's
    /// member entry, derived only when asked (after every check of the join has passed).
    func joinSponsorContext(servedSPKISHA256: [UInt8]) throws(VaultError) -> ClusterJoinSponsor.Context {
        guard clustered, let barrier, let cluster = seal as? ClusterSeal else {
            throw .badRequest(
                "sys/cluster/join applies to a node of a cluster (storage.postgresql); this vhsmd is alone")
        }
        let state = life.withLock { $0.state }
        guard state.initialized, !state.sealed else {
            throw VaultError(
                status: .serviceUnavailable,
                messages: [
                    "join refused: this node is " + (state.initialized ? "sealed" : "not initialised")
                        + "; only an unsealed member of the cluster sponsors a join"
                ])
        }
        let storage: EngineStorage
        do { storage = try engineStorage(barrier, create: false) } catch {
            throw .internalError("this node cannot read the cluster's sealed store: \(error)")
        }
        return ClusterJoinSponsor.Context(
            cluster: cluster.members.cluster, servedSPKISHA256: servedSPKISHA256, storage: storage,
            rootKey: { try cluster.rootKey() })
    }

    /// Opens the services of an unsealed store.
    func start() throws {
        try life.withLock { life in try start(&life) }
    }

    private func start(_ life: inout Life) throws {
        // A cluster node starts as a standby: its services open when it wins the lease (`becameActive`).
        guard let barrier, !life.state.sealed, !clustered else { return }
        life.services = try Services.open(try engineStorage(barrier, create: true))
    }

    /// `PUT sys/init`: initialises the barrier under the seal's root key and issues the one root token. The state
    /// stays "not initialised" for every other request until the services are open. With an operator key the
    /// answer carries the token only sealed to it (`root_token_sealed`, `operator_key_sha256`), never in the clear:
    /// whoever calls first (on a first boot, the host) learns nothing it can use.
    func initialize() throws(VaultError) -> VaultReply {
        guard let barrier, let seal else { throw .badRequest("Vault is already initialized") }
        return try initialization.withLock { (_) throws(VaultError) -> VaultReply in
            guard !state.initialized else { throw .badRequest("Vault is already initialized") }
            do {
                let rootKey = try (seal as? ClusterSeal)?.initialRootKey() ?? seal.rootKey()
                try barrier.initialize(rootKey: rootKey, escrow: escrow)
            } catch let refused as StandbyWriteRefused {
                throw .standby(refused)
            } catch {
                throw .internalError("cannot initialise the sealed store with the '\(seal.name)' seal: \(error)")
            }
            let services: Services
            do { services = try Services.open(try engineStorage(barrier, create: true)) } catch {
                throw .internalError("the store did not open after initialisation: \(error)")
            }
            life.withLock { life in
                life.state.initialized = true
                life.state.sealed = false
                life.services = services
            }
            if clustered {
                life.withLock { life in
                    life.active = true
                    life.activeSince = life.activeSince ?? Date()
                }
                learnAdvertisementKey()
            }
            let token = try services.tokens.create(entry: .root())
            var answer: [String: JSONValue] = [
                "keys": .array([]), "keys_base64": .array([]), "recovery_keys": .array([]),
                "recovery_keys_base64": .array([]),
            ]
            if let operatorKey {
                let sealed: SealedRootToken
                do { sealed = try SealedRootToken.seal(token, to: operatorKey, issuedBy: "sys/init") } catch {
                    // The store is initialised and its root token unreachable: `sys/generate-root/operator` mints
                    // another once the cause is fixed.
                    throw .internalError("\(error); use sys/generate-root/operator to mint another")
                }
                answer["root_token_sealed"] = .string(sealed.armored)
                answer["operator_key_sha256"] = .string(SealedRootToken.hex(operatorKey.fingerprint))
            } else {
                answer["root_token"] = .string(token)
            }
            return VaultReply(bare: .object(answer))
        }
    }

    /// `PUT sys/generate-root/operator`: mints a root token and answers it only sealed to the operator key. It needs
    /// no token (whoever holds the operator's private key is the operator); the previous operator-generated root
    /// token is revoked when it was never used, so at most one unused one exists (`createOperatorRoot`).
    func generateOperatorRoot() throws(VaultError) -> VaultReply {
        guard let operatorKey else {
            throw .badRequest(
                "sys/generate-root/operator needs an operator_key in vhsmd's configuration (a PEM P-384 or X25519 "
                    + "public key); this server has none, so a root token can only come from sys/init")
        }
        let (state, services) = current
        guard state.initialized else {
            throw .badRequest(
                "Vault is not initialized: PUT sys/init first (its root token is sealed to the operator key)")
        }
        guard let services else { throw VaultError(status: .serviceUnavailable, messages: ["Vault is sealed"]) }
        let (token, revoked) = try services.tokens.createOperatorRoot()
        let sealed: SealedRootToken
        do { sealed = try SealedRootToken.seal(token, to: operatorKey, issuedBy: "sys/generate-root/operator") } catch {
            try? services.tokens.revoke(key: services.tokens.key(token: token))
            throw .internalError("\(error)")
        }
        return VaultReply(
            bare: .object([
                "root_token_sealed": .string(sealed.armored),
                "operator_key_sha256": .string(SealedRootToken.hex(operatorKey.fingerprint)),
                "revoked_unused": .bool(revoked),
            ]))
    }
}

extension Runtime: HAEvents {
    /// This node won the lease: the keyring is read again (another node may have rotated it), the escrow checked,
    /// and the services opened from the database, before the node serves.
    package func becameActive() throws {
        guard let barrier, let seal else { return }
        try initialization.withLock { _ in
            let (initialized, sealed) = life.withLock { ($0.state.initialized, $0.state.sealed) }
            var services: Services?
            if try barrier.isInitialized {
                guard initialized, !sealed else {
                    // Initialised by another node since this one started: it is not a member yet.
                    throw ClusterMemberError.notMember(
                        nodeID: (seal as? ClusterSeal)?.members.nodeID ?? "-",
                        cluster: (seal as? ClusterSeal)?.members.cluster ?? "-")
                }
                try barrier.unseal(rootKey: try seal.rootKey())
                if let escrow { try barrier.ensureEscrow(escrow) }
                services = try Services.open(try engineStorage(barrier, create: true))
                learnAdvertisementKey()
            }
            life.withLock { life in
                life.services = services
                life.active = true
                life.activeSince = Date()
            }
        }
    }

    /// HKDF-SHA256 of the cluster's path key (barrier-sealed at `core/path-key`, the same for every member and
    /// every keyring term), info `vhsm/cluster/leader/v1`.
    /// Derived when the barrier opens (`learnAdvertisementKey`), never read from the store here: this is asked on the
    /// HTTP event loop, which must not wait for the database.
    package func advertisementKey() -> SymmetricKey? { advertisement.withLock { $0 } }

    /// Reads the path key through the unsealed barrier once and keeps the advertisement key (the path key never
    /// changes). Called off the event loop, when the barrier has just opened.
    func learnAdvertisementKey() {
        guard clustered, advertisement.withLock({ $0 }) == nil, let barrier, !barrier.isSealed,
            let pathKey = try? HiddenPaths.key(in: barrier, create: false)
        else { return }
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: pathKey, info: Array("vhsm/cluster/leader/v1".utf8), outputByteCount: 32)
        let learned = advertisement.withLock { known in
            defer { known = known ?? key }
            return known == nil
        }
        if learned { coordinator.withLock { $0 }?.advertisementKeyLearned() }
    }

    /// This node lost or gave up the lease: it stops serving at once; its barrier stays unsealed (the keyring is
    /// read again when it next becomes active).
    package func becameStandby(reason: String) {
        life.withLock { life in
            life.services = nil
            life.active = false
            life.activeSince = nil
        }
    }
}
