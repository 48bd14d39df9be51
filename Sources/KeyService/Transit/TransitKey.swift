/// A named transit key: its type, every retained version's material, and the policy settings Vault keeps
/// next to them. Value type and `Codable`; the HTTP layer loads it, calls one operation, stores it back.
struct TransitKey: Codable, Sendable, Equatable {
    var name: String
    var type: TransitKeyType
    /// Retained versions in ascending order (everything from `minAvailableVersion`, or 1, to `latestVersion`).
    var versions: [TransitKeyVersion]
    var config: Config

    /// The per-key settings Vault reports on read and changes through `keys/:name/config` and `trim`.
    struct Config: Codable, Sendable, Equatable {
        var derived = false
        /// `hkdf_sha256` when derived; absent otherwise.
        var kdf: String?
        var convergentEncryption = false
        var exportable = false
        var allowPlaintextBackup = false
        var deletionAllowed = false
        var minDecryptionVersion = 1
        var minEncryptionVersion = 0
        var minAvailableVersion = 0
        var latestVersion = 0
        /// Seconds; 0 disables automatic rotation.
        var autoRotatePeriod = 0
        var importedKey = false
        var allowImportedKeyRotation = false
        /// HMAC keys only: bytes of key material (32…512).
        var keySize: Int?

        enum CodingKeys: String, CodingKey {
            case derived, kdf, exportable
            case convergentEncryption = "convergent_encryption"
            case allowPlaintextBackup = "allow_plaintext_backup"
            case deletionAllowed = "deletion_allowed"
            case minDecryptionVersion = "min_decryption_version"
            case minEncryptionVersion = "min_encryption_version"
            case minAvailableVersion = "min_available_version"
            case latestVersion = "latest_version"
            case autoRotatePeriod = "auto_rotate_period"
            case importedKey = "imported_key"
            case allowImportedKeyRotation = "allow_imported_key_rotation"
            case keySize = "key_size"
        }
    }

    /// The body of `POST keys/:name`.
    struct Options: Sendable, Equatable {
        var type: TransitKeyType = .aes256GCM96
        var derived = false
        var convergentEncryption = false
        var exportable = false
        var allowPlaintextBackup = false
        var autoRotatePeriod = 0
        /// HMAC only; required for `hmac`, refused for every other type.
        var keySize: Int?
    }

    static let hmacKeySizes = 32...512

    /// Creates a key with one fresh version, applying Vault's checks and error texts in Vault's order.
    static func create(
        name: String, options: Options, now: Int64 = TransitTime.now()
    ) throws(TransitError) -> TransitKey {
        var key = try unversioned(name: name, options: options)
        try key.addVersion(
            material: TransitKeyVersion.generateMaterial(key.type, keySize: key.config.keySize), now: now)
        return key
    }

    /// The checks of `create` without any key material, for import.
    static func unversioned(name: String, options: Options) throws(TransitError) -> TransitKey {
        if options.autoRotatePeriod != 0, options.autoRotatePeriod < 3600 { throw .autoRotatePeriodTooShort }
        if !options.derived, options.convergentEncryption { throw .convergentNeedsDerived }
        if let size = options.keySize, size != 0 {
            guard options.type == .hmac else {
                throw .badRequest("key_size is not valid for algorithm \(options.type.rawValue)")
            }
            guard hmacKeySizes.contains(size) else { throw .badRequest("invalid key_size \(size)") }
        }
        switch options.type {
        case .ed25519 where options.convergentEncryption:
            throw .badRequest("convergent encryption not supported for keys of type ed25519")
        case _ where !options.type.supportsDerivation && (options.derived || options.convergentEncryption):
            throw .badRequest(
                "key derivation and convergent encryption not supported for keys of type \(options.type.rawValue)")
        default: break
        }
        var config = Config()
        config.derived = options.derived
        config.kdf = options.derived ? "hkdf_sha256" : nil
        config.convergentEncryption = options.convergentEncryption
        config.exportable = options.exportable
        config.allowPlaintextBackup = options.allowPlaintextBackup
        config.autoRotatePeriod = options.autoRotatePeriod
        if options.type == .hmac {
            config.keySize = options.keySize == 0 ? nil : options.keySize
        }
        return TransitKey(name: name, type: options.type, versions: [], config: config)
    }

    /// `POST keys/:name/rotate`: appends version `latest + 1`. Imported keys rotate only when allowed.
    mutating func rotate(now: Int64 = TransitTime.now()) throws(TransitError) {
        if config.importedKey, !config.allowImportedKeyRotation {
            throw .badRequest("imported key \(name) does not allow rotation within Vault")
        }
        try addVersion(material: TransitKeyVersion.generateMaterial(type, keySize: config.keySize), now: now)
        config.importedKey = false
    }

    /// Appends a version holding `material`, with a fresh 32-byte HMAC key (the material itself for `hmac`).
    mutating func addVersion(material: [UInt8], now: Int64 = TransitTime.now()) throws(TransitError) {
        let next = config.latestVersion + 1
        versions.append(
            TransitKeyVersion(
                version: next, key: material,
                hmacKey: type == .hmac ? material : TransitRandom.bytes(32), creationTime: now))
        config.latestVersion = next
        if config.minDecryptionVersion == 0 { config.minDecryptionVersion = 1 }
    }

    /// The stored version `number`, or Vault's `no such key version`.
    func version(_ number: Int) throws(TransitError) -> TransitKeyVersion {
        guard let found = versions.first(where: { $0.version == number }) else { throw .noSuchVersion }
        return found
    }

    /// Versions Vault lists on read: those at or above `min_decryption_version`.
    var listedVersions: [TransitKeyVersion] { versions.filter { $0.version >= config.minDecryptionVersion } }

    /// Whether automatic rotation is due at `now` (Unix nanoseconds): the newest version is older than the period.
    func needsAutoRotation(now: Int64 = TransitTime.now()) -> Bool {
        guard config.autoRotatePeriod > 0, let newest = versions.last else { return false }
        return now - newest.creationTime >= Int64(config.autoRotatePeriod) * 1_000_000_000
    }
}
