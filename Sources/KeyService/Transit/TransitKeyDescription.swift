import Crypto

/// The `data` object of `GET keys/:name` (and of create, config, rotate and trim in OpenBao), with Vault's
/// field names and JSON types. Optional fields are left out of the JSON when nil, as Vault leaves them out.
struct TransitKeyDescription: Encodable, Sendable, Equatable {
    var name: String
    var type: String
    var derived: Bool
    var deletionAllowed: Bool
    var exportable: Bool
    var allowPlaintextBackup: Bool
    var autoRotatePeriod: Int
    var latestVersion: Int
    var minAvailableVersion: Int
    var minDecryptionVersion: Int
    var minEncryptionVersion: Int
    var supportsEncryption: Bool
    var supportsDecryption: Bool
    var supportsSigning: Bool
    var supportsDerivation: Bool
    var importedKey: Bool
    var softDeleted = false
    var importedKeyAllowRotation: Bool?
    var keySize: Int?
    var kdf: String?
    var convergentEncryption: Bool?
    var convergentEncryptionVersion: Int?
    /// Absent for `hmac` keys.
    var keys: Keys?

    /// Symmetric keys map version → Unix seconds; asymmetric keys map version → public key details.
    enum Keys: Encodable, Sendable, Equatable {
        case symmetric([String: Int64])
        case asymmetric([String: PublicKey])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .symmetric(let map): try container.encode(map)
            case .asymmetric(let map): try container.encode(map)
            }
        }
    }

    struct PublicKey: Encodable, Sendable, Equatable {
        var name: String
        /// PEM SPKI for ECDSA and RSA, base64 of the 32 raw bytes for Ed25519 ("" for derived Ed25519 without context).
        var publicKey: String
        /// RFC 3339.
        var creationTime: String
        var certificateChain = ""

        enum CodingKeys: String, CodingKey {
            case name
            case publicKey = "public_key"
            case creationTime = "creation_time"
            case certificateChain = "certificate_chain"
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, type, derived, exportable, kdf, keys
        case deletionAllowed = "deletion_allowed"
        case allowPlaintextBackup = "allow_plaintext_backup"
        case autoRotatePeriod = "auto_rotate_period"
        case latestVersion = "latest_version"
        case minAvailableVersion = "min_available_version"
        case minDecryptionVersion = "min_decryption_version"
        case minEncryptionVersion = "min_encryption_version"
        case supportsEncryption = "supports_encryption"
        case supportsDecryption = "supports_decryption"
        case supportsSigning = "supports_signing"
        case supportsDerivation = "supports_derivation"
        case importedKey = "imported_key"
        case softDeleted = "soft_deleted"
        case importedKeyAllowRotation = "imported_key_allow_rotation"
        case keySize = "key_size"
        case convergentEncryption = "convergent_encryption"
        case convergentEncryptionVersion = "convergent_encryption_version"
    }
}

extension TransitKey {
    /// What `GET keys/:name` returns. `context` (base64-decoded) lets a derived Ed25519 key show the public
    /// key for that context, as Vault's read does.
    func readResponse(context: [UInt8]? = nil) throws(TransitError) -> TransitKeyDescription {
        var description = TransitKeyDescription(
            name: name, type: type.rawValue, derived: config.derived, deletionAllowed: config.deletionAllowed,
            exportable: config.exportable, allowPlaintextBackup: config.allowPlaintextBackup,
            autoRotatePeriod: config.autoRotatePeriod, latestVersion: config.latestVersion,
            minAvailableVersion: config.minAvailableVersion, minDecryptionVersion: config.minDecryptionVersion,
            minEncryptionVersion: config.minEncryptionVersion, supportsEncryption: type.supportsEncryption,
            supportsDecryption: type.supportsDecryption, supportsSigning: type.supportsSigning,
            supportsDerivation: type.supportsDerivation, importedKey: config.importedKey)
        if config.importedKey { description.importedKeyAllowRotation = config.allowImportedKeyRotation }
        if type == .hmac { description.keySize = config.keySize }
        if config.derived {
            description.kdf = config.kdf ?? "hkdf_sha256"
            description.convergentEncryption = config.convergentEncryption
            if config.convergentEncryption { description.convergentEncryptionVersion = -1 }
        }
        if type.isAEAD {
            var map: [String: Int64] = [:]
            for version in listedVersions {
                map[String(version.version)] = TransitTime.unixSeconds(version.creationTime)
            }
            description.keys = .symmetric(map)
        } else if type.isAsymmetric {
            var map: [String: TransitKeyDescription.PublicKey] = [:]
            for version in listedVersions {
                map[String(version.version)] = TransitKeyDescription.PublicKey(
                    name: type.publicKeyName, publicKey: try publicKey(of: version, context: context),
                    creationTime: TransitTime.rfc3339(version.creationTime))
            }
            description.keys = .asymmetric(map)
        }
        return description
    }

    /// The public key of one version as Vault formats it.
    func publicKey(of version: TransitKeyVersion, context: [UInt8]? = nil) throws(TransitError) -> String {
        switch type {
        case .ed25519:
            if config.derived {
                guard let context, !context.isEmpty else { return "" }
                return TransitBase64.encode(
                    try derivedEd25519(version: version, context: context).publicKey.rawRepresentation)
            }
            return TransitBase64.encode(version.key.suffix(32))
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            return try version.ecdsaKey(type).publicKeyPEM
        case .rsa2048, .rsa3072, .rsa4096:
            return try RSAKey(der: version.key).publicKeyPEM
        default:
            return ""
        }
    }
}
