internal import Crypto
import StrictJSON

/// The `vhsm-snp` token's MAC: HMAC-SHA256, keyed with `VolumeKeys.macKey`, over a canonical serialisation of
/// the header parameters that decide how the volume is decrypted, and of the token itself.
///
/// Serialisation: the context string, then for each (name, value) pair in the order below,
/// `u32be(len(name)) ‖ name ‖ u32be(len(value)) ‖ value`, all UTF-8. Values are decimal numbers, lowercase hex or
/// base64 exactly as listed; nothing depends on JSON formatting or member order.
///
/// 1. `uuid`, `cipher`, `key_bits` (volume key bits), `sector_size`, `segment_offset`, `segment_size`,
///    `integrity` ("none" or the algorithm)
/// 2. the machine keyslot: `keyslot.id`, `keyslot.key_size`, `keyslot.af` ("luks1/4000/sha256"),
///    `keyslot.area` ("raw/aes-xts-plain64/512/<offset>/<size>"), `keyslot.kdf` ("pbkdf2/sha256/<iterations>"),
///    `keyslot.kdf_salt` (base64)
/// 3. the digest: `digest.kdf` ("pbkdf2/sha256/<iterations>"), `digest.salt`, `digest.value` (base64)
/// 4. the token: every field but `mac` (`SNPToken.macFields`), names prefixed with `token.`
enum HeaderMAC {
    static let context = "vhsm/luks2-header-mac/v1"

    static func message(_ metadata: Metadata, token: SNPToken) throws(Rejection) -> [UInt8] {
        guard let slot = metadata.keyslot(token.keyslot) else {
            throw Rejection(field: "vhsm-snp token keyslot", found: String(token.keyslot), expected: "an existing one")
        }
        var fields: [(String, String)] = [
            ("uuid", metadata.uuid), ("cipher", Layout.cipher), ("key_bits", String(metadata.volumeKeyBytes * 8)),
            ("sector_size", String(Layout.sectorSize)), ("segment_offset", String(metadata.segmentOffset)),
            ("segment_size", metadata.segmentSize), ("integrity", metadata.integrity ?? "none"),
            ("keyslot.id", String(slot.id)), ("keyslot.key_size", String(slot.keyBytes)),
            ("keyslot.af", "luks1/\(Layout.afStripes)/sha256"),
            ("keyslot.area", "raw/\(Layout.cipher)/512/\(slot.areaOffset)/\(slot.areaSize)"),
            ("keyslot.kdf", "pbkdf2/sha256/\(slot.kdfIterations)"),
            ("keyslot.kdf_salt", Encoding.base64String(slot.kdfSalt)),
            ("digest.kdf", "pbkdf2/sha256/\(metadata.digest.iterations)"),
            ("digest.salt", Encoding.base64String(metadata.digest.salt)),
            ("digest.value", Encoding.base64String(metadata.digest.digest)),
        ]
        fields += token.macFields.map { ("token.\($0.0)", $0.1) }
        var message = Array(context.utf8)
        for (name, value) in fields {
            append(Array(name.utf8), to: &message)
            append(Array(value.utf8), to: &message)
        }
        return message
    }

    private static func append(_ bytes: [UInt8], to message: inout [UInt8]) {
        let count = UInt32(bytes.count)
        message += [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        message += bytes
    }

    static func compute(_ metadata: Metadata, token: SNPToken, key: SymmetricKey) throws(Rejection) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: try message(metadata, token: token), using: key))
    }

    /// Constant-time comparison (swift-crypto's `isValidAuthenticationCode`).
    static func verify(_ metadata: Metadata, token: SNPToken, key: SymmetricKey) throws(Rejection) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            token.mac, authenticating: try message(metadata, token: token), using: key)
    }
}

extension CryptDevice {
    /// Stores `token` (`id` nil: the next free one) with its MAC under `key` over `metadata`, the header the token
    /// goes into. A header the MAC cannot cover is refused as `path`'s.
    func setSNPToken(
        _ token: SNPToken, id: Int?, over metadata: Metadata, key: SymmetricKey, path: String
    )
        throws(VolumeError)
    {
        var token = token
        do throws(Rejection) {
            token.mac = try HeaderMAC.compute(metadata, token: token, key: key)
        } catch {
            throw error.error(path: path)
        }
        try setToken(id: id, json: token.json.serialized)
    }
}
