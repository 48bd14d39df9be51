import Crypto

/// EMSA-PSS and EMSA-PKCS1-v1_5 (RFC 8017 §9), applied to a digest, with Go's salt-length conventions.
///
/// Vault's `salt_length` is Go's `rsa.PSSOptions.SaltLength`: 0 (`auto`) means the maximal salt when
/// signing and detect-any when verifying, −1 (`hash`) means the digest length, a positive value is exact.
enum RSASignaturePadding {
    /// `auto`, Go `rsa.PSSSaltLengthAuto`.
    static let saltAuto = 0
    /// `hash`, Go `rsa.PSSSaltLengthEqualsHash`.
    static let saltEqualsHash = -1

    /// The largest salt that fits: `⌈(bits − 1) / 8⌉ − 2 − hLen`.
    static func maximumSalt(bits: Int, hash: TransitHashAlgorithm) -> Int {
        (bits - 1 + 7) / 8 - 2 - hash.digestByteCount
    }

    /// Parses Vault's `salt_length` field: `auto`, `hash`, or a decimal integer.
    static func saltLength(_ text: String) throws(TransitError) -> Int {
        switch text {
        case "", "auto": return saltAuto
        case "hash": return saltEqualsHash
        default:
            guard let value = Int(text) else {
                throw .badRequest("salt length must be \"auto\", \"hash\", or an integer")
            }
            return value
        }
    }

    /// Checks a salt length against the key as Vault does, with its error text.
    static func validate(salt: Int, bits: Int, hash: TransitHashAlgorithm) throws(TransitError) {
        guard salt >= saltEqualsHash, salt <= maximumSalt(bits: bits, hash: hash) else {
            throw .badRequest("requested salt length \(salt) is invalid")
        }
    }

    /// EMSA-PSS-ENCODE, left-padded to the modulus size.
    static func pssEncode(
        digest: [UInt8], hash: TransitHashAlgorithm, salt: Int, bits: Int
    ) throws(TransitError) -> [UInt8] {
        let hLen = hash.digestByteCount
        let emBits = bits - 1
        let emLen = (emBits + 7) / 8
        let saltCount = salt == saltAuto ? emLen - 2 - hLen : (salt == saltEqualsHash ? hLen : salt)
        guard hLen > 0, digest.count == hLen, saltCount >= 0, emLen >= hLen + saltCount + 2 else {
            throw .badRequest("requested salt length \(salt) is invalid")
        }
        let saltBytes = TransitRandom.bytes(saltCount)
        let h = hash.digest([UInt8](repeating: 0, count: 8) + digest + saltBytes)
        var db = [UInt8](repeating: 0, count: emLen - saltCount - hLen - 2) + [0x01] + saltBytes
        let mask = mgf1(seed: h, count: db.count, hash: hash)
        for index in db.indices { db[index] ^= mask[index] }
        db[0] &= 0xFF >> UInt8(8 * emLen - emBits)
        let em = db + h + [0xBC]
        return [UInt8](repeating: 0, count: (bits + 7) / 8 - emLen) + em
    }

    /// EMSA-PSS-VERIFY on the modulus-sized output of the public operation.
    static func pssVerify(encoded: [UInt8], digest: [UInt8], hash: TransitHashAlgorithm, salt: Int, bits: Int) -> Bool {
        let hLen = hash.digestByteCount
        let emBits = bits - 1
        let emLen = (emBits + 7) / 8
        guard hLen > 0, digest.count == hLen, encoded.count >= emLen, emLen >= hLen + 2 else { return false }
        guard encoded.dropLast(emLen).allSatisfy({ $0 == 0 }) else { return false }
        let em = Array(encoded.suffix(emLen))
        guard em[emLen - 1] == 0xBC else { return false }
        var db = Array(em[0..<(emLen - hLen - 1)])
        let h = Array(em[(emLen - hLen - 1)..<(emLen - 1)])
        let topMask = UInt8(0xFF) >> UInt8(8 * emLen - emBits)
        guard db[0] & ~topMask == 0 else { return false }
        let mask = mgf1(seed: h, count: db.count, hash: hash)
        for index in db.indices { db[index] ^= mask[index] }
        db[0] &= topMask
        guard let one = db.firstIndex(where: { $0 != 0 }), db[one] == 0x01 else { return false }
        let saltBytes = Array(db[(one + 1)...])
        switch salt {
        case saltAuto: break
        case saltEqualsHash: guard saltBytes.count == hLen else { return false }
        default: guard saltBytes.count == salt else { return false }
        }
        let expected = hash.digest([UInt8](repeating: 0, count: 8) + digest + saltBytes)
        return constantTimeEqual(expected, h)
    }

    /// EMSA-PKCS1-v1_5: `00 01 FF… 00 ‖ DigestInfo ‖ digest` (no DigestInfo for `none`).
    static func pkcs1v15Encode(
        digest: [UInt8], hash: TransitHashAlgorithm, byteCount: Int
    ) throws(TransitError) -> [UInt8] {
        if hash != .none, digest.count != hash.digestByteCount {
            throw .badRequest(
                "input is not a \(hash.rawValue) digest (\(digest.count) bytes, expected \(hash.digestByteCount))")
        }
        let t = hash.digestInfoPrefix + digest
        guard byteCount >= t.count + 11 else { throw .badRequest("message too long for RSA key size") }
        return [0x00, 0x01] + [UInt8](repeating: 0xFF, count: byteCount - t.count - 3) + [0x00] + t
    }

    /// MGF1 with the given hash.
    static func mgf1(seed: [UInt8], count: Int, hash: TransitHashAlgorithm) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt32 = 0
        while out.count < count {
            let c: [UInt8] = [
                UInt8(counter >> 24), UInt8(truncatingIfNeeded: counter >> 16),
                UInt8(truncatingIfNeeded: counter >> 8), UInt8(truncatingIfNeeded: counter),
            ]
            out += hash.digest(seed + c)
            counter += 1
        }
        return Array(out.prefix(count))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
