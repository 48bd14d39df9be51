internal import FoundationEssentials
import StrictJSON

/// A vhsmd root token sealed to the operator's key (`operator_key`): what `PUT sys/init` and
/// `PUT sys/generate-root/operator` return instead of the token, so whoever calls them first (on first boot, the
/// cloud host) learns nothing it can use.
///
/// The armored blob is base64 (64 columns) of one JSON object between armor lines:
/// ```
/// -----BEGIN VHSM ROOT TOKEN-----
/// base64 of {"version":1,"issued_by":"sys/init","suite":"P384-SHA384-AES256GCM",
///            "recipient":"<64 hex: SHA-256 of the operator key's SubjectPublicKeyInfo>",
///            "enc":"<base64>","ciphertext":"<base64>"}
/// -----END VHSM ROOT TOKEN-----
/// ```
/// HPKE base mode (RFC 9180), info `vhsm/operator/root-token/v1` (the recovery blob's is `vhsm/recovery/v1`, so
/// neither opens as the other), AAD `vhsm-root-token|<issued_by>`; the plaintext is the token's UTF-8 bytes.
public struct SealedRootToken: Sendable, Equatable {
    public static let info = "vhsm/operator/root-token/v1"
    public static let version: UInt64 = 1
    public static let armorBegin = Armor.begin(label)
    public static let armorEnd = Armor.end(label)
    /// The longest token the blob carries (vhsmd's are 24 characters).
    static let maximumTokenBytes = 256

    /// The endpoint that issued the token: `sys/init` or `sys/generate-root/operator`.
    public var issuedBy: String
    public var suite: HPKESuite
    /// SHA-256 of the operator key's DER SubjectPublicKeyInfo.
    public var recipientFingerprint: [UInt8]
    public var encapsulatedKey: [UInt8]
    /// The sealed token with its AEAD tag.
    public var ciphertext: [UInt8]

    public init(
        issuedBy: String, suite: HPKESuite, recipientFingerprint: [UInt8], encapsulatedKey: [UInt8], ciphertext: [UInt8]
    ) {
        self.issuedBy = issuedBy
        self.suite = suite
        self.recipientFingerprint = recipientFingerprint
        self.encapsulatedKey = encapsulatedKey
        self.ciphertext = ciphertext
    }

    static func aad(issuedBy: String) -> [UInt8] { Array("vhsm-root-token|\(issuedBy)".utf8) }

    /// Seals `token` to `key`.
    public static func seal(
        _ token: String, to key: HPKEPublicKey, issuedBy: String
    ) throws(SealingError)
        -> SealedRootToken
    {
        do {
            let (enc, ciphertext) = try key.seal(Array(token.utf8), info: info, aad: aad(issuedBy: issuedBy))
            return SealedRootToken(
                issuedBy: issuedBy, suite: key.suite, recipientFingerprint: key.fingerprint, encapsulatedKey: enc,
                ciphertext: ciphertext)
        } catch {
            throw SealingError("cannot seal the root token to the operator key (HPKE \(key.suite.rawValue)): \(error)")
        }
    }

    /// The token, opened with the operator's private key. Suite and fingerprint are checked first, so a wrong key
    /// file gets a precise message instead of an AEAD failure.
    public func open(with key: HPKEPrivateKey) throws(SealingError) -> String {
        let publicKey = key.publicKey
        guard suite == publicKey.suite else {
            throw SealingError(
                "the root token was sealed with \(suite.rawValue) but this private key is for "
                    + "\(publicKey.suite.rawValue): use the private key of the operator_key in vhsmd's configuration")
        }
        guard recipientFingerprint == publicKey.fingerprint else {
            throw SealingError(
                "the root token was sealed to the operator key \(Self.hex(recipientFingerprint)) (SHA-256 of its "
                    + "SubjectPublicKeyInfo), not to this private key's \(Self.hex(publicKey.fingerprint)): use the "
                    + "private key of the operator_key in vhsmd's configuration")
        }
        var opened: Data
        do {
            opened = try key.open(
                ciphertext, encapsulatedKey: encapsulatedKey, suite: suite, info: Self.info,
                aad: Self.aad(issuedBy: issuedBy))
        } catch {
            throw SealingError(
                "the root token does not open with this private key (HPKE: \(error)): the blob was changed, or it "
                    + "is not a root-token blob (a recovery blob is opened by 'vhsm volume recover')")
        }
        defer { opened.resetBytes(in: 0..<opened.count) }
        guard let token = String(validating: opened, as: UTF8.self), !token.isEmpty else {
            throw SealingError("the opened root token is not UTF-8 text")
        }
        return token
    }

    // MARK: The armored blob

    /// The blob: base64 (64 columns) of the JSON object between armor lines, ending in a newline.
    public var armored: String {
        Armor.wrap(
            .object([
                ("version", .number(Self.version)), ("issued_by", .string(issuedBy)),
                ("suite", .string(suite.rawValue)), ("recipient", .string(Self.hex(recipientFingerprint))),
                ("enc", .string(Data(encapsulatedKey).base64EncodedString())),
                ("ciphertext", .string(Data(ciphertext).base64EncodedString())),
            ]), label: Self.label)
    }

    static let label = "VHSM ROOT TOKEN"

    /// Parses an armored blob (text around the armor lines is ignored, so a log excerpt or a JSON answer whose
    /// `\n` escapes were turned back into line breaks can be given). Every field is checked; unknown fields are refused.
    public static func parse(armored text: String) throws(SealingError) -> SealedRootToken {
        let fields = try Armor.unwrap(text, label: label, what: "root-token blob")
        try fields.only(["version", "issued_by", "suite", "recipient", "enc", "ciphertext"])
        try fields.version(version)
        let suite = try fields.suite()
        let recipient = try fields.sha256("recipient")
        return SealedRootToken(
            issuedBy: try fields.string("issued_by"), suite: suite, recipientFingerprint: recipient,
            encapsulatedKey: try fields.bytes("enc", suite.encapsulatedKeyBytes...suite.encapsulatedKeyBytes),
            ciphertext: try fields.bytes("ciphertext", 17...(maximumTokenBytes + 16)))
    }

    /// Lower-case hex.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] })
    }

    /// Bytes from hex digits (either case), or nil.
    public static func hexBytes(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count.isMultiple(of: 2) else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = value(characters[index]), let low = value(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}

/// A sealing or opening failure, as a sentence.
public struct SealingError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
