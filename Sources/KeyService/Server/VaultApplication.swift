import CLinux
import FoundationEssentials
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix

/// The request context: Vault's 32 MiB body limit.
struct VaultRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    var maxUploadSize: Int { 32 << 20 }
}

/// Builds the HTTP application. Served connections go through `VaultHTTP1Channel` (the /v1 API on the event loop,
/// see VaultHTTPHandler.swift); the router serves the same API to Hummingbird's in-process test client.
func buildApplication(
    core: VaultCore, host: String, port: Int, logger: Logger, tls: TLSConfiguration? = nil,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) throws
    -> some ApplicationProtocol
{
    let router = Router(context: VaultRequestContext.self)
    // LIST reaches the router as LINK (see ListVerbRewriter), or as GET ?list=true.
    let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, ListVerbRewriter.rewrittenMethod]
    for method in methods {
        router.on("/v1/**", method: method) { request, context in
            await respond(to: request, context: context, core: core)
        }
    }
    let server = HTTPServerBuilder.vaultHTTP1(core: core)
    return Application(
        router: router, server: try tls.map { try .tls(server, tlsConfiguration: $0) } ?? server,
        configuration: .init(address: .hostname(host, port: port), serverName: "vhsmd"),
        onServerRunning: onServerRunning, eventLoopGroupProvider: .shared(ServerThreads.group), logger: logger)
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
    /// An API request from HTTP: the logical operation (LIST arrives as LINK or `?list=true`), the path below
    /// `/v1/` without trailing slashes, the JSON body (nil: it was over the limit), the token from `X-Vault-Token` or
    /// `Authorization: Bearer`. `header` returns a field's values joined by ", ", or nil.
    init(
        method: HTTPRequest.Method, uri: URI, body: [UInt8]?, header: (String) -> String?
    ) throws(VaultError) {
        let query = Dictionary(
            uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { a, _ in a })
        guard let operation = VaultRequest.operation(method: method, query: query) else {
            throw VaultError.unsupportedOperation(uri.path)
        }
        // Go's router cleans the path (`secret//data/x` is `secret/data/x`); trailing slashes go too.
        let path = uri.path.dropFirst("/v1/".count).split(separator: "/").joined(separator: "/")
        guard let body else {
            throw VaultError(status: .contentTooLarge, messages: ["request body too large (limit 32 MiB)"])
        }
        let json = try JSONValue.parse(body)
        switch json {
        case .object, .null: break
        default: throw .badRequest("failed to decode JSON input: the request body must be a JSON object")
        }
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
        self.init(operation: operation, path: path, body: json, query: query, token: token, isHead: method == .head)
        wrapTTL = try Self.wrapTTL(header("X-Vault-Wrap-TTL"))
        if method == .patch { contentType = header("Content-Type") }
    }
}

/// Turns an HTTP request into a `VaultRequest`, and the reply or error into Vault's JSON.
func respond(to request: Request, context: VaultRequestContext, core: VaultCore) async -> Response {
    var requestID = ""
    do {
        // nil when over the limit (the request is refused with 413 after the verb is checked).
        let body = try? await Array(request.body.collect(upTo: context.maxUploadSize).readableBytesView)
        let vaultRequest = try VaultRequest(
            method: request.method, uri: request.uri, body: body,
            header: { name in
                let values = request.headers[values: HTTPField.Name(name)!]
                return values.isEmpty ? nil : values.joined(separator: ", ")
            })
        requestID = vaultRequest.id
        let reply = try await core.handle(vaultRequest)
        let response = encode(reply, id: vaultRequest.id)
        return vaultRequest.isHead ? Response(status: response.status, headers: response.headers) : response
    } catch {
        return encode(error, id: requestID.isEmpty ? RequestID.make() : requestID)
    }
}

/// An answer as bytes, for both HTTP paths.
struct VaultHTTPAnswer: Sendable {
    var status: HTTPResponse.Status
    var contentType: String?
    var body: [UInt8]

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
    }

    var response: Response {
        guard let contentType else { return Response(status: status) }
        return Response(
            status: status, headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

func encode(_ reply: VaultReply, id: String) -> Response { VaultHTTPAnswer(reply, id: id).response }

func encode(_ error: VaultError, id: String) -> Response { VaultHTTPAnswer(error, id: id).response }

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
