import Crypto
import Synchronization

/// One version of a transit key.
///
/// `key` holds, by type: the raw key (AES, ChaCha20, HMAC); for Ed25519 Go's 64-byte private key
/// (seed ‖ public key, which is also the IKM Vault derives from); for ECDSA the raw private scalar
/// (32/48/66 bytes); for RSA the PKCS#1 `RSAPrivateKey` TransitDER. Byte fields are base64 in JSON.
struct TransitKeyVersion: Codable, Sendable, Equatable {
    var version: Int
    let key: [UInt8]
    /// The per-version key behind `/hmac` and convergent encryption.
    var hmacKey: [UInt8]
    /// Unix time in nanoseconds.
    var creationTime: Int64
    /// The parsed ECDSA key, built on first use and shared by the copies of this version (`key` never changes).
    /// Parsing a raw scalar computes its public point, which costs about as much as the signature itself.
    private let ecdsaCache = ECDSAKeyCache()

    enum CodingKeys: String, CodingKey {
        case version, key
        case hmacKey = "hmac_key"
        case creationTime = "creation_time"
    }

    init(version: Int, key: [UInt8], hmacKey: [UInt8], creationTime: Int64) {
        self.version = version
        self.key = key
        self.hmacKey = hmacKey
        self.creationTime = creationTime
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        creationTime = try container.decode(Int64.self, forKey: .creationTime)
        do {
            key = try TransitBase64.decode(try container.decode(String.self, forKey: .key))
            hmacKey = try TransitBase64.decode(try container.decode(String.self, forKey: .hmacKey))
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .key, in: container, debugDescription: "\(error)")
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.version == rhs.version && lhs.key == rhs.key && lhs.hmacKey == rhs.hmacKey
            && lhs.creationTime == rhs.creationTime
    }

    /// This version's ECDSA private key (`type` is the transit key's type).
    func ecdsaKey(_ type: TransitKeyType) throws(TransitError) -> ECDSAKey {
        try ecdsaCache.key(type, raw: key)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(TransitBase64.encode(key), forKey: .key)
        try container.encode(TransitBase64.encode(hmacKey), forKey: .hmacKey)
        try container.encode(creationTime, forKey: .creationTime)
    }

    /// Fresh material for a new version of a `type` key.
    static func generateMaterial(_ type: TransitKeyType, keySize: Int?) throws(TransitError) -> [UInt8] {
        switch type {
        case .aes128GCM96, .aes256GCM96, .chacha20Poly1305:
            return TransitRandom.bytes(type.aeadKeyByteCount)
        case .hmac:
            guard let size = keySize, TransitKey.hmacKeySizes.contains(size) else {
                throw .badRequest("invalid key size for HMAC key, must be between 32 and 512 bytes")
            }
            return TransitRandom.bytes(size)
        case .ed25519:
            return Ed25519Material.expand(seed: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            return ECDSAKey.generate(type)
        case .rsa2048, .rsa3072, .rsa4096:
            return try RSAKey.generate(bits: type.rsaBits)
        }
    }
}

/// Go's 64-byte Ed25519 private key form (seed ‖ public key), which Vault stores, exports and derives from.
enum Ed25519Material {
    /// seed ‖ public key for a 32-byte seed.
    static func expand(seed: [UInt8]) -> [UInt8] {
        // A 32-byte seed is always a valid Ed25519 private key.
        let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        return seed + Array(key.publicKey.rawRepresentation)
    }

    /// The signing key from stored material (the first 32 bytes are the seed).
    static func privateKey(_ material: [UInt8]) throws(TransitError) -> Curve25519.Signing.PrivateKey {
        guard material.count == 64 || material.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: Array(material.prefix(32)))
        else { throw .internalError("stored Ed25519 key material is invalid") }
        return key
    }
}

/// A parsed ECDSA key for one key version, filled on first use.
final class ECDSAKeyCache: Sendable {
    private let parsed = Mutex<ECDSAKey?>(nil)

    func key(_ type: TransitKeyType, raw: [UInt8]) throws(TransitError) -> ECDSAKey {
        if let key = parsed.withLock({ $0 }) { return key }
        let key = try ECDSAKey(type, raw: raw)
        parsed.withLock { $0 = key }
        return key
    }
}
