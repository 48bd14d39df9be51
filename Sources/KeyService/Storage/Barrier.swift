import Crypto
import FoundationEssentials
import Sealing
import Synchronization

/// The encryption barrier: every value that reaches the physical store is sealed by `BarrierFrame`
/// under the keyring's active term, with its storage path as associated data.
///
/// The keyring itself lives at `core/keyring`, sealed with AES-256-GCM under the root key that a
/// `SealProvider` supplies (associated data `vhsm/keyring`: nonce 12 ‖ ciphertext ‖ tag 16). The
/// barrier starts sealed; `initialize(rootKey:)` (fresh store) or `unseal(rootKey:)` opens it. It is
/// itself a `StorageBackend`, over plaintext values, so the layers above can run on a bare
/// `MemoryBackend` in tests.
final class Barrier: StorageBackend {
    /// Where the sealed keyring is stored. Reserved: the barrier's own operations refuse it.
    static let keyringPath = "core/keyring"
    /// The associated data of the sealed keyring.
    static let keyringAAD: [UInt8] = Array("vhsm/keyring".utf8)
    /// Where the root key escrowed to the operator key is stored (an armored `SealedSecret` of kind `barrierKey`,
    /// not barrier-sealed: it must be readable when the root key is lost). Reserved like the keyring.
    static let escrowPath = "core/keyring-escrow"

    /// The active term and when it was installed, as `sys/key-status` reports them.
    struct KeyStatus: Sendable, Equatable {
        var term: UInt32
        var installed: Date
        /// Values sealed under this term since this process started or rotated to it.
        var encryptions: Int = 0
    }

    /// Values sealed under the active term by this process (reset by `rotate`).
    private let encryptions = Atomic<Int>(0)

    fileprivate func countEncryption() { encryptions.add(1, ordering: .relaxed) }

    private enum State: Sendable {
        case sealed
        case unsealed(rootKey: SymmetricKey, keyring: Keyring)
    }

    let backend: any StorageBackend
    private let state = Mutex<State>(.sealed)

    init(backend: any StorageBackend) {
        self.backend = backend
    }

    // MARK: - Lifecycle

    /// True when the store holds a keyring, whether or not this barrier is unsealed.
    var isInitialized: Bool {
        get throws { try backend.get(Self.keyringPath) != nil }
    }

    /// True until `initialize` or `unseal` succeeds, and again after `seal()`.
    var isSealed: Bool {
        state.withLock { if case .sealed = $0 { true } else { false } }
    }

    /// Creates the keyring of a fresh store (term 1), stores it sealed under `rootKey` and leaves the
    /// barrier unsealed. Throws `BarrierError.alreadyInitialized` if a keyring exists.
    /// With `escrow`, the root key is also stored sealed to the operator key, in the same transaction.
    func initialize(rootKey: SymmetricKey, escrow: Escrow? = nil) throws {
        let keyring = Keyring()
        let sealed = try Self.sealKeyring(keyring, rootKey: rootKey)
        let escrowed = try escrow?.seal(rootKey)
        try backend.transaction { transaction in
            guard try transaction.get(Self.keyringPath) == nil else { throw BarrierError.alreadyInitialized }
            try transaction.put(Self.keyringPath, sealed)
            if let escrowed { try transaction.put(Self.escrowPath, Array(escrowed.armored.utf8)) }
        }
        state.withLock { $0 = .unsealed(rootKey: rootKey, keyring: keyring) }
    }

    /// Loads the keyring and opens it with `rootKey`. Throws `BarrierError.notInitialized` when there
    /// is none and `BarrierError.wrongRootKey` when `rootKey` does not authenticate it.
    func unseal(rootKey: SymmetricKey) throws {
        guard let sealed = try backend.get(Self.keyringPath) else { throw BarrierError.notInitialized }
        let keyring = try Self.openKeyring(sealed, rootKey: rootKey)
        state.withLock { $0 = .unsealed(rootKey: rootKey, keyring: keyring) }
    }

    /// Who the root key is escrowed to: the operator key, and the blob's context (`barrier|<data directory>`).
    struct Escrow: Sendable {
        var key: HPKEPublicKey
        var context: String

        func seal(_ rootKey: SymmetricKey) throws -> SealedSecret {
            try rootKey.withUnsafeBytes { bytes throws(SealingError) in
                try SealedSecret.seal(bytes, kind: .barrierKey, context: context, to: key)
            }
        }
    }

    /// The stored escrow blob, if any (readable whether or not the barrier is sealed).
    func escrowed() throws -> SealedSecret? {
        guard let bytes = try backend.get(Self.escrowPath) else { return nil }
        return try SealedSecret.parse(armored: String(decoding: bytes, as: UTF8.self), kind: .barrierKey)
    }

