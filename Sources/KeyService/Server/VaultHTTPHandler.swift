import FoundationEssentials
import Glibc
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The listener's bounds on what a client can make the server do before it authenticates. Set in the config file's
/// `listener` object under these names (Vault's where Vault has the setting); durations in seconds.
struct ListenerLimits: Sendable, Equatable {
    /// `max_request_size`: the largest body a mount path (KV, transit) or `sys/wrapping/wrap` takes, in bytes;
    /// Vault's 32 MiB.
    var maxRequestSize = 32 << 20
    /// `max_sys_request_size`: the largest body of the other `sys/` and `auth/` paths (policies, mounts, tokens).
    var maxSysRequestSize = 1 << 20
    /// `max_connections`: connections open at once; one more is closed as soon as it is accepted.
    var maxConnections = 1024
    /// `http_read_header_timeout`: a request head must arrive within this from its first byte, and a new
    /// connection's first head (TLS handshake included) within this from the accept; Vault's 10 s.
    var readHeaderTimeout = TimeAmount.seconds(10)
    /// `http_read_timeout`: a whole request, head and body, must arrive within this from its first byte; Vault's 30 s.
    var readTimeout = TimeAmount.seconds(30)
    /// `http_idle_timeout`: a keep-alive connection that waits this long for its next request is closed; Vault's
    /// 5 minutes.
    var idleTimeout = TimeAmount.minutes(5)

    /// The paths that need no token, and those whose body is read before a token is checked (the wrapping calls,
    /// the OpenAPI document), take small bodies only (sys/init's are a few fields, a wrapping token is short).
    static let unauthenticatedRequestSize = 64 << 10
    /// Bodies up to this are parsed on the event loop; larger ones in a task, once the token has been checked.
    static let onLoopBodySize = 64 << 10

    /// The largest body a request to `path` (below `/v1/`, cleaned) may carry.
    func bodyLimit(path: String) -> Int {
        if VaultCore.unauthenticated.contains(path) || VaultCore.bodyWithoutToken.contains(path)
            || IdentityOIDC.unauthenticated.contains(path)
        {
            return Self.unauthenticatedRequestSize
        }
        // An auth method's login and nonce (no token; a report and its certificates are a few KiB).
        if path.hasPrefix("auth/"), let last = path.split(separator: "/").last,
            SevSNPAuthBackend.unauthenticated.contains(String(last))
        {
            return Self.unauthenticatedRequestSize
        }
        if path == "sys/wrapping/wrap" { return maxRequestSize }
        if path.hasPrefix("sys/") || path.hasPrefix("auth/") { return min(maxSysRequestSize, maxRequestSize) }
        return maxRequestSize
    }
}

/// Counts a listener's open connections against `ListenerLimits.maxConnections`.
final class ConnectionCount: Sendable {
    private let open = Atomic<Int>(0)

