import Sealing
import StrictJSON

/// The `vhsm-reenroll` LUKS2 token: the operator's recovery grant for a guest on a new chip, measurement or TCB,
/// written by `vhsm volume reenroll` and consumed (then removed) by the next boot of that launch.
///
/// ```json
/// {"type":"vhsm-reenroll","keyslots":[],"version":1,"context":"volume|<volume UUID>",
///  "suite":"X25519-SHA256-ChaCha20Poly1305","recipient":"<64 hex: SHA-256 of the guest key's SubjectPublicKeyInfo>",
///  "enc":"<base64, 32 bytes>","ciphertext":"<base64, 80 bytes>"}
/// ```
/// The fields of a "VHSM RECOVERY GRANT" (`SealedSecret`, kind `recoveryGrant`) inlined: HPKE base mode to the
/// X25519 key of the guest's `RecoveryRequest`, info `vhsm/recovery-grant/v1`, AAD
/// `vhsm-sealed|VHSM RECOVERY GRANT|volume|<uuid>`, plaintext `ReenrollGrant.secretBytes` (64) bytes: the recovery
/// key, then the guest's challenge. It names no keyslot; there is at most one, only beside a `vhsm-recovery` token.
enum ReenrollToken {
    static let type = "vhsm-reenroll"

    /// The only context a grant in this header may have.
    static func context(volumeUUID: String) -> String { "volume|\(volumeUUID)" }

    static func parse(_ fields: inout Fields, volumeUUID: String) throws(Rejection) -> SealedSecret {
        try fields.expect("type", type)
        let keyslots = try fields.stringArray("keyslots")
        guard keyslots.isEmpty else {
            throw Rejection(field: "\(fields.path) keyslots", found: "\(keyslots)", expected: "none ([])")
        }
        try fields.expect("version", SealedSecret.version)
        try fields.expect("context", context(volumeUUID: volumeUUID))
        try fields.expect("suite", HPKESuite.x25519.rawValue)
        let grant = SealedSecret(
            kind: .recoveryGrant, context: context(volumeUUID: volumeUUID), suite: .x25519,
            recipientFingerprint: try fields.hex("recipient", count: 32),
            encapsulatedKey: try fields.base64("enc", count: HPKESuite.x25519.encapsulatedKeyBytes),
            ciphertext: try fields.base64("ciphertext", count: ReenrollGrant.secretBytes + 16))
        try fields.finish()
        return grant
    }

    static func json(_ grant: SealedSecret) -> JSON {
        .object([
            ("type", .string(type)), ("keyslots", .array([])), ("version", .number(SealedSecret.version)),
            ("context", .string(grant.context)), ("suite", .string(grant.suite.rawValue)),
            ("recipient", .string(Encoding.hex(grant.recipientFingerprint))),
            ("enc", .string(Encoding.base64String(grant.encapsulatedKey))),
            ("ciphertext", .string(Encoding.base64String(grant.ciphertext))),
        ])
    }
}
