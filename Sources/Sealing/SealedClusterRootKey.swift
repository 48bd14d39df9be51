import FoundationEssentials

/// The cluster root key as a sponsor hands it to a joining node (`sys/cluster/join`): HPKE base mode (RFC 9180) to
/// the joiner's attested ephemeral `public_key` with the suite of its curve (`HPKESuite`), info the ASCII bytes
/// `vhsm/cluster/join/v1`, AAD the join's 32 nonce bytes; the answer carries base64(enc ‖ ciphertext). The
/// plaintext is the 32-byte root key. The same construction as `SealedLoginAuth`, with its own info, so a sealed
/// login never opens as a root key nor the reverse.
public enum SealedClusterRootKey {
    public static let info = "vhsm/cluster/join/v1"
    public static let nonceCount = 32
    public static let keyCount = 32

    /// `rootKey` (32 bytes) sealed to `key` for the join of `nonce`: base64 of enc ‖ ciphertext.
    public static func seal(
        _ rootKey: [UInt8], to key: HPKEPublicKey, nonce: [UInt8]
    ) throws(SealingError) -> String {
        guard nonce.count == nonceCount else {
            throw SealingError("the join nonce is \(nonce.count) bytes, expected \(nonceCount)")
        }
        guard rootKey.count == keyCount else {
            throw SealingError("the cluster root key is \(rootKey.count) bytes, expected \(keyCount)")
        }
        do {
            let (enc, ciphertext) = try key.seal(rootKey, info: info, aad: nonce)
            return Data(enc + ciphertext).base64EncodedString()
        } catch {
            throw SealingError(
                "cannot seal the cluster root key to the joiner's public_key (HPKE \(key.suite.rawValue)): \(error)")
        }
    }

    /// Opens `sealed` (base64 of enc ‖ ciphertext) of `suite` with `key` for the join of `nonce`: the 32 key bytes.
    /// The caller zeroes them.
    public static func open(
        _ sealed: String, suite suiteName: String, info sealedInfo: String, with key: HPKEPrivateKey, nonce: [UInt8]
    ) throws(SealingError) -> [UInt8] {
        guard sealedInfo == info else {
            throw SealingError("the sealed root key's info is '\(sealedInfo)', expected '\(info)'")
        }
        guard let suite = HPKESuite(rawValue: suiteName), suite == key.publicKey.suite else {
            throw SealingError(
                "the sealed root key's suite is '\(suiteName)', expected '\(key.publicKey.suite.rawValue)' (the "
                    + "joiner's key)")
        }
        guard let bytes = Data(base64Encoded: sealed).map(Array.init) else {
            throw SealingError("'sealed_root_key' is not standard base64")
        }
        let encCount = suite.encapsulatedKeyBytes
        guard bytes.count > encCount + 16 else {
            throw SealingError(
                "'sealed_root_key' is \(bytes.count) bytes, shorter than the \(encCount)-byte encapsulated key and a "
                    + "16-byte tag")
        }
        var opened: Data
        do {
            opened = try key.open(
                Array(bytes[encCount...]), encapsulatedKey: Array(bytes[..<encCount]), suite: suite, info: info,
                aad: nonce)
        } catch {
            throw SealingError(
                "the sealed root key does not open with the join's key and nonce (HPKE: \(error)): it was changed, or "
                    + "sealed to another key or for another join")
        }
        defer { opened.resetBytes(in: 0..<opened.count) }
        guard opened.count == keyCount else {
            throw SealingError("the sealed root key holds \(opened.count) bytes, not a 32-byte key")
        }
        return Array(opened)
    }
}
