import Crypto

/// A `hash_algorithm` / `algorithm` value this engine can compute. Vault also accepts `sha2-224` and `sha3-224`;
/// swift-crypto implements neither, so those names parse to a clear 400 instead.
enum TransitHashAlgorithm: String, Sendable, CaseIterable {
    case sha1
    case sha2_256 = "sha2-256"
    case sha2_384 = "sha2-384"
    case sha2_512 = "sha2-512"
    case sha3_256 = "sha3-256"
    case sha3_384 = "sha3-384"
    case sha3_512 = "sha3-512"
    /// Only for RSA PKCS#1 v1.5 over a prehashed input: no DigestInfo.
    case none

    /// Names Vault knows but this server cannot compute.
    static let unavailable: Set<String> = ["sha2-224", "sha3-224"]

    /// Parses a request value; an empty string means the default, sha2-256.
    init(name: String) throws(TransitError) {
        if name.isEmpty {
            self = .sha2_256
        } else if let algorithm = TransitHashAlgorithm(rawValue: name) {
            self = algorithm
        } else if Self.unavailable.contains(name) {
            throw .badRequest(
                "unsupported hash algorithm \(name): this server implements sha1, sha2-256, sha2-384, sha2-512, "
                    + "sha3-256, sha3-384 and sha3-512")
        } else {
            throw .badRequest("invalid hash algorithm \"\(name)\"")
        }
    }

    /// Digest size in bytes (0 for `none`).
    var digestByteCount: Int {
        switch self {
        case .sha1: 20
        case .sha2_256, .sha3_256: 32
        case .sha2_384, .sha3_384: 48
        case .sha2_512, .sha3_512: 64
        case .none: 0
        }
    }

    /// Hashes `data`; `none` returns it unchanged.
    func digest(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha1: Array(Insecure.SHA1.hash(data: data))
        case .sha2_256: Array(SHA256.hash(data: data))
        case .sha2_384: Array(SHA384.hash(data: data))
        case .sha2_512: Array(SHA512.hash(data: data))
        case .sha3_256: Array(SHA3_256.hash(data: data))
        case .sha3_384: Array(SHA3_384.hash(data: data))
        case .sha3_512: Array(SHA3_512.hash(data: data))
        case .none: data
        }
    }

    /// HMAC of `data` under `key`; nil for `none`.
    func hmac(_ data: [UInt8], key: [UInt8]) -> [UInt8]? {
        let key = SymmetricKey(data: key)
        switch self {
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
        case .sha2_256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case .sha2_384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: key))
        case .sha2_512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        case .sha3_256: return Array(HMAC<SHA3_256>.authenticationCode(for: data, using: key))
        case .sha3_384: return Array(HMAC<SHA3_384>.authenticationCode(for: data, using: key))
        case .sha3_512: return Array(HMAC<SHA3_512>.authenticationCode(for: data, using: key))
        case .none: return nil
        }
    }

    /// The DER `DigestInfo` header PKCS#1 v1.5 signatures put before the digest (RFC 8017 §9.2 note 1; the SHA-3
    /// object identifiers are NIST's id-sha3-256/384/512, 2.16.840.1.101.3.4.2.8–10).
    var digestInfoPrefix: [UInt8] {
        switch self {
        case .sha3_256: Self.sha3DigestInfo(oid: 0x08, length: 0x20)
        case .sha3_384: Self.sha3DigestInfo(oid: 0x09, length: 0x30)
        case .sha3_512: Self.sha3DigestInfo(oid: 0x0A, length: 0x40)
        case .sha1: [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14]
        case .sha2_256:
            [
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ]
        case .sha2_384:
            [
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ]
        case .sha2_512:
            [
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ]
        case .none: []
        }
    }

    /// SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.2.`oid`, NULL }, OCTET STRING (`length` bytes follow) }.
    private static func sha3DigestInfo(oid: UInt8, length: UInt8) -> [UInt8] {
        [
            0x30, 0x11 + length, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, oid, 0x05,
            0x00, 0x04, length,
        ]
    }
}
