import CryptoExtras

/// BYOK: `keys/:name/import` and `keys/:name/import_version` with a wrapped private key.
extension TransitKey {
    /// The body of `keys/:name/import` other than `ciphertext` and `hash_function`.
    struct ImportOptions: Sendable, Equatable {
        var type: TransitKeyType = .aes256GCM96
        var derived = false
        var exportable = false
        var allowPlaintextBackup = false
        var autoRotatePeriod = 0
        /// `allow_rotation`: whether the server may rotate the key later.
        var allowRotation = false
    }

    /// Creates an imported key from a BYOK blob (base64 `ciphertext`). Whether the name is free is the
    /// caller's check; OpenBao answers an import over an existing key with an error.
    static func importKey(
        name: String, ciphertext: String, hashFunction: String = "SHA256", wrappingKey: TransitWrappingKey,
        options: ImportOptions, now: Int64 = TransitTime.now()
    ) throws(TransitError) -> TransitKey {
        var key = try unversioned(
            name: name,
            options: Options(
                type: options.type, derived: options.derived, exportable: options.exportable,
                allowPlaintextBackup: options.allowPlaintextBackup, autoRotatePeriod: options.autoRotatePeriod))
        key.config.importedKey = true
        key.config.allowImportedKeyRotation = options.allowRotation
        try key.importVersion(ciphertext: ciphertext, hashFunction: hashFunction, wrappingKey: wrappingKey, now: now)
        return key
    }

    /// `import_version`: adds the next version from a BYOK blob. Only for imported keys, as in Vault.
    mutating func importVersion(
        ciphertext: String, hashFunction: String = "SHA256", wrappingKey: TransitWrappingKey,
        now: Int64 = TransitTime.now()
    ) throws(TransitError) {
        guard config.importedKey else {
            throw .badRequest("the import_version endpoint can only be used with an imported key")
        }
        if config.convergentEncryption {
            throw .badRequest("import_version cannot be used on keys with convergent encryption enabled")
        }
        let blob: [UInt8]
        do { blob = try TransitBase64.decode(ciphertext) } catch {
            throw .badRequest("error decoding ciphertext: \(error.message)")
        }
        let target = try wrappingKey.unwrap(blob, hashFunction: hashFunction)
        let material = try Self.storedMaterial(type, imported: target)
        if type == .hmac { config.keySize = material.count }
        try addVersion(material: material, now: now)
    }

    /// Turns an unwrapped target key into the stored form for `type`, with Vault's size checks.
    static func storedMaterial(_ type: TransitKeyType, imported key: [UInt8]) throws(TransitError) -> [UInt8] {
        switch type {
        case .aes128GCM96, .aes256GCM96, .chacha20Poly1305, .hmac:
            let valid = type == .hmac ? TransitKey.hmacKeySizes.contains(key.count) : key.count == type.aeadKeyByteCount
            guard valid else {
                throw .badRequest("invalid key size \(key.count) bytes for key type \(type.rawValue)")
            }
            return key
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            return try ECDSAKey.rawFromPKCS8(type, der: key)
        case .ed25519:
            guard let parsed = try? Curve25519.Signing.PrivateKey(derRepresentation: key) else {
                throw .badRequest("error parsing asymmetric key: not an Ed25519 PKCS#8 private key")
            }
            return Ed25519Material.expand(seed: Array(parsed.rawRepresentation))
        case .rsa2048, .rsa3072, .rsa4096:
            let rsa = try RSAKey(der: key)
            guard rsa.bitCount == type.rsaBits else {
                throw .badRequest("invalid key size: expected \(type.rsaBits / 8) bytes, got \(rsa.byteCount) bytes")
            }
            return rsa.pkcs1
        }
    }
}
