import FoundationEssentials
import HTTPTypes
import SNP

/// One API request after HTTP: Vault's logical operation, the path below `/v1/`, the body, the token.
struct VaultRequest: Sendable {
    enum Operation: String, Sendable {
        case read, create, update, delete, list, patch
    }

    var operation: Operation
    /// The path below `/v1/`, without leading or trailing slashes.
    var path: String
    var body: JSONValue
    var query: [String: String]
    var token: String?
    /// Was the request a HEAD (answered like GET, without a body)?
    var isHead: Bool = false
    /// `X-Vault-Wrap-TTL` in seconds: the answer is to be response-wrapped (nil: not asked).
    var wrapTTL: Int64? = nil
    /// The `Content-Type` header (KV's PATCH requires `application/merge-patch+json`).
    var contentType: String? = nil
    /// The authenticated caller, set by the dispatcher before a backend sees the request.
    var caller: Caller?
    /// The caller's ACL, for backends that must tell create from update (transit's encrypt upsert).
    var acl: ACL?
    /// The peer's IP address and port (the audit log's `request.remote_address` and `remote_port`); nil in-process.
    var remoteAddress: String? = nil
    var remotePort: Int? = nil
    /// The request id: the envelope's `request_id` and the audit lines' `request.id`.
    var id = RequestID.make()
    /// The request target as received (`/v1/…?…`): where a standby sends the client on the active node.
    var target = ""

    /// Go's strconv.ParseBool, which Vault uses for `?list=` and string booleans.
    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }

    /// Maps an HTTP method (and `?list=true`) to the logical operation; POST and PUT are both `update` here,
    /// and a handler decides create vs update where the ACL cares.
    static func operation(method: HTTPRequest.Method, query: [String: String]) -> Operation? {
        switch method {
        case .get, .head: query["list"].flatMap(parseBool) == true ? .list : .read
        case .post, .put: .update
        case .delete: .delete
        case .patch: .patch
        default: method.rawValue == "LIST" || method.rawValue == "LINK" ? .list : nil
        }
    }
}

/// A successful answer: `data` (and/or `auth`) in the envelope with status 200, or 204 with no body.
struct VaultReply: Sendable {
    var status: HTTPResponse.Status = .ok
    var data: JSONValue?
    var auth: JSONValue?
    /// Extra top-level members (legacy endpoints such as `sys/policy` duplicate their data at the top).
    var topLevel: [String: JSONValue] = [:]
    /// Endpoints like `sys/health` answer with a bare object, not the envelope.
    var bare: JSONValue?
    /// Endpoints like `sys/metrics?format=prometheus` answer with text, not JSON.
    var raw: RawBody?
    /// A response-wrapped answer: the wrapping token's `wrap_info` (data and auth are then empty).
    var wrapInfo: JSONValue?
    /// The `auth` block the audit log records (token and accessor hashed) when the answer carries it sealed instead
    /// (`auth/sev-snp/login` with `wrap_to_public_key`): never sent.
    var auditedAuth: JSONValue?

    /// The envelope's `lease_duration` (seconds); `mountDefaultLease` asks for the mount's default lease TTL.
    var leaseDuration: Int64?

    static let mountDefaultLease: Int64 = -1

    struct RawBody: Sendable {
        var contentType: String
        var bytes: [UInt8]
        /// The `Cache-Control` header (the identity tokens' discovery document and JWKS).
        var cacheControl: String? = nil
    }

    static let noContent = VaultReply(status: .noContent)

    static func data(_ object: [String: JSONValue]) -> VaultReply { VaultReply(data: .object(object)) }

    /// An answer with no data and Vault's `warnings`.
    static func warning(_ text: String, status: HTTPResponse.Status = .ok) -> VaultReply {
        VaultReply(status: status, topLevel: ["warnings": .array([.string(text)])])
    }
}

/// Who is calling: the token's entry and its hashed key (the token itself is not kept).
struct Caller: Sendable {
    var key: [UInt8]
    var entry: TokenStore.Entry
}

/// Request IDs: random (version 4) UUIDs in lower case, from BoringSSL's DRBG. Foundation's `UUID()` on Linux
/// opens /dev/urandom for every identifier, which cost more than the AES of an encrypt request.
enum RequestID {
    static func make() -> String { Hex.randomUUID(from: TransitRandom.bytes(16)) }
}
