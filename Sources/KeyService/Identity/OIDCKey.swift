import Crypto
import CryptoExtras
import FoundationEssentials
import JWTKit
import SNP

/// The signing algorithms of `identity/oidc/key/:name`, Vault's set. vhsmd's default is ES256 (Vault's is RS256).
enum OIDCAlgorithm: String, Codable, Sendable, CaseIterable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"
    case eddsa = "EdDSA"

    static let `default` = OIDCAlgorithm.es256

    /// Fresh private key material: the raw scalar (ECDSA), the 32-byte seed (Ed25519) or the PKCS#1 DER of a
    /// 2048-bit key (RSA, Vault's size).
    func generateMaterial() throws(VaultError) -> [UInt8] {
        switch self {
        case .es256: return Array(P256.Signing.PrivateKey().rawRepresentation)
        case .es384: return Array(P384.Signing.PrivateKey().rawRepresentation)
        case .es512: return Array(P521.Signing.PrivateKey().rawRepresentation)
        case .eddsa: return Array(Curve25519.Signing.PrivateKey().rawRepresentation)
        case .rs256, .rs384, .rs512:
            do { return Array(try _RSA.Signing.PrivateKey(keySize: .bits2048).derRepresentation) } catch {
                throw .internalError("cannot generate a 2048-bit RSA key for an identity token key: \(error)")
            }
        }
    }
}

/// One generated key pair of a named key: its `kid` and its private material (base64 in the barrier's JSON).
struct OIDCKeyPair: Codable, Sendable {
    var kid: String
    var material: [UInt8]
    /// Unix seconds.
    var created: Int64

    enum CodingKeys: String, CodingKey { case kid, material, created }

    init(algorithm: OIDCAlgorithm, now: Int64) throws(VaultError) {
        kid = Hex.randomUUID(from: TransitRandom.bytes(16))
        material = try algorithm.generateMaterial()
        created = now
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kid = try container.decode(String.self, forKey: .kid)
        created = try container.decode(Int64.self, forKey: .created)
        let text = try container.decode(String.self, forKey: .material)
        do { material = try TransitBase64.decode(text) } catch {
            throw DecodingError.dataCorruptedError(
                forKey: .material, in: container, debugDescription: "the key material is not base64: \(error)")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kid, forKey: .kid)
        try container.encode(TransitBase64.encode(material), forKey: .material)
        try container.encode(created, forKey: .created)
    }

    /// Overwrites the private material this copy owns.
    mutating func zeroize() { material.zeroize() }

