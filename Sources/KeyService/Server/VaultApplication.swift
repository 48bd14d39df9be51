import CLinux
import FoundationEssentials
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix

/// Builds the HTTP application. Every connection goes through `VaultHTTP1Channel` (ListVerbRewriter → NIO's
/// HTTP/1.1 codec → `VaultHTTPHandler`, see VaultHTTPHandler.swift): there is one request path, the one that
/// ships, and in-process tests drive it with Hummingbird's live test client. Hummingbird's `Application` wants a
/// responder; the server never calls it, and it answers 500 to anything that does.
func buildApplication(
    core: VaultCore, host: String, port: Int, logger: Logger, tls: TLSConfiguration? = nil,
    limits: ListenerLimits = ListenerLimits(),
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) throws
    -> some ApplicationProtocol
{
    let server = HTTPServerBuilder.vaultHTTP1(core: core, limits: limits)
    return Application(
        responder: NoResponder(), server: try tls.map { try .tls(server, tlsConfiguration: $0) } ?? server,
        configuration: .init(address: .hostname(host, port: port), serverName: "vhsmd"),
        onServerRunning: onServerRunning, eventLoopGroupProvider: .shared(ServerThreads.group), logger: logger)
}

/// The responder Hummingbird's `Application` requires. `VaultHTTP1Channel` never calls it: a caller that does
/// (Hummingbird's `.router` test client) gets a 500 instead of a second, untested request path.
struct NoResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        Response(status: .internalServerError)
    }
}

/// The event loops that serve connections: one thread per CPU this process may run on.
///
/// NIO's singleton group has one thread per CPU of the machine (or of the cgroup's quota), even when the process
/// is confined to fewer CPUs (`taskset`, a systemd `CPUAffinity=`); two loops on one CPU then take turns in
/// scheduler time slices of milliseconds, and a request waits for its loop's turn. Go sizes GOMAXPROCS by the
/// same affinity mask.
enum ServerThreads {
    static let count: Int = {
        let allowed = Int(clinux_affinity_cpu_count())
        return allowed > 0 ? min(allowed, System.coreCount) : System.coreCount
    }()

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: count)
}

extension VaultRequest {
    /// An API request from an HTTP head: the logical operation (LIST arrives as LINK or `?list=true`), the path
    /// below `/v1/` without trailing slashes, the token from `X-Vault-Token` or `Authorization: Bearer`; the body is
    /// added by `setBody` once the token has been checked. `header` returns a field's values joined by ", ", or nil.
    init(method: HTTPRequest.Method, uri: URI, header: (String) -> String?) throws(VaultError) {
        let query = Dictionary(
            uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { a, _ in a })
        guard let operation = VaultRequest.operation(method: method, query: query) else {
            throw VaultError.unsupportedOperation(uri.path)
        }
        // Go's router cleans the path (`secret//data/x` is `secret/data/x`); trailing slashes go too.
        let path = uri.path.dropFirst("/v1/".count).split(separator: "/").joined(separator: "/")
        // vhsmd has no namespaces but the root one.
        if let namespace = header("X-Vault-Namespace")?.trimmedWhitespace,
            !["", "/", "root", "root/"].contains(namespace)
        {
            throw VaultError(status: .notFound, messages: ["namespace not found"])
        }
        var token = header("X-Vault-Token")
        if token == nil, let authorization = header("Authorization"), authorization.hasPrefix("Bearer ") {
            token = String(authorization.dropFirst(7))
        }
        self.init(operation: operation, path: path, body: .null, query: query, token: token, isHead: method == .head)
        target = uri.description
        wrapTTL = try Self.wrapTTL(header("X-Vault-Wrap-TTL"))
        if method == .patch { contentType = header("Content-Type") }
    }

    /// Parses the JSON body, which must be an object (or empty).
    mutating func setBody(_ bytes: [UInt8]) throws(VaultError) {
        let json = try JSONValue.parse(bytes)
        switch json {
        case .object, .null: break
        default: throw .badRequest("failed to decode JSON input: the request body must be a JSON object")
        }
        body = json
    }
}

/// An answer as bytes, for both HTTP paths.
struct VaultHTTPAnswer: Sendable {
    var status: HTTPResponse.Status
    var contentType: String?
    var body: [UInt8]
    /// The `Retry-After` header's seconds, when the answer has one (a rate-limited request).
    var retryAfter: Int? = nil
    /// The `Cache-Control` header, when the answer has one.
    var cacheControl: String? = nil
    /// The `Location` header of a redirect to the active node.
    var location: String? = nil

    init(status: HTTPResponse.Status, contentType: String?, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    init(_ outcome: Result<VaultReply, VaultError>, id: String) {
        switch outcome {
        case .success(let reply): self.init(reply, id: id)
        case .failure(let error): self.init(error, id: id)
        }
    }

    /// hvac reads `errors` only when Content-Type is exactly application/json.
    private static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> VaultHTTPAnswer {
        VaultHTTPAnswer(status: status, contentType: "application/json", body: value.serialized)
    }

    init(_ reply: VaultReply, id: String) {
        if reply.status == .noContent {
            self.init(status: .noContent, contentType: nil, body: [])
        } else if let raw = reply.raw {
            self.init(status: reply.status, contentType: raw.contentType, body: raw.bytes)
            cacheControl = raw.cacheControl
        } else if let bare = reply.bare {
            self = Self.json(reply.status, bare)
        } else if let wrapInfo = reply.wrapInfo {
            // OpenBao answers a wrapped request with an empty request_id.
            self = Self.json(reply.status, envelope(id: "", data: nil, auth: nil, extra: ["wrap_info": wrapInfo]))
        } else {
            self = Self.json(
                reply.status,
                envelope(
                    id: id, data: reply.data, auth: reply.auth, extra: reply.topLevel,
                    leaseDuration: max(0, reply.leaseDuration ?? 0)))
        }
    }

    init(_ error: VaultError, id: String) {
        let messages = error.clientMessages(requestID: id)
        if let data = error.data {
            var body = envelope(id: id, data: data, auth: nil, extra: [:])
            if case .object(var members) = body {
                // Vault leaves `errors` out of an answer that carries data and no message (batch failures).
                if !messages.isEmpty { members["errors"] = .array(messages.map(JSONValue.string)) }
                body = .object(members)
            }
            self = Self.json(error.status, body)
        } else {
            self = Self.json(error.status, .object(["errors": .array(messages.map(JSONValue.string))]))
        }
        retryAfter = error.retryAfter.map { max(1, $0) }
        location = error.location
    }
}

/// Vault's success envelope.
func envelope(
    id: String, data: JSONValue?, auth: JSONValue?, extra: [String: JSONValue], leaseDuration: Int64 = 0
) -> JSONValue {
    var members: [String: JSONValue] = [
        "request_id": .string(id), "lease_id": .string(""), "renewable": .bool(false),
        "lease_duration": .int(leaseDuration), "data": data ?? .null, "wrap_info": .null, "warnings": .null,
        "auth": auth ?? .null,
    ]
    for (key, value) in extra where members[key] == nil || key == "warnings" || key == "wrap_info" {
        members[key] = value
    }
    return .object(members)
}
