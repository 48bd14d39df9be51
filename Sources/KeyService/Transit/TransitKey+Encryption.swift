import Crypto

/// `encrypt`, `decrypt`, `rewrap` and `datakey` for AES-GCM, ChaCha20-Poly1305 and RSA-OAEP keys.
///
/// Byte layout: `vault:v<N>:` + base64(nonce(12) ‖ ciphertext ‖ tag(16)) for the AEAD types, the bare
/// RSA-OAEP-SHA256 ciphertext for RSA. Derived keys use HKDF-SHA256(version key, no salt, info = context);
/// convergent keys (Vault's scheme 3) take the nonce from HMAC-SHA256 of the plaintext under a second derived key.
extension TransitKey {
    /// `{"ciphertext": …, "key_version": …}`.
    struct EncryptionResult: Encodable, Sendable, Equatable {
        var ciphertext: String
        var keyVersion: Int

        enum CodingKeys: String, CodingKey {
            case ciphertext
            case keyVersion = "key_version"
        }
    }

    /// Which `datakey/:kind/:name` was asked for.
    enum DataKeyKind: String, Sendable {
        case plaintext, wrapped

        init(pathWord: String) throws(TransitError) {
            guard let kind = DataKeyKind(rawValue: pathWord) else { throw .badRequest("Invalid path") }
            self = kind
        }
    }

    /// Encrypts with version `keyVersion` (0 = latest). All byte inputs are already base64-decoded.
    func encrypt(
        _ plaintext: [UInt8], context: [UInt8]? = nil, associatedData: [UInt8]? = nil, nonce: [UInt8]? = nil,
        keyVersion: Int = 0
    ) throws(TransitError) -> EncryptionResult {
        guard type.supportsEncryption else { throw .unsupported("message encryption", type) }
        let version: Int
        switch keyVersion {
        case 0: version = config.latestVersion
        case ..<0: throw .encryptionVersionNegative
        case (config.latestVersion + 1)...: throw .encryptionVersionTooHigh
        case ..<config.minEncryptionVersion: throw .encryptionVersionTooLow
        default: version = keyVersion
        }

        if type.isRSA {
            if let associatedData, !associatedData.isEmpty {
                throw .badRequest("'[0].associated_data' provided for non-AEAD cipher suite \(type.rawValue)")
            }
            let payload = try RSAKey(der: try self.version(version).key).encrypt(plaintext)
            return EncryptionResult(
                ciphertext: TransitCiphertext.encode(version: version, payload: payload), keyVersion: version)
        }

        if let nonce, !nonce.isEmpty { throw .nonceNotAllowed }
        let encryptionByteCount = type.aeadKeyByteCount
        let keyBytes = try symmetricKey(
            version: version, context: context,
            byteCount: encryptionByteCount + (config.convergentEncryption ? 32 : 0))
        let nonceBytes: [UInt8]
        if config.convergentEncryption {
            let mac = HMAC<SHA256>.authenticationCode(
                for: plaintext, using: SymmetricKey(data: Array(keyBytes[encryptionByteCount...])))
            nonceBytes = Array(Array(mac).prefix(12))
        } else {
            nonceBytes = TransitRandom.bytes(12)
        }
        let payload = try seal(
            plaintext,
            key: keyBytes.count == encryptionByteCount ? keyBytes : Array(keyBytes.prefix(encryptionByteCount)),
            nonce: nonceBytes, associatedData: associatedData ?? [])
        return EncryptionResult(
            ciphertext: TransitCiphertext.encode(version: version, payload: payload), keyVersion: version)
    }

    /// Decrypts a `vault:v<N>:…` ciphertext. `nonce` is accepted and ignored (it only mattered for legacy
    /// convergent keys).
    func decrypt(
        _ ciphertext: String, context: [UInt8]? = nil, associatedData: [UInt8]? = nil, nonce: [UInt8]? = nil
    ) throws(TransitError) -> [UInt8] {
        guard type.supportsDecryption else { throw .unsupported("message decryption", type) }
        let parsed = try TransitCiphertext(
            parsing: ciphertext, kind: .ciphertext, latestVersion: config.latestVersion,
            minDecryptionVersion: config.minDecryptionVersion)
        let payload = try parsed.ciphertextBytes()

        if type.isRSA {
            return try RSAKey(der: try version(parsed.version).key).decrypt(payload)
        }
        let key = try symmetricKey(version: parsed.version, context: context, byteCount: type.aeadKeyByteCount)
        guard payload.count >= 12 else { throw .badCiphertextLength }
        guard payload.count >= 12 + 16 else { throw .authenticationFailed }
        return try open(payload, key: key, associatedData: associatedData ?? [])
    }