    /// Takes a place; false (and nothing taken) when `limit` are open.
    func enter(limit: Int) -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now > limit else { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func leave() { open.wrappingSubtract(1, ordering: .relaxed) }

    var current: Int { open.load(ordering: .relaxed) }
}

/// The server's connections: Hummingbird runs the listener, TLS, graceful shutdown and the per-connection tasks;
/// each connection's pipeline is ListVerbRewriter → NIO's HTTP/1.1 server codec (with pipelining assistance) →
/// `ProtocolErrorHandler` (a request that cannot be read is answered 400 or 431 with a sentence) → `VaultHTTPHandler`, which answers on the event loop whatever needs no wait. A connection
/// over `maxConnections` is closed at once.
struct VaultHTTP1Channel: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }

    let core: VaultCore
    let limits: ListenerLimits
    let connections: ConnectionCount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        guard connections.enter(limit: limits.maxConnections) else {
            return channel.close().map { Connection(channel: channel) }.recover { _ in Connection(channel: channel) }
        }
        let connections = self.connections
        channel.closeFuture.whenComplete { _ in connections.leave() }
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(
                ByteToMessageHandler(
                    ListVerbRewriter(limits: limits), maximumBufferSize: ListVerbRewriter.maximumBufferSize))
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: true, withErrorHandling: false, withOutboundHeaderValidation: false)
            try pipeline.addHandler(ProtocolErrorHandler())
            try pipeline.addHandler(VaultHTTPHandler(core: core, limits: limits))
            return Connection(channel: channel)
        }
    }

    /// The connection lives until it closes: the client hangs up, an error, a timeout, or quiescing at shutdown
    /// (NIO's pipelining handler closes an idle connection, or a busy one after its response).
    func handle(value: Connection, logger: Logger) async {
        await withTaskCancellationHandler {
            try? await value.channel.closeFuture.get()
        } onCancel: {
            value.channel.close(promise: nil)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 that accepts Vault's LIST verb and serves `/v1/**` through `core`, within `limits`.
    static func vaultHTTP1(core: VaultCore, limits: ListenerLimits = ListenerLimits()) -> HTTPServerBuilder {
        HTTPServerBuilder { _ in VaultHTTP1Channel(core: core, limits: limits, connections: ConnectionCount()) }
    }
}

/// One connection's requests. At the head: the request is made from it (method, path, token), the path's body
/// limit is set, and when the token is certainly not valid (none, or one the token cache knows to be unknown) the
/// body is discarded unread. At the end: a small body is parsed and the request answered on the event loop when
/// `VaultCore.handleOnLoop` can (no storage write, no audit line); anything else, large bodies included (their
/// token is checked before they are parsed), is answered by a task whose answer is written back on the loop. NIO's
/// pipelining handler holds later requests until the answer is written.
///
/// Timers: a new connection must send its first head within `readHeaderTimeout` (this covers the TLS handshake),
/// and a connection without a request in flight is closed after `idleTimeout`. `ListVerbRewriter` bounds each
/// request's own reading.
final class VaultHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: VaultCore
    private let limits: ListenerLimits
    private var head: HTTPRequestHead?
    /// The request made from the head, or why none could be.
    private var request: Result<VaultRequest, VaultError>?
    private var body: ByteBuffer?
    private var bodyLimit = 0
    private var bodyTooLarge = false
    /// The token cannot pass: the body is discarded and the request refused.
    private var refused = false
    private var timer: Scheduled<Void>?
    /// A request has been read and its answer is not written yet.
    private var answering = false
    /// The client has closed its side (Hummingbird allows half-closure): the connection is closed once nothing is
    /// owed to it.
    private var inputClosed = false

    init(core: VaultCore, limits: ListenerLimits = ListenerLimits()) {
        self.core = core
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context: context, limits.readHeaderTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// Closes the connection after `delay` unless disarmed (a head arrives) or re-armed.
    private func arm(context: ChannelHandlerContext, _ delay: TimeAmount) {
        timer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) { bound.value.close(promise: nil) }
    }

    /// A framing or parse error (ListVerbRewriter's bounds, llhttp's): `ProtocolErrorHandler` has written its 400 or
    /// 431 with a sentence (`Connection: close`) before passing the error on, and the connection is closed here, so a client cannot
    /// keep it (and its place under `maxConnections`) after the refusal.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The client's end of the stream: closed now when no answer is owed (or a request is half read), else after
    /// the answer. Without this a connection the client had left kept its socket and its place under
    /// `maxConnections` until the idle timeout.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            guard !answering else { return }
            // An answer written in this turn may still wait for its scheduled flush: it leaves first.
            context.flush()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            timer?.cancel()
            timer = nil
            self.head = head
            body = nil
            bodyTooLarge = false
            refused = false
            request = Self.request(head, remote: context.channel.remoteAddress)
            switch request {
            case .success(let made)?:
                bodyLimit = limits.bodyLimit(path: made.path)
                refused = !core.tokenMayPass(made, onLoop: true)
            default: bodyLimit = 0
            }
        case .body(var chunk):
            guard !bodyTooLarge, !refused, case .success? = request else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > bodyLimit {
                bodyTooLarge = true
                body = nil
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let bytes = body
            body = nil
            let made = request
            request = nil
            answering = true
            serve(context: context, head: head, request: made, body: bytes)
        }
    }

    /// The request an HTTP head asks for, with the peer's address for the audit log.
    private static func request(_ head: HTTPRequestHead, remote: SocketAddress?) -> Result<VaultRequest, VaultError> {
        do throws(VaultError) {
            guard let method = HTTPRequest.Method(head.method.rawValue) else {
                throw VaultError.unsupportedOperation(head.uri)
            }
            var request = try VaultRequest(
                method: method, uri: URI(head.uri),
                header: { name in
                    let values = head.headers[name]
                    return values.isEmpty ? nil : values.joined(separator: ", ")
                })
            request.remoteAddress = remote?.ipAddress
            request.remotePort = remote?.port
            return .success(request)
        } catch {
            return .failure(error)
        }
    }

    private func serve(
        context: ChannelHandlerContext, head: HTTPRequestHead, request made: Result<VaultRequest, VaultError>?,
        body: ByteBuffer?
    ) {
        let keepAlive = head.isKeepAlive
        let isHead = head.method == .HEAD
        func answer(_ answer: VaultHTTPAnswer) {
            write(context: context, answer: answer, version: head.version, keepAlive: keepAlive, isHead: isHead)
        }
        guard head.uri.hasPrefix("/v1/") else {
            // Only /v1/** is served (as Hummingbird's router answered: 404, no body).
            answer(VaultHTTPAnswer(status: .notFound, contentType: nil, body: []))
            return
        }
        var request: VaultRequest
        switch made {
        case .failure(let error)?:
            answer(VaultHTTPAnswer(error, id: RequestID.make()))
            return
        case nil:
            answer(VaultHTTPAnswer(VaultError.internalError("no request was made from the head"), id: RequestID.make()))
            return
        case .success(let found)?: request = found
        }
        if bodyTooLarge {
            let limit = limits.bodyLimit(path: request.path)
            let error = VaultError(
                status: .contentTooLarge, messages: ["request body too large (limit \(limit) bytes for this path)"])
            answer(VaultHTTPAnswer(error, id: request.id))
            return
        }
        let bytes = Array((body ?? ByteBuffer()).readableBytesView)
        let core = self.core
        if let forwarding = core.forwarding(request, headers: head.headers) {
            // A standby: the active node answers (over attested TLS); if that fails, the 307 to it.
            let id = request.id
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let (method, target, headers, original) = (head.method, head.uri, head.headers, request)
            Task {
                let answer: VaultHTTPAnswer
                do {
                    answer = try await forwarding.forwarder.forward(
                        to: forwarding.leader, method: method, target: target, headers: headers, body: bytes)
                } catch {
                    answer = VaultHTTPAnswer(VaultCore.toActive(original, ha: forwarding.ha), id: id)
                }
                loop.execute {
                    let (handler, context) = bound.value
                    handler.write(
                        context: context, answer: answer, version: head.version, keepAlive: keepAlive, isHead: isHead)
                }
            }
            return
        }
        let unparsed = request
        let work: @Sendable () async throws(VaultError) -> VaultReply
        if refused {
            // No valid token: refused (and audited) without reading the body.
            work = { () async throws(VaultError) in try await core.refuse(unparsed) }
        } else if bytes.count > ListenerLimits.onLoopBodySize {
            // A large body: its token is checked, then it is parsed, in the task.
            work = { () async throws(VaultError) in try await core.handle(unparsed, body: bytes) }
        } else if (try? request.setBody(bytes)) == nil {
            // A body that does not parse: its token is checked first (in the task), so that a caller without a
            // live token is refused as for a large body, and only a caller with one learns the parse error.
            work = { () async throws(VaultError) in try await core.handle(unparsed, body: bytes) }
        } else {
            if let outcome = core.handleOnLoop(request) {
                answer(VaultHTTPAnswer(outcome, id: request.id))
                return
            }
            let parsed = request
            work = { () async throws(VaultError) in try await core.handle(parsed) }
        }
        // Storage writes, audit lines, KV, large bodies: off the event loop, answered back on it.
        let id = request.id
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task(executorPreference: core.storageExecutor) {
            let outcome: Result<VaultReply, VaultError>
            do throws(VaultError) { outcome = .success(try await work()) } catch { outcome = .failure(error) }
            let answer = VaultHTTPAnswer(outcome, id: id)
            loop.execute {
                let (handler, context) = bound.value
                handler.write(
                    context: context, answer: answer, version: head.version, keepAlive: keepAlive, isHead: isHead)
            }
        }
    }

    private func write(
        context: ChannelHandlerContext, answer: VaultHTTPAnswer, version: HTTPVersion, keepAlive: Bool, isHead: Bool
    ) {
        var headers = HTTPHeaders()
        if let contentType = answer.contentType { headers.add(name: "Content-Type", value: contentType) }
        let code = answer.status.code
        let bodiless = code == 204 || code == 304 || (100..<200).contains(code)
        if !bodiless { headers.add(name: "Content-Length", value: String(answer.body.count)) }
        headers.add(name: "Date", value: HTTPDate.shared.now)
        headers.add(name: "Server", value: "vhsmd")
        if let retryAfter = answer.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        if let cacheControl = answer.cacheControl { headers.add(name: "Cache-Control", value: cacheControl) }
        if let location = answer.location { headers.add(name: "Location", value: location) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: code, reasonPhrase: answer.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))))
            .whenFailure { _ in }
        if !isHead, !bodiless, !answer.body.isEmpty {
            let buffer = context.channel.allocator.buffer(bytes: answer.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer)))).whenFailure { _ in }
        }
        // Before the end is written: writing it lets NIO's pipelining handler deliver the next request (and a
        // half-close) at once, from inside this call.
        answering = false
        let closing = !keepAlive || inputClosed
        let written = context.write(wrapOutboundOut(.end(nil)))
        // Waiting for the next request: the idle timeout runs until its head arrives.
        if head == nil { arm(context: context, limits.idleTimeout) }
        if closing {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
        scheduleFlush(context: context)
    }

    private var flushScheduled = false

    /// Flushes once the event loop has read every connection that was ready in this turn: the responses of one
    /// turn leave back to back, and a client waiting on several connections is woken once instead of once per
    /// response (a cross-CPU wake-up costs more than the response itself on a virtual machine).
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.flushScheduled = false
            context.flush()
        }
    }
}

/// The `Date` header (RFC 9110 IMF-fixdate), formatted once per second.
final class HTTPDate: Sendable {
    static let shared = HTTPDate()
    private let cache = Mutex<(second: Int, text: String)>((-1, ""))

    var now: String {
        let second = Int(Date().timeIntervalSince1970)
        return cache.withLock { cache in
            if cache.second != second { cache = (second, Self.format(second)) }
            return cache.text
        }
    }

    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
