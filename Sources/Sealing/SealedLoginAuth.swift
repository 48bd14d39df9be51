public import FoundationEssentials

/// The `auth` block of an `auth/sev-snp/login` answer sealed to the workload's ephemeral key
/// (`"wrap_to_public_key": true`), so that whoever terminates TLS between the workload and vhsmd never sees the
/// token.
///
/// The answer's `data` is `{"sealed_auth": base64(enc ‖ ciphertext), "suite": "<HPKESuite raw value>",
/// "info": "vhsm/login/auth/v1"}`: HPKE base mode (RFC 9180) to the login's `public_key` with the suite of its curve
/// (P-384: DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM; X25519: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// ChaCha20-Poly1305), info the ASCII bytes `vhsm/login/auth/v1`, AAD the login's 32 nonce bytes; the plaintext is
/// the UTF-8 JSON of the `auth` object as an unwrapped answer carries it. `enc` is the suite's encapsulated key
/// (97 bytes for P-384, 32 for X25519); the ciphertext carries the AEAD's 16-byte tag.
public enum SealedLoginAuth {
    public static let info = "vhsm/login/auth/v1"
    /// The AAD: the login's nonce, 32 bytes.
    public static let nonceCount = 32

    /// `plaintext` (the auth JSON) sealed to `key` for the login of `nonce`: base64 of enc ‖ ciphertext.
    public static func seal(
        _ plaintext: [UInt8], to key: HPKEPublicKey, nonce: [UInt8]
    ) throws(SealingError) -> String {
        guard nonce.count == nonceCount else {
            throw SealingError("the login nonce is \(nonce.count) bytes, expected \(nonceCount)")
        }
        do {
            let (enc, ciphertext) = try key.seal(plaintext, info: info, aad: nonce)
            return Data(enc + ciphertext).base64EncodedString()
        } catch {
            throw SealingError(
                "cannot seal the login's auth block to its public_key (HPKE \(key.suite.rawValue)): \(error)")
        }
    }

    /// Opens `sealedAuth` (base64 of enc ‖ ciphertext) of `suite` with `key`, for the login of `nonce`: the auth
    /// JSON's bytes. The caller zeroes them.
    public static func open(
        _ sealedAuth: String, suite suiteName: String, info sealedInfo: String, with key: HPKEPrivateKey,
        nonce: [UInt8]
    ) throws(SealingError) -> Data {
        guard sealedInfo == info else {
            throw SealingError("the sealed auth block's info is '\(sealedInfo)', expected '\(info)'")
        }
        guard let suite = HPKESuite(rawValue: suiteName) else {
            throw SealingError(
                "the sealed auth block's suite '\(suiteName)' is not one of "
                    + HPKESuite.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard suite == key.publicKey.suite else {
            throw SealingError(
                "the auth block was sealed with \(suite.rawValue) but the login's key is for "
                    + "\(key.publicKey.suite.rawValue)")
        }
        guard let bytes = Data(base64Encoded: sealedAuth).map(Array.init) else {
            throw SealingError("'sealed_auth' is not standard base64")
        }
        let encCount = suite.encapsulatedKeyBytes
        guard bytes.count > encCount + 16 else {
            throw SealingError(
                "'sealed_auth' is \(bytes.count) bytes, shorter than the \(encCount)-byte encapsulated key and a "
                    + "16-byte tag")
        }
        do {
            return try key.open(
                Array(bytes[encCount...]), encapsulatedKey: Array(bytes[..<encCount]), suite: suite, info: info,
                aad: nonce)
        } catch {
            throw SealingError(
                "the sealed auth block does not open with the login's key and nonce (HPKE: \(error)): it was changed, "
                    + "or sealed to another key or for another login")
        }
    }
}
