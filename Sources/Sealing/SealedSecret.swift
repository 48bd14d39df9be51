public import FoundationEssentials
import StrictJSON

/// A short secret HPKE-sealed to one public key, as an armored blob. Two kinds:
///
/// - `barrierKey` ("VHSM BARRIER KEY"): vhsmd's barrier root key escrowed to the operator's key (`operator_key`),
///   stored next to the sealed keyring, so a data directory survives a new chip, measurement or TCB;
/// - `recoveryGrant` ("VHSM RECOVERY GRANT"): a secret the operator releases to a guest's attested X25519 key
///   (`RecoveryRequest`): the volume's recovery key for `vhsm volume reenroll`, the barrier root key for
///   `vhsm operator recover`;
/// - `recoveryChallenge` ("VHSM RECOVERY CHALLENGE"): a guest's random-looking challenge sealed to the operator's
///   key, printed beside its `RecoveryRequest`; the operator's grant carries it back, which proves the grant came
///   from the operator (anyone can seal to the request's public key).
///
/// ```
/// {"version":1,"context":"<kind-specific>","suite":"X25519-SHA256-ChaCha20Poly1305",
///  "recipient":"<64 hex: SHA-256 of the recipient's SubjectPublicKeyInfo>","enc":"<base64>","ciphertext":"<base64>"}
/// ```
/// HPKE base mode (RFC 9180), info `vhsm/operator/barrier-key/v1`, `vhsm/recovery-grant/v1` or
/// `vhsm/recovery-challenge/v1`, AAD
/// `vhsm-sealed|<LABEL>|<context>`: a blob opens only as its own kind and for its own context (a volume UUID, a
/// data directory).
public struct SealedSecret: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case barrierKey = "VHSM BARRIER KEY"
        case recoveryGrant = "VHSM RECOVERY GRANT"
        case recoveryChallenge = "VHSM RECOVERY CHALLENGE"

        public var info: String {
            switch self {
            case .barrierKey: "vhsm/operator/barrier-key/v1"
            case .recoveryGrant: "vhsm/recovery-grant/v1"
            case .recoveryChallenge: "vhsm/recovery-challenge/v1"
            }
        }

        var what: String {
            switch self {
            case .barrierKey: "barrier-key blob"
            case .recoveryGrant: "recovery grant"
            case .recoveryChallenge: "recovery challenge"
            }
        }
    }

    public static let version: UInt64 = 1
    /// The longest secret a blob carries.
    public static let maximumSecretBytes = 64

    public var kind: Kind
    public var context: String
    public var suite: HPKESuite
    public var recipientFingerprint: [UInt8]
    public var encapsulatedKey: [UInt8]
    public var ciphertext: [UInt8]

    func aad() -> [UInt8] { Array("vhsm-sealed|\(kind.rawValue)|\(context)".utf8) }

    /// Seals `secret` (at most 64 bytes) to `key`.
    public static func seal(
        _ secret: some DataProtocol, kind: Kind, context: String, to key: HPKEPublicKey
    ) throws(SealingError) -> SealedSecret {
        guard secret.count <= maximumSecretBytes else {
            throw SealingError("a \(kind.what) carries at most \(maximumSecretBytes) bytes, not \(secret.count)")
        }
        var blob = SealedSecret(
            kind: kind, context: context, suite: key.suite, recipientFingerprint: key.fingerprint, encapsulatedKey: [],
            ciphertext: [])
        do {
            (blob.encapsulatedKey, blob.ciphertext) = try key.seal(secret, info: kind.info, aad: blob.aad())
        } catch {
            throw SealingError("cannot seal the \(kind.what) to key \(SealedRootToken.hex(key.fingerprint)): \(error)")
        }
        return blob
    }

    /// The secret, opened with `key`; the caller zeroes it. Suite and recipient are checked first, so a wrong key
    /// gets a precise message instead of an AEAD failure.
    public func open(with key: HPKEPrivateKey) throws(SealingError) -> [UInt8] {
        let publicKey = key.publicKey
        guard suite == publicKey.suite, recipientFingerprint == publicKey.fingerprint else {
            throw SealingError(
                "the \(kind.what) was sealed to key \(SealedRootToken.hex(recipientFingerprint)) (\(suite.rawValue)), "
                    + "not to \(SealedRootToken.hex(publicKey.fingerprint)) (\(publicKey.suite.rawValue))")
        }
        var opened: Data
        do {
            opened = try key.open(
                ciphertext, encapsulatedKey: encapsulatedKey, suite: suite, info: kind.info, aad: aad())
        } catch {
            throw SealingError("the \(kind.what) for \(context) does not open (HPKE: \(error)): it was changed")
        }
        defer { opened.resetBytes(in: 0..<opened.count) }
        return Array(opened)
    }

    public var armored: String {
        Armor.wrap(
            .object([
                ("version", .number(Self.version)), ("context", .string(context)), ("suite", .string(suite.rawValue)),
                ("recipient", .string(SealedRootToken.hex(recipientFingerprint))),
                ("enc", .string(Data(encapsulatedKey).base64EncodedString())),
                ("ciphertext", .string(Data(ciphertext).base64EncodedString())),
            ]), label: kind.rawValue)
    }

    /// Parses an armored blob of `kind`; every field is checked and unknown ones refused.
    public static func parse(armored text: String, kind: Kind) throws(SealingError) -> SealedSecret {
        let fields = try Armor.unwrap(text, label: kind.rawValue, what: kind.what)
        try fields.only(["version", "context", "suite", "recipient", "enc", "ciphertext"])
        try fields.version(version)
        let suite = try fields.suite()
        let context = try fields.string("context")
        guard context.utf8.count <= 512 else { throw SealingError("the \(kind.what)'s context is over 512 bytes") }
        return SealedSecret(
            kind: kind, context: context, suite: suite, recipientFingerprint: try fields.sha256("recipient"),
            encapsulatedKey: try fields.bytes("enc", suite.encapsulatedKeyBytes...suite.encapsulatedKeyBytes),
            ciphertext: try fields.bytes("ciphertext", 16...(maximumSecretBytes + 16)))
    }

    /// Memberwise; `seal` is how a blob is made.
    public init(
        kind: Kind, context: String, suite: HPKESuite, recipientFingerprint: [UInt8], encapsulatedKey: [UInt8],
        ciphertext: [UInt8]
    ) {
        self.kind = kind
        self.context = context
        self.suite = suite
        self.recipientFingerprint = recipientFingerprint
        self.encapsulatedKey = encapsulatedKey
        self.ciphertext = ciphertext
    }
}
