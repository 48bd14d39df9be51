/// A transit operation that failed. The message is the exact text Vault/OpenBao puts in `{"errors":[…]}`
/// and `status` the HTTP status it answers with, so the HTTP layer maps this one-to-one.
package enum TransitError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Bad input, a policy violation on the key, or a failed authentication check: HTTP 400.
    case badRequest(String)
    /// A failure of the server itself: HTTP 500. Where OpenBao answers 500 for a client's mistake (a backup of a key
    /// that forbids it, a malformed import or restore, a missing version), vhsmd answers 400 (`badRequest`).
    case internalError(String)

    /// The message exactly as Vault words it.
    var message: String {
        switch self {
        case .badRequest(let message), .internalError(let message): message
        }
    }

    /// The HTTP status Vault answers with.
    var status: Int {
        switch self {
        case .badRequest: 400
        case .internalError: 500
        }
    }

    package var description: String { message }
}

extension TransitError {
    // Ciphertext and signature framing (policy.go, DecryptWithFactory / VerifySignatureWithOptions).
    static let tooOld = badRequest("ciphertext or signature version is disallowed by policy (too old)")
    static let noPrefix = badRequest("invalid ciphertext: no prefix")
    static let wrongNumberOfFields = badRequest("invalid ciphertext: wrong number of fields")
    static let versionNotDecodable = badRequest("invalid ciphertext: version number could not be decoded")
    static let versionTooNew = badRequest("invalid ciphertext: version is too new")
    static let badCiphertextBase64 = badRequest("invalid ciphertext: could not decode base64")
    static let badCiphertextLength = badRequest("invalid ciphertext length")
    static let authenticationFailed = badRequest("cipher: message authentication failed")

    // Key derivation and nonces.
    static let missingContext = badRequest(
        "missing 'context' for key derivation; the key was created using a derived key, which means additional, "
            + "per-request information must be included in order to perform operations with the key")
    static let nonceNotAllowed = badRequest("nonce provided when not allowed")

    // Versions requested for encryption, signing and HMAC.
    static let encryptionVersionNegative = badRequest("requested version for encryption is negative")
    static let encryptionVersionTooHigh = badRequest(
        "requested version for encryption is higher than the latest key version")
    static let encryptionVersionTooLow = badRequest(
        "requested version for encryption is less than the minimum encryption key version")
    static let signingVersionNegative = badRequest("requested version for signing is negative")
    static let signingVersionTooHigh = badRequest("requested version for signing is higher than the latest key version")
    static let signingVersionTooLow = badRequest(
        "requested version for signing is less than the minimum encryption key version")
    static let noSuchVersion = badRequest("no such key version")

    // Key management.
    static let convergentNeedsDerived = badRequest("convergent encryption requires derivation to be enabled")
    static let autoRotatePeriodTooShort = badRequest("auto rotate period must be 0 to disable or at least an hour")
    static let notExportable = badRequest("private key material is not exportable")

    /// `message encryption not supported for key type …` and friends.
    static func unsupported(_ operation: String, _ type: TransitKeyType) -> TransitError {
        .badRequest("\(operation) not supported for key type \(type.rawValue)")
    }
}