    /// Decrypts with the ciphertext's version and encrypts again with `keyVersion` (0 = latest).
    func rewrap(
        _ ciphertext: String, context: [UInt8]? = nil, associatedData: [UInt8]? = nil, nonce: [UInt8]? = nil,
        keyVersion: Int = 0
    ) throws(TransitError) -> EncryptionResult {
        let plaintext = try decrypt(ciphertext, context: context, associatedData: associatedData, nonce: nonce)
        return try encrypt(
            plaintext, context: context, associatedData: associatedData, nonce: nonce, keyVersion: keyVersion)
    }

    /// `datakey`: a fresh random key of `bits` (128, 256 or 512), returned encrypted under this key, and in
    /// the clear only when the caller asked for `plaintext`.
    func dataKey(
        kind: DataKeyKind, bits: Int = 256, context: [UInt8]? = nil, associatedData: [UInt8]? = nil,
        nonce: [UInt8]? = nil, keyVersion: Int = 0
    ) throws(TransitError) -> (plaintext: [UInt8]?, result: EncryptionResult) {
        let size = bits == 0 ? 256 : bits
        guard [128, 256, 512].contains(size) else { throw .badRequest("invalid bits") }
        let material = TransitRandom.bytes(size / 8)
        let result = try encrypt(
            material, context: context, associatedData: associatedData, nonce: nonce, keyVersion: keyVersion)
        return (kind == .plaintext ? material : nil, result)
    }

    /// The version's key, or for derived keys the first `byteCount` bytes of HKDF-SHA256(key, info = context).
    func symmetricKey(version number: Int, context: [UInt8]?, byteCount: Int) throws(TransitError) -> [UInt8] {
        guard config.derived else { return try version(number).key }
        guard type.supportsDerivation else {
            throw .badRequest("derivation not supported for key type \(type.rawValue)")
        }
        guard number > 0, number <= config.latestVersion else { throw .badRequest("invalid key version") }
        guard let context, !context.isEmpty else { throw .missingContext }
        return Self.hkdf(try version(number).key, info: context, byteCount: byteCount)
    }

    /// The Ed25519 key Vault derives for `context`: seed = HKDF-SHA256(stored 64-byte key, info = context, 32).
    func derivedEd25519(
        version: TransitKeyVersion, context: [UInt8]
    ) throws(TransitError) -> Curve25519.Signing.PrivateKey {
        try Ed25519Material.privateKey(Self.hkdf(version.key, info: context, byteCount: 32))
    }

    static func hkdf(_ material: [UInt8], info: [UInt8], byteCount: Int) -> [UInt8] {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: material), info: info, outputByteCount: byteCount)
        return derived.withUnsafeBytes { Array($0) }
    }

    private func seal(
        _ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], associatedData: [UInt8]
    ) throws(TransitError)
        -> [UInt8]
    {
        do {
            let symmetric = SymmetricKey(data: key)
            if type == .chacha20Poly1305 {
                let box = try ChaChaPoly.seal(
                    plaintext, using: symmetric, nonce: try ChaChaPoly.Nonce(data: nonce),
                    authenticating: associatedData)
                return nonce + Array(box.ciphertext) + Array(box.tag)
            }
            let box = try AES.GCM.seal(
                plaintext, using: symmetric, nonce: try AES.GCM.Nonce(data: nonce), authenticating: associatedData)
            // nonce ‖ ciphertext ‖ tag; `combined` is that whenever the nonce is 12 bytes, as here.
            if let combined = box.combined { return Array(combined) }
            return nonce + Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .internalError("encryption failed: \(error)")
        }
    }

    private func open(_ payload: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(TransitError) -> [UInt8] {
        let nonce = Array(payload[0..<12])
        let body = Array(payload[12..<(payload.count - 16)])
        let tag = Array(payload[(payload.count - 16)...])
        do {
            let symmetric = SymmetricKey(data: key)
            if type == .chacha20Poly1305 {
                let box = try ChaChaPoly.SealedBox(nonce: try ChaChaPoly.Nonce(data: nonce), ciphertext: body, tag: tag)
                return Array(try ChaChaPoly.open(box, using: symmetric, authenticating: associatedData))
            }
            let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce), ciphertext: body, tag: tag)
            return Array(try AES.GCM.open(box, using: symmetric, authenticating: associatedData))
        } catch {
            throw .authenticationFailed
        }
    }
}