    /// A jwt-kit key collection that signs with this pair under its `kid`.
    func signer(_ algorithm: OIDCAlgorithm) async throws(VaultError) -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        let kid = JWKIdentifier(string: kid)
        // Claims as JSON without escaped slashes (an issuer URL reads as it is).
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let serializer = DefaultJWTSerializer(jsonEncoder: encoder)
        do {
            switch algorithm {
            case .es256:
                await keys.add(
                    ecdsa: try ES256PrivateKey(backing: P256.Signing.PrivateKey(rawRepresentation: material)), kid: kid,
                    serializer: serializer)
            case .es384:
                await keys.add(
                    ecdsa: try ES384PrivateKey(backing: P384.Signing.PrivateKey(rawRepresentation: material)), kid: kid,
                    serializer: serializer)
            case .es512:
                await keys.add(
                    ecdsa: try ES512PrivateKey(backing: P521.Signing.PrivateKey(rawRepresentation: material)), kid: kid,
                    serializer: serializer)
            case .eddsa:
                await keys.add(
                    eddsa: EdDSA.PrivateKey(backing: try Curve25519.Signing.PrivateKey(rawRepresentation: material)),
                    kid: kid, serializer: serializer)
            case .rs256, .rs384, .rs512:
                let digest: DigestAlgorithm =
                    algorithm == .rs256 ? .sha256 : algorithm == .rs384 ? .sha384 : .sha512
                await keys.add(
                    rsa: try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(derRepresentation: material)),
                    digestAlgorithm: digest, kid: kid, serializer: serializer)
            }
        } catch {
            throw .internalError(
                "the stored \(algorithm.rawValue) identity token key \(self.kid) does not load: \(error)")
        }
        return keys
    }

    /// The public half as a JWK (jwt-kit's), with `kid` and `alg`.
    func publicJWK(_ algorithm: OIDCAlgorithm) throws(VaultError) -> JWK {
        let kid = JWKIdentifier(string: kid)
        do {
            switch algorithm {
            case .es256:
                return try Self.ec(
                    ES256PrivateKey(backing: P256.Signing.PrivateKey(rawRepresentation: material)).parameters, .es256,
                    kid, .p256)
            case .es384:
                return try Self.ec(
                    ES384PrivateKey(backing: P384.Signing.PrivateKey(rawRepresentation: material)).parameters, .es384,
                    kid, .p384)
            case .es512:
                return try Self.ec(
                    ES512PrivateKey(backing: P521.Signing.PrivateKey(rawRepresentation: material)).parameters, .es512,
                    kid, .p521)
            case .eddsa:
                let key = try Curve25519.Signing.PrivateKey(rawRepresentation: material)
                return JWK.octetKeyPair(
                    .eddsa, identifier: kid, x: TransitBase64.encodeRawURL(key.publicKey.rawRepresentation), y: nil,
                    curve: .ed25519)
            case .rs256, .rs384, .rs512:
                let key = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(derRepresentation: material))
                let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
                let alg: JWK.Algorithm = algorithm == .rs256 ? .rs256 : algorithm == .rs384 ? .rs384 : .rs512
                return JWK.rsa(
                    alg, identifier: kid, modulus: TransitBase64.encodeRawURL(modulus),
                    exponent: TransitBase64.encodeRawURL(exponent))
            }
        } catch let error as VaultError {
            throw error
        } catch {
            throw .internalError(
                "the stored \(algorithm.rawValue) identity token key \(self.kid) does not load: \(error)")
        }
    }

    private static func ec(
        _ parameters: ECDSAParameters?, _ algorithm: JWK.Algorithm, _ kid: JWKIdentifier, _ curve: ECDSACurve
    ) throws(VaultError) -> JWK {
        guard let parameters else { throw .internalError("an ECDSA identity token key has no public point") }
        return JWK.ecdsa(algorithm, identifier: kid, x: parameters.x, y: parameters.y, curve: curve)
    }
}

/// A public key rotated out of signing: published in the JWKS until `expireAt` (Unix seconds), then pruned.
struct OIDCRetiredKey: Codable, Sendable {
    var kid: String
    var jwk: JWK
    var expireAt: Int64
}

/// `identity/oidc/key/:name` as kept in the barrier (`identity/oidc/key/<name>`).
///
/// Like Vault's named key it holds the key that signs now and the next one, generated ahead and already published
/// in the JWKS, so that a relying party that cached the JWKS before a rotation still knows the key that signs after
/// it. A rotation retires the signing key (public half kept for `verification_ttl`), promotes the next one and
/// generates a new next one.
struct OIDCNamedKey: Codable, Sendable {
    var algorithm: OIDCAlgorithm = .default
    /// Seconds between automatic rotations (Vault's default 24 h, at least a minute).
    var rotationPeriod: Int64 = 86400
    /// Seconds a rotated-out public key stays in the JWKS (Vault's default 24 h, at most 10 rotation periods).
    var verificationTTL: Int64 = 86400
    /// Client IDs of the roles that may sign with this key; `*` allows every role; empty allows none (Vault).
    var allowedClientIDs: [String] = []
    /// Unix seconds of the next automatic rotation.
    var nextRotation: Int64 = 0
    var current: OIDCKeyPair?
    var next: OIDCKeyPair?
    var retired: [OIDCRetiredKey] = []

    enum CodingKeys: String, CodingKey {
        case algorithm, current, next, retired
        case rotationPeriod = "rotation_period"
        case verificationTTL = "verification_ttl"
        case allowedClientIDs = "allowed_client_ids"
        case nextRotation = "next_rotation"
    }

    static let fields: Set<String> = ["algorithm", "rotation_period", "verification_ttl", "allowed_client_ids"]

    /// `identity/oidc/key/:name` read: no key material, as in Vault.
    var answer: [String: JSONValue] {
        [
            "algorithm": .string(algorithm.rawValue), "rotation_period": .int(rotationPeriod),
            "verification_ttl": .int(verificationTTL),
            "allowed_client_ids": .array(allowedClientIDs.map(JSONValue.string)),
        ]
    }

    /// Does the key let a role with `clientID` sign?
    func allows(clientID: String) -> Bool { allowedClientIDs.contains("*") || allowedClientIDs.contains(clientID) }