    /// Stores the unsealed root key escrowed to `escrow` unless the stored blob is already for that key and
    /// context (a store initialised without an operator key, or before escrow existed, gets one at its next start).
    /// Returns true when it wrote one.
    @discardableResult
    func ensureEscrow(_ escrow: Escrow) throws -> Bool {
        if let stored = try? escrowed(), stored.recipientFingerprint == escrow.key.fingerprint,
            stored.context == escrow.context
        {
            return false
        }
        let rootKey = try state.withLock { state throws(BarrierError) -> SymmetricKey in
            guard case .unsealed(let rootKey, _) = state else { throw .sealed(path: Self.escrowPath) }
            return rootKey
        }
        try backend.put(Self.escrowPath, Array(try escrow.seal(rootKey).armored.utf8))
        return true
    }

    /// Does `rootKey` open the stored keyring? (Nothing is kept.)
    func opens(rootKey: SymmetricKey) -> Bool {
        guard let stored = try? backend.get(Self.keyringPath) else { return false }
        return (try? Self.openKeyring(stored, rootKey: rootKey)) != nil
    }

    /// Operator recovery: opens the keyring with `oldRootKey` (the escrowed key the operator released), seals it
    /// under `newRootKey` (this launch's) and escrows `newRootKey`, in one transaction, and leaves the barrier
    /// unsealed. Throws `BarrierError.wrongRootKey` when `oldRootKey` does not open the keyring.
    func rekey(from oldRootKey: SymmetricKey, to newRootKey: SymmetricKey, escrow: Escrow) throws {
        guard let stored = try backend.get(Self.keyringPath) else { throw BarrierError.notInitialized }
        let keyring = try Self.openKeyring(stored, rootKey: oldRootKey)
        let sealed = try Self.sealKeyring(keyring, rootKey: newRootKey)
        let escrowed = try escrow.seal(newRootKey)
        try backend.transaction { transaction in
            guard try transaction.get(Self.keyringPath) == stored else { throw BarrierError.wrongRootKey }
            try transaction.put(Self.keyringPath, sealed)
            try transaction.put(Self.escrowPath, Array(escrowed.armored.utf8))
        }
        state.withLock { $0 = .unsealed(rootKey: newRootKey, keyring: keyring) }
    }

    /// Seals the keyring under a fresh `newRootKey` (a cluster's root-key rotation), escrowing it when `escrow` is
    /// given, and runs `alsoWrite` in the same transaction (the members' entries for the new key). The barrier must
    /// be unsealed; it stays unsealed under the new key.
    func rotateRootKey(
        to newRootKey: SymmetricKey, escrow: Escrow?, alsoWrite: (any StorageTransaction) throws -> Void
    ) throws {
        let keyring = try state.withLock { state throws(BarrierError) -> Keyring in
            guard case .unsealed(_, let keyring) = state else { throw .sealed(path: Self.keyringPath) }
            return keyring
        }
        let sealed = try Self.sealKeyring(keyring, rootKey: newRootKey)
        let escrowed = try escrow?.seal(newRootKey)
        try backend.transaction { transaction in
            try transaction.put(Self.keyringPath, sealed)
            if let escrowed { try transaction.put(Self.escrowPath, Array(escrowed.armored.utf8)) }
            try alsoWrite(transaction)
        }
        state.withLock { $0 = .unsealed(rootKey: newRootKey, keyring: keyring) }
    }

    /// Forgets the root key and the keyring; every operation then throws `BarrierError.sealed`.
    func seal() {
        state.withLock { $0 = .sealed }
    }

    /// Adds a term with a fresh key and makes it active: new writes use it, older terms still open
    /// what they sealed. The new keyring is stored before it is used; other operations wait for
    /// that write. Returns the new term.
    @discardableResult
    func rotate() throws -> KeyStatus {
        try state.withLock { state throws -> KeyStatus in
            guard case .unsealed(let rootKey, var keyring) = state else {
                throw BarrierError.sealed(path: Self.keyringPath)
            }
            let term = keyring.rotate()
            try backend.put(Self.keyringPath, Self.sealKeyring(keyring, rootKey: rootKey))
            state = .unsealed(rootKey: rootKey, keyring: keyring)
            encryptions.store(0, ordering: .relaxed)
            return KeyStatus(term: term.number, installed: term.installed)
        }
    }

    /// The active term.
    func keyStatus() throws -> KeyStatus {
        let active = try unsealedKeyring(for: Self.keyringPath).active
        return KeyStatus(
            term: active.number, installed: active.installed, encryptions: encryptions.load(ordering: .relaxed))
    }

    // MARK: - StorageBackend

