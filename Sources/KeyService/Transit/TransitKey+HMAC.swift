/// `hmac/:name` and HMAC verification through `verify/:name`, plus the keyless `hash` and `random` endpoints.
///
/// Every version's HMAC key is its own random 32 bytes (for `hmac` keys, the key material itself); the
/// output is `vault:v<N>:` + base64(HMAC-H(hmacKey, input)).
extension TransitKey {
    /// `{"hmac"}`: the version is inside the `vault:v<N>:` prefix, and Vault's answer has no `key_version`.
    struct HMACResult: Encodable, Sendable, Equatable {
        var hmac: String
        var keyVersion: Int

        enum CodingKeys: String, CodingKey {
            case hmac
        }
    }

    /// HMAC of `input` with version `keyVersion` (0 = latest).
    func hmac(
        _ input: [UInt8], algorithm: TransitHashAlgorithm = .sha2_256, keyVersion: Int = 0
    ) throws(TransitError)
        -> HMACResult
    {
        let number = keyVersion == 0 ? config.latestVersion : keyVersion
        if number != config.latestVersion, config.minEncryptionVersion > 0, number < config.minEncryptionVersion {
            throw .badRequest("cannot generate HMAC: version is too old (disallowed by policy)")
        }
        let key = try hmacKey(number)
        guard let mac = algorithm.hmac(input, key: key) else {
            throw .badRequest("unsupported algorithm \(algorithm.rawValue)")
        }
        return HMACResult(hmac: TransitCiphertext.encode(version: number, payload: mac), keyVersion: number)
    }

    /// Checks a `vault:v<N>:…` HMAC over `input`; false when it does not match.
    func verifyHMAC(
        _ input: [UInt8], hmac: String, algorithm: TransitHashAlgorithm = .sha2_256
    ) throws(TransitError) -> Bool {
        let parsed = try TransitCiphertext(
            parsing: hmac, kind: .hmac, latestVersion: config.latestVersion,
            minDecryptionVersion: config.minDecryptionVersion)
        let supplied: [UInt8]
        do {
            supplied = try TransitBase64.decode(parsed.encodedPayload)
        } catch {
            throw .badRequest("unable to decode verification HMAC as base64: \(error.message)")
        }
        guard let expected = algorithm.hmac(input, key: try hmacKey(parsed.version)) else {
            throw .badRequest("unsupported algorithm \(algorithm.rawValue)")
        }
        return RSASignaturePadding.constantTimeEqual(expected, supplied)
    }

    /// The HMAC key of a version, with Vault's (500) errors for versions out of range.
    func hmacKey(_ number: Int) throws(TransitError) -> [UInt8] {
        guard number >= 0 else { throw .badRequest("key version does not exist (cannot be negative)") }
        guard number <= config.latestVersion else {
            throw .badRequest("key version does not exist; latest key version is \(config.latestVersion)")
        }
        let entry = try version(number)
        return type == .hmac ? entry.key : entry.hmacKey
    }
}

/// The keyless transit endpoints.
enum TransitUtilities {
    /// `POST hash`: the digest of `input` in `hex` (default) or `base64`.
    static func hash(
        _ input: [UInt8], algorithm: String = "sha2-256", format: String = "hex"
    ) throws(TransitError) -> String {
        let parsed = try TransitHashAlgorithm(name: algorithm)
        guard parsed != .none else { throw .badRequest("unsupported algorithm none") }
        return try render(parsed.digest(input), format: format)
    }

    /// `POST random`: `count` bytes (1…1 MiB) in `base64` (default) or `hex`.
    static func randomBytes(count: Int = 32, format: String = "base64") throws(TransitError) -> String {
        // OpenBao's limits and words: at most 128 KiB per request.
        guard count >= 1 else { throw .badRequest("'bytes' cannot be less than 1") }
        guard count <= 128 << 10 else { throw .badRequest("'bytes' should be less than \(128 << 10)") }
        return try render(TransitRandom.bytes(count), format: format.isEmpty ? "base64" : format)
    }

    private static func render(_ bytes: [UInt8], format: String) throws(TransitError) -> String {
        switch format {
        case "", "hex":
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }, as: UTF8.self)
        case "base64":
            return TransitBase64.encode(bytes)
        default:
            throw .badRequest("unsupported encoding format \"\(format)\"; must be \"hex\" or \"base64\"")
        }
    }
}
