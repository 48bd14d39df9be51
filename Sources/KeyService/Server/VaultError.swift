import HTTPTypes

/// A failed request in Vault's shape: a status and `{"errors": [...]}`, optionally with a `data` body (KV v2's
/// deleted version, transit's batch results).
struct VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    var status: HTTPResponse.Status
    var messages: [String]
    var data: JSONValue?
    /// What an unexpected failure really was (a storage, barrier or audit error, …): for the server's log and the
    /// console only. Clients see `messages`, which then say no more than "internal error".
    var detail: String? = nil
    /// True when `messages` are for the client although `detail` is set (a storage failure's sentence): the client
    /// gets them with the request ID, the log gets `detail`.
    var disclosesMessages = false
    /// `Retry-After` in whole seconds (at least 1) for a 429 or 503 the client may retry.
    var retryAfter: Int? = nil
    /// `Location` of a 307 (a standby sending the client to the active node).
    var location: String? = nil

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
    /// An unexpected failure: a 500 whose body says "internal error" (and the request ID, added when it is
    /// answered); `detail` names the underlying error for the log.
    static func internalError(_ detail: String) -> VaultError {
        var error = VaultError(status: .internalServerError, messages: ["internal error"])
        error.detail = detail
        return error
    }

    /// A failure of the store below an engine: a `StorageError` the operator can act on (a full, failing or
    /// read-only data directory) is a 500 whose message is its sentence, naming the data directory; anything else is
    /// `internalError(detail)`. `detail` (with the storage path) goes to the log either way.
    static func storage(_ error: any Error, detail: String) -> VaultError {
        if let refused = error as? StandbyWriteRefused { return .standby(refused) }
        if let unavailable = error as? StorageUnavailable {
            var failure = VaultError(
                status: .serviceUnavailable, messages: ["\(unavailable); retry in a moment"])
            failure.detail = detail
            failure.disclosesMessages = true
            failure.retryAfter = 1
            return failure
        }
        guard let error = error as? StorageError, let message = error.clientMessage else {
            return internalError(detail)
        }
        var failure = VaultError(status: .internalServerError, messages: [message])
        failure.detail = detail
        failure.disclosesMessages = true
        return failure
    }

    /// A write on a node that is not (or no longer) the active one: 503, retryable against the active node.
    static func standby(_ refused: StandbyWriteRefused) -> VaultError {
        var failure = VaultError(status: .serviceUnavailable, messages: [refused.description])
        failure.retryAfter = 1
        return failure
    }

    /// A standby's answer to a request it does not serve itself: 307 to the same path on the active node
    /// (`Location`), as Vault's standbys answer when they do not forward.
    static func redirect(to location: String) -> VaultError {
        var redirect = VaultError(status: .temporaryRedirect, messages: [])
        redirect.location = location
        return redirect
    }

    /// The messages a client gets for request `id`. An internal error's detail is written to standard error with
    /// the request ID instead, and the client gets "internal error" and that ID to quote.
    func clientMessages(requestID id: String) -> [String] {
        guard let detail else { return messages }
        complain("vhsmd: request \(id) failed with an internal error: \(detail)")
        if disclosesMessages { return messages.map { "\($0) (request id \(id))" } }
        return ["internal error (request id \(id); the server log has the details)"]
    }

    var description: String { "\(status.code) \(detail ?? messages.joined(separator: "; "))" }
}
