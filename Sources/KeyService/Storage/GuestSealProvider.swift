import Crypto

/// The `sev-guest` (and, in test builds, `emulator:SOCKET`) seal provider: turns a 32-byte key
/// derived by the AMD Secure Processor (MSG_KEY_REQ) into the barrier root key.
///
/// The root key is HKDF-SHA256(ikm: derived key, salt: `salt`, info: `vhsm/barrier/v1`), so it is
/// never the derived key itself and never the LUKS key, which uses the label `vhsm/luks/<mode>`.
/// The derived key is zeroed as soon as HKDF has consumed it.
struct GuestSealProvider: SealProvider {
    /// Asks the Secure Processor (or the emulator) for the 32-byte derived key.
    typealias DerivedKeySource = @Sendable () throws -> [UInt8]

    /// The HKDF info string: a label that no other use of the derived key shares.
    static let info: [UInt8] = Array("vhsm/barrier/v1".utf8)
    /// The default HKDF salt.
    static let defaultSalt: [UInt8] = Array("vhsm/barrier".utf8)

    let name: String
    let salt: [UInt8]
    private let derivedKey: DerivedKeySource

    /// - Parameters:
    ///   - name: `sev-guest`, or `emulator:<socket path>` in test builds.
    ///   - salt: the HKDF salt; a data-directory identifier may be used instead of the default.
    ///   - derivedKey: returns the 32-byte MSG_KEY_REQ derived key; called once per `rootKey()`.
    init(
        name: String = "sev-guest", salt: [UInt8] = GuestSealProvider.defaultSalt,
        derivedKey: @escaping DerivedKeySource
    ) {
        self.name = name
        self.salt = salt
        self.derivedKey = derivedKey
    }

    func rootKey() throws -> SymmetricKey {
        var material: [UInt8]
        do {
            material = try derivedKey()
        } catch {
            throw SealError.derivation(provider: name, cause: error)
        }
        defer { material.zeroize() }
        guard material.count == 32 else {
            throw SealError.derivedKeyLength(provider: name, count: material.count)
        }
        let inputKey = SymmetricKey(data: material)
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: inputKey, salt: salt, info: Self.info, outputByteCount: 32)
    }
}
