import FoundationEssentials
import Glibc
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The server's connections: Hummingbird runs the listener, TLS, graceful shutdown and the per-connection tasks;
/// each connection's pipeline is ListVerbRewriter → NIO's HTTP/1.1 server codec (with pipelining assistance and
/// its error handler) → `VaultHTTPHandler`, which answers on the event loop whatever needs no wait.
struct VaultHTTP1Channel: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }

    let core: VaultCore

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ByteToMessageHandler(ListVerbRewriter()))
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false)
            try pipeline.addHandler(VaultHTTPHandler(core: core))
            return Connection(channel: channel)
        }
    }

    /// The connection lives until it closes: the client hangs up, an error, or quiescing at shutdown (NIO's
    /// pipelining handler closes an idle connection, or a busy one after its response).
    func handle(value: Connection, logger: Logger) async {
        await withTaskCancellationHandler {
            try? await value.channel.closeFuture.get()
        } onCancel: {
            value.channel.close(promise: nil)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 that accepts Vault's LIST verb and serves `/v1/**` through `core`.
    static func vaultHTTP1(core: VaultCore) -> HTTPServerBuilder {
        HTTPServerBuilder { _ in VaultHTTP1Channel(core: core) }
    }
}

/// One connection's requests: the head and body are collected (Vault's 32 MiB limit), then the request is answered
/// on the event loop when `VaultCore.handleOnLoop` can (no storage write, no audit line), else by a task whose
/// answer is written back on the loop. NIO's pipelining handler holds later requests until the answer is written.
final class VaultHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBody = 32 << 20

    private let core: VaultCore
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false

    init(core: VaultCore) { self.core = core }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            bodyTooLarge = false
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maxBody {
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
            serve(context: context, head: head, body: bytes, tooLarge: bodyTooLarge)
        }
    }

    private func serve(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer?, tooLarge: Bool) {
        let keepAlive = head.isKeepAlive
        let isHead = head.method == .HEAD
        guard head.uri.hasPrefix("/v1/") else {
            // Only /v1/** is routed (as Hummingbird's router answered: 404, no body).
            write(
                context: context, answer: VaultHTTPAnswer(status: .notFound, contentType: nil, body: []),
                version: head.version, keepAlive: keepAlive, isHead: isHead)
            return
        }
        let request: VaultRequest
        do throws(VaultError) {
            guard let method = HTTPRequest.Method(head.method.rawValue) else {
                throw VaultError.unsupportedOperation(head.uri)
            }
            request = try VaultRequest(
                method: method, uri: URI(head.uri),
                body: tooLarge ? nil : Array((body ?? ByteBuffer()).readableBytesView),
                header: { name in
                    let values = head.headers[name]
                    return values.isEmpty ? nil : values.joined(separator: ", ")
                })
        } catch {
            write(
                context: context, answer: VaultHTTPAnswer(error, id: RequestID.make()), version: head.version,
                keepAlive: keepAlive, isHead: isHead)
            return
        }
        if let outcome = core.handleOnLoop(request) {
            write(
                context: context, answer: VaultHTTPAnswer(outcome, id: request.id), version: head.version,
                keepAlive: keepAlive, isHead: isHead)
            return
        }
        // Storage writes, audit lines, KV: off the event loop, answered back on it.
        let core = self.core
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task {
            let outcome: Result<VaultReply, VaultError>
            do throws(VaultError) { outcome = .success(try await core.handle(request)) } catch {
                outcome = .failure(error)
            }
            let answer = VaultHTTPAnswer(outcome, id: request.id)
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
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: code, reasonPhrase: answer.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))))
            .whenFailure { _ in }
        if !isHead, !bodiless, !answer.body.isEmpty {
            let buffer = context.channel.allocator.buffer(bytes: answer.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer)))).whenFailure { _ in }
        }
        let written = context.write(wrapOutboundOut(.end(nil)))
        if !keepAlive {
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