    /// Applies a key write (create when `current` is nil): every field checked before anything changes. A new
    /// algorithm (or a new key) generates a signing and a next key pair; the old pairs are retired.
    mutating func apply(_ body: JSONValue, now: Int64) throws(VaultError) {
        try SevSNPAuthConfig.refuseUnknown(body, Self.fields, what: "an identity token key")
        var next = self
        if let period = try body.duration("rotation_period") { next.rotationPeriod = period }
        guard next.rotationPeriod >= 60 else { throw .badRequest("rotation_period must be at least one minute") }
        if let ttl = try body.duration("verification_ttl") { next.verificationTTL = ttl }
        guard next.verificationTTL >= 0 else { throw .badRequest("verification_ttl cannot be negative") }
        guard next.verificationTTL <= 10 * next.rotationPeriod else {
            throw .badRequest("verification_ttl cannot be longer than 10x rotation_period")
        }
        if let ids = try TokenBackend.stringList(body, "allowed_client_ids") { next.allowedClientIDs = ids }
        if let name = try body.string("algorithm") {
            guard let algorithm = OIDCAlgorithm(rawValue: name) else {
                throw .badRequest(
                    "unknown signing algorithm \"\(name)\": use one of "
                        + OIDCAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))
            }
            next.algorithm = algorithm
        }
        let rotation = now + next.rotationPeriod
        if next.nextRotation == 0 || rotation < next.nextRotation { next.nextRotation = rotation }
        if next.current == nil || next.algorithm != algorithm {
            if var old = next.current {
                next.retired.append(
                    OIDCRetiredKey(kid: old.kid, jwk: try old.publicJWK(algorithm), expireAt: now + verificationTTL))
                old.zeroize()
            }
            next.current = try OIDCKeyPair(algorithm: next.algorithm, now: now)
            next.next = try OIDCKeyPair(algorithm: next.algorithm, now: now)
        }
        self = next
    }

    /// Rotates: the signing key is retired for `verificationTTL` (or the override), the next key signs, a new next
    /// key is generated.
    mutating func rotate(now: Int64, verificationTTL override: Int64? = nil) throws(VaultError) {
        if var old = current {
            retired.append(
                OIDCRetiredKey(
                    kid: old.kid, jwk: try old.publicJWK(algorithm), expireAt: now + (override ?? verificationTTL)))
            old.zeroize()
        }
        if let next { current = next } else { current = try OIDCKeyPair(algorithm: algorithm, now: now) }
        next = try OIDCKeyPair(algorithm: algorithm, now: now)
        nextRotation = now + rotationPeriod
    }

    /// Drops the retired keys whose verification time is over; true when one was dropped.
    mutating func prune(now: Int64) -> Bool {
        let before = retired.count
        retired.removeAll { $0.expireAt <= now }
        return retired.count != before
    }

    /// The public keys the JWKS publishes for this key: the signing key, the next key and the retired ones not yet
    /// expired.
    func publishedJWKs(now: Int64) throws(VaultError) -> [JWK] {
        var keys: [JWK] = []
        if let current { keys.append(try current.publicJWK(algorithm)) }
        if let next { keys.append(try next.publicJWK(algorithm)) }
        keys += retired.filter { $0.expireAt > now }.map(\.jwk)
        return keys
    }

    /// The earliest instant (Unix seconds) at which the published set changes by itself: the next rotation or the
    /// first retired key's expiry.
    var nextChange: Int64 { retired.map(\.expireAt).reduce(nextRotation, min) }

    /// Overwrites the private material of this copy.
    mutating func zeroize() {
        current?.zeroize()
        next?.zeroize()
    }
}

/// `identity/oidc/role/:name` as kept in the barrier.
struct OIDCRole: Codable, Sendable {
    var key = ""
    /// Seconds an identity token is valid (Vault's default 24 h).
    var ttl: Int64 = 86400
    /// The token's `aud`: generated at creation (26 base62 characters, as Vault) unless given.
    var clientID = ""

    enum CodingKeys: String, CodingKey {
        case key, ttl
        case clientID = "client_id"
    }

    static let fields: Set<String> = ["key", "ttl", "template", "client_id"]

    var answer: [String: JSONValue] {
        ["key": .string(key), "ttl": .int(ttl), "client_id": .string(clientID), "template": .string("")]
    }

    /// A fresh client ID: 26 characters of [0-9A-Za-z].
    static func newClientID() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return String((0..<26).map { _ in alphabet.randomElement(using: &generator)! })
    }
}
