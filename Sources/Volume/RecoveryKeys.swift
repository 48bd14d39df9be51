public import Crypto
internal import FoundationEssentials
public import Sealing

/// The HPKE suites a recovery recipient key can use (Sealing's `HPKESuite`, shared with vhsmd's root-token blobs).
public typealias RecoverySuite = HPKESuite

/// The operator's recovery public key (from the measured configuration): P-384 or X25519.
public enum RecoveryRecipient: Sendable {
    case p384(P384.KeyAgreement.PublicKey)
    case x25519(Curve25519.KeyAgreement.PublicKey)

    /// A PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of either curve.
    public init(pem: String) throws(VolumeError) {
        switch HPKEPublicKey(pem: pem) {
        case .p384(let key)?: self = .p384(key)
        case .x25519(let key)?: self = .x25519(key)
        case nil:
            throw .invalidArgument(
                "the recovery public key is not a PEM P-384 or X25519 public key (\"-----BEGIN PUBLIC KEY-----\")")
        }
    }

    /// The same key as Sealing's HPKE recipient.
    public var hpke: HPKEPublicKey {
        switch self {
        case .p384(let key): .p384(key)
        case .x25519(let key): .x25519(key)
        }
    }

    public var suite: RecoverySuite { hpke.suite }

    /// DER SubjectPublicKeyInfo.
    public var derRepresentation: [UInt8] { hpke.derRepresentation }

    /// SHA-256 of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`.
    public var fingerprint: [UInt8] { hpke.fingerprint }

    /// Encrypts `key` for this recipient, bound to the volume and keyslot.
    func seal(_ key: RecoveryKey, volumeUUID: String, keyslot: Int) throws(VolumeError) -> RecoveryToken {
        do {
            let aad = RecoveryHPKE.aad(volumeUUID: volumeUUID, keyslot: keyslot)
            let recipient = hpke
            let (enc, ciphertext) = try key.key.withUnsafeBytes { raw in
                try recipient.seal(raw, info: RecoveryHPKE.info, aad: aad)
            }
            return RecoveryToken(
                keyslot: keyslot, suite: suite, recipientFingerprint: fingerprint, encapsulatedKey: enc,
                ciphertext: ciphertext)
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
        switch HPKEPrivateKey(pem: pem) {
        case .p384(let key)?: self = .p384(key)
        case .x25519(let key)?: self = .x25519(key)
        case nil:
            throw .invalidArgument(
                "the recovery private key is not an unencrypted PEM P-384 or X25519 private key (PKCS#8 or SEC1)")
        }
    }

    /// The same key as Sealing's HPKE private key.
    public var hpke: HPKEPrivateKey {
        switch self {
        case .p384(let key): .p384(key)
        case .x25519(let key): .x25519(key)
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
            var opened = try hpke.open(
                token.ciphertext, encapsulatedKey: token.encapsulatedKey, suite: token.suite, info: RecoveryHPKE.info,
                aad: RecoveryHPKE.aad(volumeUUID: volumeUUID, keyslot: token.keyslot))
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
