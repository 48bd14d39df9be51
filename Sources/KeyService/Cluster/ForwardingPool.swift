import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Kept-alive connections from a standby to the active node it verified (`ClusterForwarder`): HTTPS whose leaf must
/// be the DER attested TLS verified, one request at a time per connection, reused while the active node keeps it
/// open. A connection is opened (TCP and TLS handshake) only when none is idle, so forwarding costs a round trip on
/// the loopback or the cluster network, not a handshake per request.
final class ForwardingPool: Sendable {
    let host: String
    let port: Int
    let pinnedLeaf: [UInt8]
    let place: String
    private let context: NIOSSLContext
    private let idle = Mutex<[(connection: ForwardingConnection, since: ContinuousClock.Instant)]>([])
    /// Connections opened so far (each a TCP and TLS handshake).
    let opened = Atomic<Int>(0)
    /// An idle connection older than this is closed rather than reused (the active node closes idle connections
    /// after its `http_idle_timeout`, 5 min by default).
    static let idleLimit = Duration.seconds(30)
    /// Idle connections kept at most (more concurrent requests open more; they close when they come back).
    static let maximumIdle = 64
    /// How long a forwarded request may wait for its whole answer (Vault's default `max_request_duration`). The
    /// host controls the network: it can stall a connection it cannot answer on (the leaf is pinned), and without a
    /// bound the client's request would wait for as long as the client does.
    static let answerLimit = Duration.seconds(90)
    let answerTimeout: Duration

    init(host: String, port: Int, pinnedLeaf: [UInt8], place: String, answerTimeout: Duration = answerLimit) throws {
        self.host = host
        self.port = port
        self.pinnedLeaf = pinnedLeaf
        self.place = place
        self.answerTimeout = answerTimeout
        context = try PinnedLeaf.clientContext()
    }

    deinit {
        for (connection, _) in idle.withLock({ $0 }) { connection.channel.close(promise: nil) }
    }

    /// One request and its answer (at most `limit` bytes of body).
    func send(
        method: HTTPMethod, target: String, headers: [(String, String)], body: [UInt8], limit: Int
    ) async throws -> ForwardingConnection.Answer {
        let connection = try await take()
        do {
            let answer = try await connection.exchange(
                method: method, target: target, headers: headers, body: body, limit: limit)
            if answer.keepAlive { give(connection) } else { connection.channel.close(promise: nil) }
            return answer.answer
        } catch {
            connection.channel.close(promise: nil)
            throw error
        }
    }

    private func take() async throws -> ForwardingConnection {
        let now = ContinuousClock.now
        while let (connection, since) = idle.withLock({ $0.popLast() }) {
            if connection.channel.isActive, now - since < Self.idleLimit { return connection }
            connection.channel.close(promise: nil)
        }
        return try await open()
    }

    private func give(_ connection: ForwardingConnection) {
        let kept = idle.withLock { idle in
            guard idle.count < Self.maximumIdle, connection.channel.isActive else { return false }
            idle.append((connection, .now))
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    private func open() async throws -> ForwardingConnection {
        let (context, pinned, host) = (self.context, pinnedLeaf, self.host)
        let hostHeader = PinnedLeaf.hostHeader(host: host, port: port)
        let place = self.place
        let timeout = TimeAmount(answerTimeout)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try PinnedLeaf.handler(context: context, host: host, pinned: pinned))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        ForwardingConnection.Handler(hostHeader: hostHeader, place: place, timeout: timeout))
                }
            }
            .connect(host: host, port: port).get()
        opened.add(1, ordering: .relaxed)
        return ForwardingConnection(channel: channel)
    }
}

/// HTTPS to a node whose leaf certificate attested TLS verified: the leaf is accepted by its identity (the DER that
/// was verified), not by names or a chain. Used by the join (`ClusterJoinHTTP`) and by forwarding (`ForwardingPool`).
enum PinnedLeaf {
    static func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    /// The TLS handler of a connection to `host` that accepts only `pinned` as the server's leaf.
    static func handler(context: NIOSSLContext, host: String, pinned: [UInt8]) throws -> NIOSSLClientHandler {
        // SNI only for a name, never for an IP address.
        let serverName = host.contains(":") || host.split(separator: ".").allSatisfy({ Int($0) != nil }) ? nil : host
        return try NIOSSLClientHandler(
            context: context, serverHostname: serverName,
            customVerificationCallback: { certificates, promise in
                guard let leaf = certificates.first, let der = try? leaf.toDERBytes(), der == pinned else {
                    promise.succeed(.failed)
                    return
                }
                promise.succeed(.certificateVerified)
            })
    }

