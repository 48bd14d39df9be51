import Crypto

/// One ECDSA private key on P-256, P-384 or P-521, stored as its raw big-endian scalar (32, 48 or 66 bytes).
///
/// swift-crypto has a type per curve; this enum is the one place that switches over them.
enum ECDSAKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case p521(P521.Signing.PrivateKey)

    /// A fresh key's raw scalar.
    static func generate(_ type: TransitKeyType) -> [UInt8] {
        switch type {
        case .ecdsaP384: Array(P384.Signing.PrivateKey().rawRepresentation)
        case .ecdsaP521: Array(P521.Signing.PrivateKey().rawRepresentation)
        default: Array(P256.Signing.PrivateKey().rawRepresentation)
        }
    }

    init(_ type: TransitKeyType, raw: [UInt8]) throws(TransitError) {
        do {
            switch type {
            case .ecdsaP256: self = .p256(try P256.Signing.PrivateKey(rawRepresentation: raw))
            case .ecdsaP384: self = .p384(try P384.Signing.PrivateKey(rawRepresentation: raw))
            case .ecdsaP521: self = .p521(try P521.Signing.PrivateKey(rawRepresentation: raw))
            default: throw TransitError.internalError("key type \(type.rawValue) is not an ECDSA key")
            }
        } catch let error as TransitError {
            throw error
        } catch {
            throw .internalError("stored ECDSA key material is invalid: \(error)")
        }
    }

    /// Parses a PKCS#8 `PrivateKeyInfo` (the BYOK import encoding) and returns the raw scalar.
    static func rawFromPKCS8(_ type: TransitKeyType, der: [UInt8]) throws(TransitError) -> [UInt8] {
        do {
            switch type {
            case .ecdsaP256: return Array(try P256.Signing.PrivateKey(derRepresentation: der).rawRepresentation)
            case .ecdsaP384: return Array(try P384.Signing.PrivateKey(derRepresentation: der).rawRepresentation)
            case .ecdsaP521: return Array(try P521.Signing.PrivateKey(derRepresentation: der).rawRepresentation)
            default: break
            }
        } catch {
            throw .badRequest("error parsing asymmetric key: \(error)")
        }
        throw .badRequest("invalid key type: expected \(type.rawValue)")
    }

    /// The public key as Vault shows it: PEM `PUBLIC KEY` (SubjectPublicKeyInfo), newline-terminated.
    var publicKeyPEM: String {
        let pem: String
        switch self {
        case .p256(let key): pem = key.publicKey.pemRepresentation
        case .p384(let key): pem = key.publicKey.pemRepresentation
        case .p521(let key): pem = key.publicKey.pemRepresentation
        }
        return pem.hasSuffix("\n") ? pem : pem + "\n"
    }

    /// PKCS#8 `PrivateKeyInfo` TransitDER.
    var pkcs8: [UInt8] {
        switch self {
        case .p256(let key): Array(key.derRepresentation)
        case .p384(let key): Array(key.derRepresentation)
        case .p521(let key): Array(key.derRepresentation)
        }
    }

    /// SEC 1 `ECPrivateKey` in PEM (`EC PRIVATE KEY`), the form Vault's export returns (Go
    /// `x509.MarshalECPrivateKey`: version 1, scalar, curve OID, public point).
    var sec1PEM: String {
        let (raw, point, curve): ([UInt8], [UInt8], [UInt8])
        switch self {
        case .p256(let key):
            (raw, point, curve) = (
                Array(key.rawRepresentation), Array(key.publicKey.x963Representation), TransitDER.oidP256
            )
        case .p384(let key):
            (raw, point, curve) = (
                Array(key.rawRepresentation), Array(key.publicKey.x963Representation), TransitDER.oidP384
            )
        case .p521(let key):
            (raw, point, curve) = (
                Array(key.rawRepresentation), Array(key.publicKey.x963Representation), TransitDER.oidP521
            )
        }
        let body =
            TransitDER.integer([1]) + TransitDER.octetString(raw) + TransitDER.tagged(0xA0, curve)
            + TransitDER.tagged(0xA1, TransitDER.bitString(point))
        return TransitDER.pem(TransitDER.sequence(body), label: "EC PRIVATE KEY")
    }

    /// Signs a digest (any length; the curve truncates it as ECDSA specifies). Returns the fixed-width `r ‖ s`.
    func sign(digest: [UInt8]) throws(TransitError) -> [UInt8] {
        let value = PrehashedDigest(bytes: digest)
        do {
            switch self {
            case .p256(let key): return Array(try key.signature(for: value).rawRepresentation)
            case .p384(let key): return Array(try key.signature(for: value).rawRepresentation)
            case .p521(let key): return Array(try key.signature(for: value).rawRepresentation)
            }
        } catch {
            throw .internalError("ECDSA signing failed: \(error)")
        }
    }

    /// Checks a fixed-width `r ‖ s` signature over a digest. A value of the wrong width is simply invalid.
    func isValid(rawSignature: [UInt8], digest: [UInt8]) -> Bool {
        let value = PrehashedDigest(bytes: digest)
        switch self {
        case .p256(let key):
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: rawSignature) else {
                return false
            }
            return key.publicKey.isValidSignature(signature, for: value)
        case .p384(let key):
            guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: rawSignature) else {
                return false
            }
            return key.publicKey.isValidSignature(signature, for: value)
        case .p521(let key):
            guard let signature = try? P521.Signing.ECDSASignature(rawRepresentation: rawSignature) else {
                return false
            }
            return key.publicKey.isValidSignature(signature, for: value)
        }
    }
}

/// A digest computed elsewhere (Vault's `prehashed: true`, or a hash swift-crypto has no type for), handed to
/// ECDSA as is. swift-crypto's ECDSA reads the bytes through `withUnsafeBytes`, never `byteCount`.
struct PrehashedDigest: Digest {
    static var byteCount: Int { 64 }
    var bytes: [UInt8]

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    func makeIterator() -> IndexingIterator<[UInt8]> { bytes.makeIterator() }

    var description: String { "PrehashedDigest(\(bytes.count) bytes)" }
}
