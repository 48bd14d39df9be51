import HTTPTypes

/// A failed request in Vault's shape: a status and `{"errors": [...]}`, optionally with a `data` body (KV v2's
/// deleted version, transit's batch results).
struct VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    var status: HTTPResponse.Status
    var messages: [String]
    var data: JSONValue?

    init(status: HTTPResponse.Status, messages: [String], data: JSONValue? = nil) {
        self.status = status
        self.messages = messages
        self.data = data
    }

    static func badRequest(_ message: String) -> VaultError { VaultError(status: .badRequest, messages: [message]) }
    /// Vault answers 403 (never 401) for a missing, unknown or revoked token and for ACL denials.
    static let permissionDenied = VaultError(status: .forbidden, messages: ["permission denied"])
    static let notFound = VaultError(status: .notFound, messages: [])
    static func unsupportedPath(_ path: String) -> VaultError {
        VaultError(status: .notFound, messages: ["no handler for route \"\(path)\". route entry not found."])
    }
    static func unsupportedOperation(_ path: String) -> VaultError {
        VaultError(status: .methodNotAllowed, messages: ["unsupported operation"])
    }
    static func internalError(_ message: String) -> VaultError {
        VaultError(status: .internalServerError, messages: ["1 error occurred:\n\t* \(message)\n\n"])
    }

    var description: String { "\(status.code) \(messages.joined(separator: "; "))" }
}
