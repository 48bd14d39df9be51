public import Crypto
internal import CryptoExtras
public import FoundationEssentials

/// The HPKE suites an operator key (the volume's recovery key, vhsmd's `operator_key`) can use. The raw value is
/// what the armored blobs spell.
public enum HPKESuite: String, Sendable, CaseIterable, Equatable {
    /// DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM.
    case p384 = "P384-SHA384-AES256GCM"
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    case x25519 = "X25519-SHA256-ChaCha20Poly1305"

    public var ciphersuite: HPKE.Ciphersuite {
        switch self {
        case .p384: .P384_SHA384_AES_GCM_256
        case .x25519: .Curve25519_SHA256_ChachaPoly
        }
    }

    /// Uncompressed P-384 point, or the raw X25519 key.
    public var encapsulatedKeyBytes: Int {
        switch self {
        case .p384: 97
        case .x25519: 32
        }
    }
}

/// An operator's public key, P-384 or X25519 (PEM SubjectPublicKeyInfo), and HPKE base-mode sealing to it.
///
/// One implementation for every blob that leaves a guest for the operator: the volume's recovery key (info
/// `vhsm/recovery/v1`) and vhsmd's root tokens (info `vhsm/operator/root-token/v1`). Each use has its own HPKE
/// `info`, so a blob of one kind never opens as the other.
public enum HPKEPublicKey: Sendable {
    case p384(P384.KeyAgreement.PublicKey)
    case x25519(Curve25519.KeyAgreement.PublicKey)

    /// A PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of either curve; nil when it is neither.
    public init?(pem: String) {
        if let key = try? P384.KeyAgreement.PublicKey(pemRepresentation: pem) {
            self = .p384(key)
        } else if let key = try? Curve25519.KeyAgreement.PublicKey(pemRepresentation: pem) {
            self = .x25519(key)
        } else {
            return nil
        }
    }

    public var suite: HPKESuite {
        switch self {
        case .p384: .p384
        case .x25519: .x25519
        }
    }

    /// DER SubjectPublicKeyInfo.
    public var derRepresentation: [UInt8] {
        switch self {
        case .p384(let key): Array(key.derRepresentation)
        case .x25519(let key): Array(key.derRepresentation)
        }
    }

    /// PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----").
    public var pemRepresentation: String {
        switch self {
        case .p384(let key): key.pemRepresentation
        case .x25519(let key): key.pemRepresentation
        }
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`.
    public var fingerprint: [UInt8] { Array(SHA256.hash(data: derRepresentation)) }

    /// HPKE base mode (RFC 9180) with this key's suite: the encapsulated key and the ciphertext (with its tag).
    public func seal(
        _ plaintext: some DataProtocol, info: String, aad: [UInt8]
    ) throws -> (
        encapsulatedKey: [UInt8], ciphertext: [UInt8]
    ) {
        var sender: HPKE.Sender
        switch self {
        case .p384(let key):
            sender = try HPKE.Sender(recipientKey: key, ciphersuite: suite.ciphersuite, info: Data(info.utf8))
        case .x25519(let key):
            sender = try HPKE.Sender(recipientKey: key, ciphersuite: suite.ciphersuite, info: Data(info.utf8))
        }
        let ciphertext = try sender.seal(plaintext, authenticating: aad)
        return (Array(sender.encapsulatedKey), Array(ciphertext))
    }
}

/// An operator's private key, on the operator's machine only: unencrypted PEM, PKCS#8 ("PRIVATE KEY") of either
/// curve or SEC1 ("EC PRIVATE KEY") P-384.
public enum HPKEPrivateKey: Sendable {
    case p384(P384.KeyAgreement.PrivateKey)
    case x25519(Curve25519.KeyAgreement.PrivateKey)

    /// nil when the text is neither kind of key.
    public init?(pem: String) {
        if let key = try? P384.KeyAgreement.PrivateKey(pemRepresentation: pem) {
            self = .p384(key)
        } else if let key = try? Curve25519.KeyAgreement.PrivateKey(pemRepresentation: pem) {
            self = .x25519(key)
        } else {
            return nil
        }
    }

    /// A fresh key of `suite`'s curve (an ephemeral key: `vhsm login`'s).
    public init(generating suite: HPKESuite) {
        switch suite {
        case .p384: self = .p384(P384.KeyAgreement.PrivateKey())
        case .x25519: self = .x25519(Curve25519.KeyAgreement.PrivateKey())
        }
    }

    public var publicKey: HPKEPublicKey {
        switch self {
        case .p384(let key): .p384(key.publicKey)
        case .x25519(let key): .x25519(key.publicKey)
        }
    }

    /// Opens what `HPKEPublicKey.seal` sealed with the same `info` and `aad`. The caller zeroes the plaintext.
    public func open(
        _ ciphertext: [UInt8], encapsulatedKey: [UInt8], suite: HPKESuite, info: String, aad: [UInt8]
    ) throws -> Data {
        var receiver: HPKE.Recipient
        switch self {
        case .p384(let key):
            receiver = try HPKE.Recipient(
                privateKey: key, ciphersuite: suite.ciphersuite, info: Data(info.utf8),
                encapsulatedKey: Data(encapsulatedKey))
        case .x25519(let key):
            receiver = try HPKE.Recipient(
                privateKey: key, ciphersuite: suite.ciphersuite, info: Data(info.utf8),
                encapsulatedKey: Data(encapsulatedKey))
        }
        return try receiver.open(ciphertext, authenticating: aad)
    }
}
