/// The key types this transit engine creates, named as Vault names them on the wire.
enum TransitKeyType: String, Codable, Sendable, CaseIterable {
    case aes128GCM96 = "aes128-gcm96"
    case aes256GCM96 = "aes256-gcm96"
    case chacha20Poly1305 = "chacha20-poly1305"
    case ed25519
    case ecdsaP256 = "ecdsa-p256"
    case ecdsaP384 = "ecdsa-p384"
    case ecdsaP521 = "ecdsa-p521"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"
    case hmac

    /// Parses the `type` field of a request; unknown names get Vault's `unknown key type …` (400).
    init(name: String) throws(TransitError) {
        guard let type = TransitKeyType(rawValue: name) else { throw .badRequest("unknown key type \(name)") }
        self = type
    }

    /// AES-GCM or ChaCha20-Poly1305: 12-byte nonce, 16-byte tag.
    var isAEAD: Bool { [.aes128GCM96, .aes256GCM96, .chacha20Poly1305].contains(self) }

    var isECDSA: Bool { [.ecdsaP256, .ecdsaP384, .ecdsaP521].contains(self) }

    var isRSA: Bool { [.rsa2048, .rsa3072, .rsa4096].contains(self) }

    /// Keys with a public half, listed with `public_key` on read.
    var isAsymmetric: Bool { isECDSA || isRSA || self == .ed25519 }

    var supportsEncryption: Bool { isAEAD || isRSA }

    var supportsDecryption: Bool { isAEAD || isRSA }

    var supportsSigning: Bool { isECDSA || isRSA || self == .ed25519 }

    var supportsDerivation: Bool { isAEAD || self == .ed25519 }

    /// ECDSA and RSA sign a digest of the input; Ed25519 signs the message itself.
    var hashesSignatureInput: Bool { isECDSA || isRSA }

    /// Bytes of key material for the AEAD types.
    var aeadKeyByteCount: Int { self == .aes128GCM96 ? 16 : 32 }

    /// RSA modulus size in bits.
    var rsaBits: Int {
        switch self {
        case .rsa3072: 3072
        case .rsa4096: 4096
        default: 2048
        }
    }

    /// Width of one ECDSA scalar (r, s or d) in bytes: 32, 48 or 66.
    var ecdsaScalarByteCount: Int {
        switch self {
        case .ecdsaP384: 48
        case .ecdsaP521: 66
        default: 32
        }
    }

    /// The `name` Vault shows next to each public key on read (Go's curve names, or the type itself).
    var publicKeyName: String {
        switch self {
        case .ecdsaP256: "P-256"
        case .ecdsaP384: "P-384"
        case .ecdsaP521: "P-521"
        default: rawValue
        }
    }
}