    func get(_ path: String) throws -> [UInt8]? {
        let keyring = try keyring(for: path)
        guard let frame = try backend.get(path) else { return nil }
        do { return try Self.open(frame, path: path, keyring: keyring) } catch {
            // Another node of a cluster rotated the keyring since this one loaded it: read it again (same root key).
            guard case .unknownTerm = error, let fresh = try reloadKeyring(), fresh.terms.count > keyring.terms.count
            else { throw error }
            return try Self.open(frame, path: path, keyring: fresh)
        }
    }

    /// The stored keyring opened again with this barrier's root key, installed in place of the loaded one; nil when
    /// sealed. Throws when it no longer opens (the root key was rotated too: the node must unseal again).
    private func reloadKeyring() throws -> Keyring? {
        guard case .unsealed(let rootKey, _) = state.withLock({ $0 }) else { return nil }
        guard let sealed = try backend.get(Self.keyringPath) else { throw BarrierError.notInitialized }
        let keyring = try Self.openKeyring(sealed, rootKey: rootKey)
        state.withLock { $0 = .unsealed(rootKey: rootKey, keyring: keyring) }
        return keyring
    }

    func put(_ path: String, _ value: [UInt8]) throws {
        let keyring = try keyring(for: path)
        try backend.put(path, Self.seal(value, path: path, keyring: keyring))
        countEncryption()
    }

    func delete(_ path: String) throws {
        _ = try keyring(for: path)
        try backend.delete(path)
    }

    func list(prefix: String) throws -> [String] {
        _ = try unsealedKeyring(for: prefix)
        return try backend.list(prefix: prefix)
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        let keyring = try unsealedKeyring(for: "")
        return try backend.transaction { inner in
            try body(SealingTransaction(inner: inner, keyring: keyring, barrier: self))
        }
    }

    // MARK: - Sealing

    /// A transaction of the backend below, seen through the barrier.
    private struct SealingTransaction: StorageTransaction {
        var inner: any StorageTransaction
        var keyring: Keyring
        let barrier: Barrier

        func get(_ path: String) throws -> [UInt8]? {
            try Barrier.checkNotReserved(path)
            return try inner.get(path).map { try Barrier.open($0, path: path, keyring: keyring) }
        }

        func put(_ path: String, _ value: [UInt8]) throws {
            try Barrier.checkNotReserved(path)
            try inner.put(path, Barrier.seal(value, path: path, keyring: keyring))
            barrier.countEncryption()
        }

        func delete(_ path: String) throws {
            try Barrier.checkNotReserved(path)
            try inner.delete(path)
        }

        func list(prefix: String) throws -> [String] {
            try inner.list(prefix: prefix)
        }
    }

    /// The keyring, for an operation on `path`: refuses the keyring's own path and a sealed barrier.
    private func keyring(for path: String) throws(BarrierError) -> Keyring {
        try Self.checkNotReserved(path)
        return try unsealedKeyring(for: path)
    }

    /// The keyring, or `BarrierError.sealed` naming `path`.
    private func unsealedKeyring(for path: String) throws(BarrierError) -> Keyring {
        try state.withLock { state throws(BarrierError) -> Keyring in
            guard case .unsealed(_, let keyring) = state else { throw .sealed(path: path) }
            return keyring
        }
    }

    private static func checkNotReserved(_ path: String) throws(BarrierError) {
        if path == keyringPath || path == escrowPath || path.hasPrefix(ClusterMembers.prefix) {
            throw .reservedPath(path)
        }
    }

    private static func seal(_ value: [UInt8], path: String, keyring: Keyring) throws -> [UInt8] {
        let active = keyring.active
        return try BarrierFrame.seal(value, path: path, term: active.number, key: active.key)
    }

    private static func open(_ frame: [UInt8], path: String, keyring: Keyring) throws(BarrierError) -> [UInt8] {
        let term = try BarrierFrame.term(of: frame, path: path)
        guard let key = keyring.terms[term]?.key else { throw .unknownTerm(path: path, term: term) }
        return try BarrierFrame.open(frame, path: path, key: key)
    }

    private static func sealKeyring(_ keyring: Keyring, rootKey: SymmetricKey) throws -> [UInt8] {
        var plaintext = keyring.bytes
        defer { plaintext.zeroize() }
        let box = try AES.GCM.seal(plaintext, using: rootKey, authenticating: keyringAAD)
        return Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    private static func openKeyring(_ sealed: [UInt8], rootKey: SymmetricKey) throws(BarrierError) -> Keyring {
        var plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            plaintext = try AES.GCM.open(box, using: rootKey, authenticating: keyringAAD)
        } catch {
            throw .wrongRootKey
        }
        defer { plaintext.zeroize() }
        var bytes = Array(plaintext)
        defer { bytes.zeroize() }
        return try Keyring(bytes: bytes)
    }
}
