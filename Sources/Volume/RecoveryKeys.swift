public import Crypto
internal import CryptoExtras
internal import FoundationEssentials

/// The HPKE suites a recovery recipient key can use.
public enum RecoverySuite: String, Sendable, CaseIterable, Equatable {
    /// DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM.
    case p384 = "P384-SHA384-AES256GCM"
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    case x25519 = "X25519-SHA256-ChaCha20Poly1305"

    var ciphersuite: HPKE.Ciphersuite {
        switch self {
        case .p384: .P384_SHA384_AES_GCM_256
        case .x25519: .Curve25519_SHA256_ChachaPoly
        }
    }

    /// Uncompressed P-384 point, or the raw X25519 key.
    var encapsulatedKeyBytes: Int {
        switch self {
        case .p384: 97
        case .x25519: 32
        }
    }
}

/// The operator's recovery public key (from the measured configuration): P-384 or X25519.
public enum RecoveryRecipient: Sendable {
    case p384(P384.KeyAgreement.PublicKey)
    case x25519(Curve25519.KeyAgreement.PublicKey)

    /// A PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of either curve.
    public init(pem: String) throws(VolumeError) {
        if let key = try? P384.KeyAgreement.PublicKey(pemRepresentation: pem) {
            self = .p384(key)
        } else if let key = try? Curve25519.KeyAgreement.PublicKey(pemRepresentation: pem) {
            self = .x25519(key)
        } else {
            throw .invalidArgument(
                "the recovery public key is not a PEM P-384 or X25519 public key (\"-----BEGIN PUBLIC KEY-----\")")
        }
    }

    public var suite: RecoverySuite {
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

    /// SHA-256 of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`.
    public var fingerprint: [UInt8] { Array(SHA256.hash(data: derRepresentation)) }

    /// Encrypts `key` for this recipient, bound to the volume and keyslot.
    func seal(_ key: RecoveryKey, volumeUUID: String, keyslot: Int) throws(VolumeError) -> RecoveryToken {
        do {
            let info = Data(RecoveryHPKE.info.utf8)
            var sender: HPKE.Sender
            switch self {
            case .p384(let publicKey):
                sender = try HPKE.Sender(recipientKey: publicKey, ciphersuite: suite.ciphersuite, info: info)
            case .x25519(let publicKey):
                sender = try HPKE.Sender(recipientKey: publicKey, ciphersuite: suite.ciphersuite, info: info)
            }
            let aad = RecoveryHPKE.aad(volumeUUID: volumeUUID, keyslot: keyslot)
            let ciphertext = try key.key.withUnsafeBytes { raw in try sender.seal(raw, authenticating: aad) }
            return RecoveryToken(
                keyslot: keyslot, suite: suite, recipientFingerprint: fingerprint,
                encapsulatedKey: Array(sender.encapsulatedKey), ciphertext: Array(ciphertext))
        } catch {
            throw .invalidArgument("cannot encrypt the recovery key to the recovery public key: \(error)")
        }
    }
}

/// The operator's recovery private key, on the operator's machine only.
public enum RecoveryPrivateKey: Sendable {
    case p384(P384.KeyAgreement.PrivateKey)
    case x25519(Curve25519.KeyAgreement.PrivateKey)

    /// An unencrypted PEM private key: PKCS#8 ("PRIVATE KEY") of either curve, or SEC1 ("EC PRIVATE KEY") P-384.
    public init(pem: String) throws(VolumeError) {
        if let key = try? P384.KeyAgreement.PrivateKey(pemRepresentation: pem) {
            self = .p384(key)
        } else if let key = try? Curve25519.KeyAgreement.PrivateKey(pemRepresentation: pem) {
            self = .x25519(key)
        } else {
            throw .invalidArgument(
                "the recovery private key is not an unencrypted PEM P-384 or X25519 private key (PKCS#8 or SEC1)")
        }
    }

    public var recipient: RecoveryRecipient {
        switch self {
        case .p384(let key): .p384(key.publicKey)
        case .x25519(let key): .x25519(key.publicKey)
        }
    }

    /// Decrypts a recovery token for `volumeUUID`. Checks suite and fingerprint first, so a wrong key file
    /// gets a precise message instead of an AEAD failure.
    public func open(_ token: RecoveryToken, volumeUUID: String) throws(VolumeError) -> RecoveryKey {
        let recipient = self.recipient
        guard token.suite == recipient.suite else {
            throw .recovery(
                path: volumeUUID,
                "the recovery key was encrypted with \(token.suite.rawValue) but this private key is for "
                    + "\(recipient.suite.rawValue)")
        }
        guard token.recipientFingerprint == recipient.fingerprint else {
            throw .recovery(
                path: volumeUUID,
                "the recovery key was encrypted to public key \(Encoding.hex(token.recipientFingerprint)) "
                    + "(SHA-256 of its SubjectPublicKeyInfo), not to this private key's "
                    + "\(Encoding.hex(recipient.fingerprint))")
        }
        do {
            let info = Data(RecoveryHPKE.info.utf8)
            let enc = Data(token.encapsulatedKey)
            var receiver: HPKE.Recipient
            switch self {
            case .p384(let key):
                receiver = try HPKE.Recipient(
                    privateKey: key, ciphersuite: token.suite.ciphersuite, info: info, encapsulatedKey: enc)
            case .x25519(let key):
                receiver = try HPKE.Recipient(
                    privateKey: key, ciphersuite: token.suite.ciphersuite, info: info, encapsulatedKey: enc)
            }
            var opened = try receiver.open(
                token.ciphertext, authenticating: RecoveryHPKE.aad(volumeUUID: volumeUUID, keyslot: token.keyslot))
            var plaintext = Array(opened)
            defer {
                Encoding.zero(&plaintext)
                opened.resetBytes(in: 0..<opened.count)
            }
            guard plaintext.count == RecoveryKey.byteCount else {
                throw VolumeError.recovery(path: volumeUUID, "the decrypted recovery key is not 32 bytes")
            }
            return RecoveryKey(key: SymmetricKey(data: plaintext))
        } catch let error as VolumeError {
            throw error
        } catch {
            throw .recovery(
                path: volumeUUID,
                "the recovery key does not decrypt (HPKE: \(error)); the blob belongs to another volume or keyslot, "
                    + "or was changed")
        }
    }
}

enum RecoveryHPKE {
    static let info = "vhsm/recovery/v1"

    static func aad(volumeUUID: String, keyslot: Int) -> [UInt8] {
        Array("vhsm-recovery|\(volumeUUID)|\(keyslot)".utf8)
    }
}
