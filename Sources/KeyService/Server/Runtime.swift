import FoundationEssentials
import HTTPTypes
import Sealing
import Synchronization

/// What the server has once its barrier is open: the token store and the mount table.
struct Services: Sendable {
    let tokens: TokenStore
    let mounts: MountTable
    let policies: PolicyStore
    /// Where the policies are kept (`core/policies`).
    let storage: EngineStorage

    /// Opens the services kept in `storage`.
    static func open(_ storage: EngineStorage) throws -> Services {
        let mounts = MountTable(storage: storage)
        try mounts.load()
        let saved = try storage.read([PolicyStore.Entry].self, "core/policies") ?? []
        return Services(
            tokens: try TokenStore(storage: storage), mounts: mounts, policies: try PolicyStore(restoring: saved),
            storage: storage)
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
    }

    private let life: Mutex<Life>
    /// Held by `sys/init` while it initialises the store (seal key, storage writes): `life`'s lock is only taken to
    /// publish the result, so requests reading the state meanwhile do not wait.
    private let initialization = Mutex(())
    var state: ServerState { life.withLock { $0.state } }
    var services: Services? { life.withLock { $0.services } }
    /// The state and the services, read together.
    var current: (state: ServerState, services: Services?) { life.withLock { ($0.state, $0.services) } }
    /// The sealed store and its root key source, for `sys/init` in config mode; nil in dev mode.
    private let barrier: Barrier?
    private let seal: (any SealProvider)?
    /// The configuration's `operator_key`: root tokens leave vhsmd only sealed to it (`sys/init`,
    /// `sys/generate-root/operator`). nil: `sys/init` answers with the token in the clear, as Vault does.
    let operatorKey: HPKEPublicKey?

    /// Dev mode and already-unsealed stores.
    init(state: ServerState, services: Services, operatorKey: HPKEPublicKey? = nil) {
        life = Mutex(Life(state: state, services: services))
        barrier = nil
        seal = nil
        self.operatorKey = operatorKey
    }

    /// Config mode: opens the barrier now if the data directory is initialised, else waits for `sys/init`.
    init(barrier: Barrier, seal: any SealProvider, storageType: String, operatorKey: HPKEPublicKey? = nil) throws {
        self.barrier = barrier
        self.seal = seal
        self.operatorKey = operatorKey
        let state: ServerState
        if try barrier.isInitialized {
            try barrier.unseal(rootKey: try seal.rootKey())
            state = ServerState(initialized: true, sealed: false, sealType: seal.name, storageType: storageType)
        } else {
            state = ServerState(initialized: false, sealed: true, sealType: seal.name, storageType: storageType)
        }
        life = Mutex(Life(state: state, services: nil))
    }

    /// Opens the services of an unsealed store.
    func start() throws {
        try life.withLock { life in try start(&life) }
    }

    private func start(_ life: inout Life) throws {
        guard let barrier, !life.state.sealed else { return }
        life.services = try Services.open(EngineStorage(backend: barrier, prefix: ""))
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
                try barrier.initialize(rootKey: try seal.rootKey())
            } catch {
                throw .internalError("cannot initialise the sealed store with the '\(seal.name)' seal: \(error)")
            }
            let services: Services
            do { services = try Services.open(EngineStorage(backend: barrier, prefix: "")) } catch {
                throw .internalError("the store did not open after initialisation: \(error)")
            }
            life.withLock { life in
                life.state.initialized = true
                life.state.sealed = false
                life.services = services
            }
            let root = TokenStore.Entry(
                accessor: TokenStore.newToken(prefix: ""), policies: ["root"], displayName: "root",
                creationTime: Date(), ttl: nil, explicitMaxTTL: 0, renewable: false, numUses: 0, meta: [:],
                parent: nil, orphan: true, path: "auth/token/root")
            let token = try services.tokens.create(entry: root)
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
