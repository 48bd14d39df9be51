import Crypto

/// The `dev` seal provider: a random AES-256 root key, generated once per process and never written
/// anywhere. Data sealed under it cannot be read after the process exits, which is the point of
/// `--dev` (pair it with `MemoryBackend`).
struct DevSealProvider: SealProvider {
    /// The key every `DevSealProvider` in this process returns.
    private static let processKey = SymmetricKey(size: .bits256)

    var name: String { "dev" }

    func rootKey() throws -> SymmetricKey { Self.processKey }
}
