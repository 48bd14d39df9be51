/// Why the client could not get vhsmd's evidence: each case reads as a sentence naming the server, what failed and
/// what to check. (A verdict's problems, by contrast, are about evidence that arrived: `EvidenceVerdict`.)
public enum AttestedTLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL is not `https://HOST[:PORT]`.
    case badURL(url: String, reason: String)
    /// No TCP connection: refused, no route, a name that does not resolve.
    case unreachable(place: String, reason: String)
    /// Connecting, the handshake or the answer took longer than the client's timeout.
    case timedOut(place: String, after: Duration)
    /// The TLS handshake failed (a plain-HTTP port, no common protocol version) or presented no certificate.
    case handshakeFailed(place: String, reason: String)
    /// The server answered with another status than 200, with Vault's `errors` (and `Retry-After` for 429).
    case serverError(place: String, status: Int, errors: [String], retryAfter: String?)
    /// The answer is not the documented JSON (syntax, a missing field, a wrong type, bad hex or base64).
    case malformedAnswer(place: String, reason: String)
    /// The answer is larger than `AttestedTLSClient.maximumAnswer`.
    case answerTooLarge(place: String, limit: Int)
    /// The connection closed before the answer was complete.
    case incompleteAnswer(place: String)

    public var description: String {
        switch self {
        case .badURL(let url, let reason):
            return "the URL '\(url)' \(reason)"
        case .unreachable(let place, let reason):
            return "cannot reach \(place): \(reason) — check the URL and that vhsmd is running"
        case .timedOut(let place, let after):
            return "\(place) did not answer within \(Self.seconds(after)) — check the URL, the network and that "
                + "vhsmd is running (or raise --timeout)"
        case .handshakeFailed(let place, let reason):
            return "the TLS handshake with \(place) failed: \(reason) — is this vhsmd's HTTPS listener?"
        case .serverError(let place, let status, let errors, let retryAfter):
            var text = "the server \(place) answered \(status)"
            text += errors.isEmpty ? " without an error message" : ": " + errors.joined(separator: "; ")
            if let retryAfter { text += " (Retry-After: \(retryAfter) s)" }
            if status == 404 { text += " — is this vhsmd with sys/attestation (issue 14 or later)?" }
            return text
        case .malformedAnswer(let place, let reason):
            return "\(place) answered sys/attestation with \(reason): not the documented vhsm-attested-tls-v1 answer"
        case .answerTooLarge(let place, let limit):
            return "\(place) sent an answer larger than \(limit >> 10) KiB, more than sys/attestation ever sends: "
                + "refused unread"
        case .incompleteAnswer(let place):
            return "\(place) closed the connection before its answer was complete"
        }
    }

    private static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
