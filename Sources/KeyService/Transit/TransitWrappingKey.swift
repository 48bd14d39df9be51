import Crypto
import CryptoExtras

/// The mount's RSA-4096 BYOK wrapping key (`GET wrapping_key`) and the import blob format:
/// RSA-OAEP(wrapping public key, ephemeral 32-byte AES key) ‖ AES-KWP(ephemeral key, target key).
struct TransitWrappingKey: Codable, Sendable, Equatable {
    /// PKCS#1 DER of the private key.
    var privateKeyDER: [UInt8]

    enum CodingKeys: String, CodingKey { case privateKeyDER = "private_key" }

    init(privateKeyDER: [UInt8]) { self.privateKeyDER = privateKeyDER }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            privateKeyDER = try TransitBase64.decode(try container.decode(String.self, forKey: .privateKeyDER))
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .privateKeyDER, in: container, debugDescription: "\(error)")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(TransitBase64.encode(privateKeyDER), forKey: .privateKeyDER)
    }

    /// A fresh 4096-bit wrapping key (takes a second or two).
    static func generate() throws(TransitError) -> TransitWrappingKey {
        TransitWrappingKey(privateKeyDER: try RSAKey.generate(bits: 4096))
    }

    /// `{"public_key": …}`: PEM SPKI.
    var publicKeyPEM: String {
        get throws(TransitError) { try RSAKey(der: privateKeyDER).publicKeyPEM }
    }

    /// Opens an import blob (already base64-decoded) and returns the target key bytes: raw for symmetric and
    /// HMAC keys, PKCS#8 DER for asymmetric ones. `hashFunction` is the request's `hash_function`.
    func unwrap(_ blob: [UInt8], hashFunction: String = "SHA256") throws(TransitError) -> [UInt8] {
        let padding = try Self.padding(hashFunction)
        let privateKey: _RSA.Encryption.PrivateKey
        do { privateKey = try _RSA.Encryption.PrivateKey(derRepresentation: privateKeyDER) } catch {
            throw .internalError("wrapping key is unusable: \(error)")
        }
        let split = privateKey.keySizeInBits / 8
        guard blob.count > split else { throw .badRequest("provided ciphertext is too short") }
        let ephemeral: [UInt8]
        do { ephemeral = Array(try privateKey.decrypt(blob[..<split], padding: padding)) } catch {
            throw .badRequest("failed to decrypt ephemeral key: crypto/rsa: decryption error")
        }
        guard ephemeral.count == 32 || ephemeral.count == 16 || ephemeral.count == 24 else {
            throw .badRequest("failed to create KWP cipher: invalid ephemeral key size \(ephemeral.count)")
        }
        do {
            return try AESKeyWrapPadding.unwrap(Array(blob[split...]), key: SymmetricKey(data: ephemeral))
        } catch {
            throw .badRequest("failed to unwrap target key: \(error)")
        }
    }

    /// Builds an import blob for `target` under a wrapping public key (PEM SPKI): what a client does before
    /// `keys/:name/import`. Returned base64-encoded, ready for the `ciphertext` field.
    static func wrap(
        _ target: [UInt8], forPublicKeyPEM pem: String, hashFunction: String = "SHA256"
    ) throws(TransitError)
        -> String
    {
        let padding = try padding(hashFunction)
        let ephemeral = TransitRandom.bytes(32)
        do {
            let publicKey = try _RSA.Encryption.PublicKey(pemRepresentation: pem)
            let head = Array(try publicKey.encrypt(ephemeral, padding: padding))
            let tail = try AESKeyWrapPadding.wrap(target, key: SymmetricKey(data: ephemeral))
            return TransitBase64.encode(head + tail)
        } catch {
            throw .badRequest("failed to wrap target key for import: \(error)")
        }
    }

    /// OAEP with SHA-256 (Vault's default) or SHA-1; swift-crypto has no OAEP with SHA-224/384/512.
    private static func padding(_ hashFunction: String) throws(TransitError) -> _RSA.Encryption.Padding {
        switch hashFunction {
        case "", "SHA256": return .PKCS1_OAEP_SHA256
        case "SHA1": return .PKCS1_OAEP
        case "SHA224", "SHA384", "SHA512":
            throw .badRequest("unsupported hash function \(hashFunction): this server implements SHA1 and SHA256")
        default:
            throw .badRequest("unsupported hash function \(hashFunction)")
        }
    }
}
