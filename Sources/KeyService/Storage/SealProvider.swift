package import Crypto

/// Where the barrier root key comes from: the SNP sealing key (`sev-guest`), the software emulator
/// (`emulator:SOCKET`, test builds only) or a random in-memory key (`dev`).
///
/// `rootKey()` returns the 32-byte AES-256 key that opens the barrier keyring. A provider that is
/// asked twice in the same boot must return the same key, or the barrier cannot be unsealed.
package protocol SealProvider: Sendable {
    /// What `sys/seal-status` and the startup line call this provider: `sev-guest`,
    /// `emulator:/run/snp.sock`, `dev`.
    var name: String { get }

    /// The barrier root key. Throws `SealError` (or the hardware's own error, wrapped) when the
    /// key cannot be derived.
    func rootKey() throws -> SymmetricKey
}
