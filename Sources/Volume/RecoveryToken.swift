public import Sealing
import StrictJSON

/// The `vhsm-recovery` LUKS2 token: the recovery key, HPKE-encrypted to the operator's recovery public key.
///
/// ```json
/// {"type":"vhsm-recovery","keyslots":["1"],"version":1,"suite":"P384-SHA384-AES256GCM",
///  "recipient":"<64 hex: SHA-256 of the recipient's SubjectPublicKeyInfo>","enc":"<base64>","ciphertext":"<base64>"}
/// ```
/// HPKE base mode, info "vhsm/recovery/v1", AAD "vhsm-recovery|<volume UUID>|<keyslot>": the ciphertext opens
/// only for this volume's recovery keyslot.
public struct RecoveryToken: Sendable, Equatable {
    public static let type = "vhsm-recovery"
    public static let version: UInt64 = 1

    public var keyslot: Int
    public var suite: RecoverySuite
    /// SHA-256 of the recipient public key's DER SubjectPublicKeyInfo.
    public var recipientFingerprint: [UInt8]
    /// HPKE encapsulated key.
    public var encapsulatedKey: [UInt8]
    /// HPKE ciphertext of the 32-byte recovery key (with its AEAD tag).
    public var ciphertext: [UInt8]

    public init(
        keyslot: Int, suite: RecoverySuite, recipientFingerprint: [UInt8], encapsulatedKey: [UInt8],
        ciphertext: [UInt8]
    ) {
        self.keyslot = keyslot
        self.suite = suite
        self.recipientFingerprint = recipientFingerprint
        self.encapsulatedKey = encapsulatedKey
        self.ciphertext = ciphertext
    }

    init(_ fields: inout Fields) throws(Rejection) {
        try fields.expect("type", Self.type)
        let keyslot = try fields.singleKeyslot()
        try self.init(fields: &fields, keyslot: keyslot)
        try fields.finish()
    }

    /// The fields shared by the token and the armored blob.
    private init(fields: inout Fields, keyslot: Int) throws(Rejection) {
        try fields.expect("version", Self.version)
        let suiteName = try fields.string("suite")
        guard let suite = RecoverySuite(rawValue: suiteName) else {
            throw Rejection(
                field: "\(fields.path) suite", found: "'\(suiteName)'",
                expected: RecoverySuite.allCases.map(\.rawValue).joined(separator: " or "))
        }
        self.keyslot = keyslot
        self.suite = suite
        recipientFingerprint = try fields.hex("recipient", count: 32)
        encapsulatedKey = try fields.base64("enc", count: suite.encapsulatedKeyBytes)
        ciphertext = try fields.base64("ciphertext", count: RecoveryKey.byteCount + 16)
    }

    private var sharedMembers: [(key: String, value: JSON)] {
        [
            ("version", .number(Self.version)), ("suite", .string(suite.rawValue)),
            ("recipient", .string(Encoding.hex(recipientFingerprint))),
            ("enc", .string(Encoding.base64String(encapsulatedKey))),
            ("ciphertext", .string(Encoding.base64String(ciphertext))),
        ]
    }

    var json: JSON {
        .object([("type", .string(Self.type)), ("keyslots", .array([.string(String(keyslot))]))] + sharedMembers)
    }

    // MARK: The armored blob, printed once at format time

    static let armorBegin = "-----BEGIN VHSM RECOVERY-----"
    static let armorEnd = "-----END VHSM RECOVERY-----"

    /// The blob: base64 (64 columns) of `{"volume_uuid":…,"keyslot":N, <the token's fields>}` between armor lines.
    public func armored(volumeUUID: String) -> String {
        let body = JSON.object(
            [("volume_uuid", .string(volumeUUID)), ("keyslot", .number(UInt64(keyslot)))] + sharedMembers
        ).serialized
        let base64 = Encoding.base64String(Array(body.utf8))
        var lines = [Self.armorBegin]
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append(Self.armorEnd)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses an armored blob; returns the volume UUID it names and the token.
    public static func parse(armored text: String) throws(VolumeError) -> (volumeUUID: String, token: RecoveryToken) {
        // `isNewline`: a line copied from a serial console ends in "\r\n", which Swift reads as one Character.
        let lines = text.split(whereSeparator: \.isNewline).map {
            $0.trimmingCharacters(in: " \t")
        }.filter { !$0.isEmpty }
        guard let begin = lines.firstIndex(of: armorBegin), let end = lines.firstIndex(of: armorEnd), begin < end else {
            throw .invalidArgument("the recovery blob has no \(armorBegin) … \(armorEnd) block")
        }
        guard let body = Encoding.unbase64(lines[begin + 1..<end].joined()) else {
            throw .invalidArgument("the recovery blob is not valid base64 between its armor lines")
        }
        do {
            var fields = try Fields(try JSON.parse(body), path: "recovery blob")
            let uuid = try fields.string("volume_uuid")
            guard Metadata.isCanonicalUUID(uuid) else {
                throw Rejection(field: "recovery blob volume_uuid", found: "'\(uuid)'", expected: "a UUID")
            }
            let slot = try fields.number("keyslot")
            let keyslot = try objectID(String(slot), what: "recovery blob keyslot")
            let token = try RecoveryToken(fields: &fields, keyslot: keyslot)
            try fields.finish()
            return (uuid, token)
        } catch let error as Rejection {
            throw .invalidArgument("the recovery blob has \(error.field) \(error.found) (expected \(error.expected))")
        } catch {
            throw .invalidArgument("the recovery blob is not valid JSON: \(error)")
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
