/// The `vault:v<N>:<payload>` framing shared by ciphertexts, signatures and HMACs.
///
/// Parsing follows Vault's order of checks exactly (prefix, field count, version number, too new, too old,
/// then the payload encoding), because clients see whichever error comes first.
package struct TransitCiphertext: Sendable, Equatable {
    /// What is being parsed; each kind has its own error wording in Vault.
    package enum Kind: Sendable {
        case ciphertext, signature, hmac
    }

    package var version: Int
    /// The text after the second colon, still encoded.
    package var encodedPayload: String

    static let prefix = "vault:v"

    /// `vault:v<version>:<base64std(payload)>`.
    package static func encode(version: Int, payload: [UInt8]) -> String {
        "\(prefix)\(version):\(TransitBase64.encode(payload))"
    }

    /// `vault:v<version>:<encoded>`, for payloads already encoded (JWS signatures).
    static func encode(version: Int, encoded: String) -> String { "\(prefix)\(version):\(encoded)" }

    /// Splits and checks the framing against the key's versions. `v0` counts as `v1` for ciphertexts and
    /// signatures, as in Vault.
    package init(parsing text: String, kind: Kind, latestVersion: Int, minDecryptionVersion: Int) throws(TransitError) {
        let noun: String
        switch kind {
        case .ciphertext: noun = "ciphertext"
        case .signature: noun = "signature"
        case .hmac: noun = "HMAC"
        }
        guard text.hasPrefix(Self.prefix) else {
            throw .badRequest(kind == .hmac ? "invalid HMAC to verify: no prefix" : "invalid \(noun): no prefix")
        }
        let rest = text.dropFirst(Self.prefix.count)
        guard let colon = rest.firstIndex(of: ":") else { throw .badRequest("invalid \(noun): wrong number of fields") }
        guard var version = Int(rest[..<colon]) else {
            throw .badRequest("invalid \(noun): version number could not be decoded")
        }
        if version == 0, kind != .hmac { version = 1 }
        guard version <= latestVersion else { throw .badRequest("invalid \(noun): version is too new") }
        if minDecryptionVersion > 0, version < minDecryptionVersion {
            throw kind == .hmac ? .badRequest("cannot verify HMAC: version is too old (disallowed by policy)") : .tooOld
        }
        self.version = version
        self.encodedPayload = String(rest[rest.index(after: colon)...])
    }

    /// The payload decoded as standard base64, with Vault's ciphertext error.
    package func ciphertextBytes() throws(TransitError) -> [UInt8] {
        do { return try TransitBase64.decode(encodedPayload) } catch { throw .badCiphertextBase64 }
    }
}