    /// The Host header for `host` and `port` (an IPv6 address in brackets).
    static func hostHeader(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// One kept-alive connection of a `ForwardingPool`: its channel, whose last handler sends one request and collects
/// its answer.
struct ForwardingConnection: Sendable {
    typealias Answer = (status: Int, headers: HTTPHeaders, body: [UInt8])

    struct Request: Sendable {
        var method: HTTPMethod
        var target: String
        var headers: [(String, String)]
        var body: [UInt8]
        var limit: Int
        var promise: EventLoopPromise<(answer: Answer, keepAlive: Bool)>
    }

    let channel: any Channel

    func exchange(
        method: HTTPMethod, target: String, headers: [(String, String)], body: [UInt8], limit: Int
    ) async throws -> (answer: Answer, keepAlive: Bool) {
        let promise = channel.eventLoop.makePromise(of: (answer: Answer, keepAlive: Bool).self)
        let request = Request(
            method: method, target: target, headers: headers, body: body, limit: limit, promise: promise)
        channel.writeAndFlush(request, promise: nil)
        return try await promise.futureResult.get()
    }

    /// Writes a `Request` as HTTP/1.1 and completes its promise with the answer (or the connection's failure). An
    /// answer not complete within `timeout` fails the request and closes the connection.
    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundIn = Request
        typealias OutboundOut = HTTPClientRequestPart

        let hostHeader: String
        let place: String
        let timeout: TimeAmount
        private var pending: Request?
        private var deadline: Scheduled<Void>?
        private var status: Int?
        private var headers = HTTPHeaders()
        private var received: [UInt8] = []
        private var keepAlive = true

        init(hostHeader: String, place: String, timeout: TimeAmount) {
            self.hostHeader = hostHeader
            self.place = place
            self.timeout = timeout
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let request = unwrapOutboundIn(data)
            guard pending == nil else {
                request.promise.fail(ClusterJoinError("a forwarding connection to \(place) was asked twice at once"))
                return
            }
            pending = request
            let (loopBound, place, seconds) = (
                NIOLoopBound((self, context), eventLoop: context.eventLoop), place,
                Double(timeout.nanoseconds) / 1e9
            )
            deadline = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = loopBound.value
                handler.fail(
                    ClusterJoinError(
                        "the active node \(place) did not answer within \(seconds) s: the request was "
                            + "dropped and its connection closed"))
                context.close(promise: nil)
            }
            status = nil
            headers = HTTPHeaders()
            received = []
            keepAlive = true
            var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target)
            head.headers.add(name: "Host", value: hostHeader)
            for (name, value) in request.headers { head.headers.add(name: name, value: value) }
            head.headers.add(name: "Content-Length", value: String(request.body.count))
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: request.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let request = pending else { return }
            switch unwrapInboundIn(data) {
            case .head(let response):
                status = Int(response.status.code)
                headers = response.headers
                keepAlive = response.isKeepAlive
            case .body(let buffer):
                received += buffer.readableBytesView
                if received.count > request.limit {
                    fail(
                        ClusterJoinError(
                            "the answer of \(place) to \(request.target) is larger than \(request.limit) bytes"))
                    context.close(promise: nil)
                }
            case .end:
                pending = nil
                deadline?.cancel()
                deadline = nil
                guard let status else {
                    request.promise.fail(ClusterJoinError("the answer of \(place) has no status line"))
                    context.close(promise: nil)
                    return
                }
                request.promise.succeed(((status, headers, received), keepAlive))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(ClusterJoinError("the connection to \(place) closed before the answer was complete"))
            context.fireChannelInactive()
        }

        private func fail(_ error: any Error) {
            deadline?.cancel()
            deadline = nil
            guard let request = pending else { return }
            pending = nil
            request.promise.fail(error)
        }
    }
}
