import Crypto
import CryptoExtras

/// One RSA private key, stored as PKCS#1 `RSAPrivateKey` TransitDER.
///
/// Encryption uses swift-crypto's OAEP-SHA256. Signatures are padded here (`RSASignaturePadding`) and pushed
/// through the raw private operation that swift-crypto exposes as RSA blind signing (RFC 9474 `BlindSign`,
/// which is `m^d mod n` plus a self-check). That is what lets this engine sign PSS with Vault's maximal salt
/// and PKCS#1 v1.5 over any digest, and verify with salt auto-detection through `RSAPublicOperation`.
struct RSAKey {
    private let signingKey: _RSA.Signing.PrivateKey
    private let rawKey: _RSA.BlindSigning.PrivateKey<SHA384>
    private let publicOperation: RSAPublicOperation
    /// Modulus size in bits and bytes.
    let bitCount: Int
    var byteCount: Int { (bitCount + 7) / 8 }

    /// A fresh key's PKCS#1 TransitDER.
    static func generate(bits: Int) throws(TransitError) -> [UInt8] {
        do {
            return Array(try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits)).derRepresentation)
        } catch {
            throw .internalError("RSA key generation failed: \(error)")
        }
    }

    /// Parses PKCS#1 or PKCS#8 TransitDER.
    init(der: [UInt8]) throws(TransitError) {
        do {
            signingKey = try _RSA.Signing.PrivateKey(derRepresentation: der)
            rawKey = try _RSA.BlindSigning.PrivateKey(
                derRepresentation: der, parameters: .RSABSSA_SHA384_PSS_Deterministic)
            let primitives = try signingKey.publicKey.getKeyPrimitives()
            guard
                let operation = RSAPublicOperation(
                    modulus: Array(primitives.modulus), exponent: Array(primitives.publicExponent))
            else { throw TransitError.badRequest("RSA key has an invalid modulus") }
            publicOperation = operation
            bitCount = signingKey.keySizeInBits
        } catch let error as TransitError {
            throw error
        } catch {
            throw .badRequest("error parsing asymmetric key: \(error)")
        }
    }

    /// PKCS#1 DER, the stored form.
    var pkcs1: [UInt8] { Array(signingKey.derRepresentation) }

    /// PKCS#8 `PrivateKeyInfo` DER (the BYOK encoding).
    var pkcs8: [UInt8] { Array(signingKey.pkcs8DERRepresentation) }

    /// PEM `RSA PRIVATE KEY` (PKCS#1), Vault's export format.
    var pkcs1PEM: String { TransitDER.pem(pkcs1, label: "RSA PRIVATE KEY") }

    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo), Vault's read format.
    var publicKeyPEM: String { TransitDER.pem(Array(signingKey.publicKey.derRepresentation), label: "PUBLIC KEY") }

    /// RSA-OAEP with SHA-256 for both the hash and MGF1, empty label.
    func encrypt(_ plaintext: [UInt8]) throws(TransitError) -> [UInt8] {
        do {
            let publicKey = try _RSA.Encryption.PublicKey(derRepresentation: signingKey.publicKey.derRepresentation)
            return Array(try publicKey.encrypt(plaintext, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw .internalError("failed to RSA encrypt the plaintext: \(error)")
        }
    }

    /// The inverse of `encrypt`. OpenBao answers 500 for a failed RSA decryption; this is the client's ciphertext, so 400.
    func decrypt(_ ciphertext: [UInt8]) throws(TransitError) -> [UInt8] {
        do {
            let privateKey = try _RSA.Encryption.PrivateKey(derRepresentation: signingKey.derRepresentation)
            return Array(try privateKey.decrypt(ciphertext, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw .badRequest("failed to RSA decrypt the ciphertext: crypto/rsa: decryption error")
        }
    }

    /// Signs an already padded, modulus-sized encoded message: `em^d mod n`.
    func rawSign(_ encoded: [UInt8]) throws(TransitError) -> [UInt8] {
        do {
            return Array(try rawKey.blindSignature(for: encoded).rawRepresentation)
        } catch {
            throw .internalError("RSA signing failed: \(error)")
        }
    }

    /// Recovers the encoded message from a signature: `s^e mod n`, or nil when the value is out of range.
    func rawVerify(_ signature: [UInt8]) -> [UInt8]? {
        guard signature.count == byteCount else { return nil }
        return publicOperation.apply(signature)
    }
}
