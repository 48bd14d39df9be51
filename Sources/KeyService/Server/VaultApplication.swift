import FoundationEssentials
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore

/// The request context: Vault's 32 MiB body limit.
struct VaultRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    var maxUploadSize: Int { 32 << 20 }
}

/// Builds the HTTP application: every `/v1/**` request, whatever its verb (LIST included), goes to `VaultCore`.
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
    return Application(
        router: router, server: try tls.map { try .tls(.vaultHTTP1, tlsConfiguration: $0) } ?? .vaultHTTP1,
        configuration: .init(address: .hostname(host, port: port), serverName: "vhsmd"),
        onServerRunning: onServerRunning, logger: logger)
}

/// Turns an HTTP request into a `VaultRequest`, and the reply or error into Vault's JSON.
func respond(to request: Request, context: VaultRequestContext, core: VaultCore) async -> Response {
    var requestID = ""
    do {
        let query = Dictionary(
            request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { a, _ in a })
        guard let operation = VaultRequest.operation(method: request.method, query: query) else {
            throw VaultError.unsupportedOperation(request.uri.path)
        }
        var path = String(request.uri.path.dropFirst("/v1/".count))
        while path.hasSuffix("/") { path.removeLast() }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: context.maxUploadSize) } catch {
            throw VaultError(status: .contentTooLarge, messages: ["request body too large (limit 32 MiB)"])
        }
        let body = try JSONValue.parse(Array(buffer.readableBytesView))
        var token = request.headers[HTTPField.Name("X-Vault-Token")!]
        if token == nil, let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            token = String(authorization.dropFirst(7))
        }
        let vaultRequest = VaultRequest(
            operation: operation, path: path, body: body, query: query, token: token,
            isHead: request.method == .head)
        requestID = vaultRequest.id
        let reply = try await core.handle(vaultRequest)
        let response = encode(reply, id: vaultRequest.id)
        return vaultRequest.isHead ? Response(status: response.status, headers: response.headers) : response
    } catch let error as VaultError {
        return encode(error, id: requestID.isEmpty ? RequestID.make() : requestID)
    } catch {
        return encode(VaultError.internalError("\(error)"), id: requestID.isEmpty ? RequestID.make() : requestID)
    }
}

private func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
    // hvac reads `errors` only when Content-Type is exactly application/json.
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serialized)))
}

func encode(_ reply: VaultReply, id: String) -> Response {
    if reply.status == .noContent { return Response(status: .noContent) }
    if let raw = reply.raw {
        return Response(
            status: reply.status, headers: [.contentType: raw.contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: raw.bytes)))
    }
    if let bare = reply.bare { return json(reply.status, bare) }
    return json(reply.status, envelope(id: id, data: reply.data, auth: reply.auth, extra: reply.topLevel))
}

func encode(_ error: VaultError, id: String) -> Response {
    if let data = error.data {
        var body = envelope(id: id, data: data, auth: nil, extra: [:])
        if case .object(var members) = body {
            members["errors"] = .array(error.messages.map(JSONValue.string))
            body = .object(members)
        }
        return json(error.status, body)
    }
    return json(error.status, .object(["errors": .array(error.messages.map(JSONValue.string))]))
}

/// Vault's success envelope.
func envelope(id: String, data: JSONValue?, auth: JSONValue?, extra: [String: JSONValue]) -> JSONValue {
    var members: [String: JSONValue] = [
        "request_id": .string(id), "lease_id": .string(""), "renewable": .bool(false),
        "lease_duration": .int(0), "data": data ?? .null, "wrap_info": .null, "warnings": .null, "auth": auth ?? .null,
    ]
    for (key, value) in extra where members[key] == nil { members[key] = value }
    return .object(members)
}
