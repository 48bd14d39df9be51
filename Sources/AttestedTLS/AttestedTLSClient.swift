import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import SNP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The client half of attested TLS: one TLS connection to vhsmd that accepts whatever leaf certificate the
/// handshake presents, records it, and asks `sys/attestation` for evidence over that same connection. The leaf is
/// trusted only after `EvidenceCheck` finds the evidence genuine, bound to the leaf's key and acceptable; nothing
/// secret is sent on this connection. TLS is swift-nio-ssl's.
public struct AttestedTLSClient: Sendable {
    public let host: String
    public let port: Int
    /// Connect, handshake and answer within this time.
    public var timeout: Duration
    /// The most bytes an answer's body may have (a report and three certificates in base64 are about 10 KiB).
    public static let maximumAnswer = 1 << 20

    /// `https://HOST[:PORT]` (an IPv6 address in brackets; a trailing `/` or `/v1` is ignored; port 443 when
    /// omitted).
    public init(url: String, timeout: Duration = .seconds(30)) throws(AttestedTLSError) {
        guard url.hasPrefix("https://") else {
            throw .badURL(
                url: url,
                reason: "must start with https://: attested TLS checks the key of a TLS connection (e.g. "
                    + "https://10.0.2.15:8200)")
        }
        var rest = url.dropFirst(8)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.hasSuffix("/v1") { rest = rest.dropLast(3) }
        let host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw .badURL(url: url, reason: "has an IPv6 address without its closing ']'")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { portText = "" }
        } else if let colon = rest.lastIndex(of: ":") {
            (host, portText) = (rest[..<colon], rest[rest.index(after: colon)...])
        } else {
            host = rest
        }
        var port = 443
        if let portText {
            guard let number = Int(portText), (1...65_535).contains(number) else {
                throw .badURL(url: url, reason: "must be https://HOST:PORT with a port from 1 to 65535")
            }
            port = number
        }
        guard !host.isEmpty, !host.contains("/"), !host.contains("@"), !host.contains("?") else {
            throw .badURL(url: url, reason: "must be https://HOST:PORT, e.g. https://10.0.2.15:8200 (no path)")
        }
        self.init(host: String(host), port: port, timeout: timeout)
    }

    public init(host: String, port: Int, timeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// `https://host:port`, as messages name the server.
    public var place: String { "https://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// What one attested connection brought back.
    public struct Attestation: Sendable {
        /// The DER of the leaf certificate the handshake presented.
        public var leafCertificate: [UInt8]
        public var answer: AttestationAnswer
    }

    /// Connects, records the handshake's leaf certificate and asks `GET /v1/sys/attestation?nonce=HEX` on the same
    /// connection. `nonce` is the verifier's 32 random bytes.
    public func attestation(nonce: [UInt8]) async throws(AttestedTLSError) -> Attestation {
        precondition(nonce.count == AttestedTLSBinding.nonceCount, "the nonce is 32 bytes")
        let path = "/v1/sys/attestation?nonce=" + Hex.encode(nonce)
        return try await withDeadline { recorder in
            let channel = try await connect(recorder: recorder) { channel in
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                    wrappingChannelSynchronously: channel)
            }
            let (status, body, retryAfter) = try await get(path, on: channel)
            guard let der = recorder.der.withLock({ $0 }) else {
                throw AttestedTLSError.handshakeFailed(place: place, reason: "the server presented no certificate")
            }
            return Attestation(
                leafCertificate: der,
                answer: try AttestationAnswer(status: status, body: body, retryAfter: retryAfter, place: place))
        }
    }

    /// Only the handshake: the DER of the leaf certificate the server presents (for the evidence in its
    /// extension). Nothing is sent.
    public func leafCertificate() async throws(AttestedTLSError) -> [UInt8] {
        try await withDeadline { recorder in
            let (channel, handshake) = try await connect(recorder: recorder) { channel in
                let handshake = channel.eventLoop.makePromise(of: Void.self)
                try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: handshake))
                return (channel, handshake.futureResult)
            }
            // A server that accepts but never finishes the handshake: the deadline cancels, the channel closes,
            // and the watcher fails the promise.
            try await withTaskCancellationHandler {
                try await handshake.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            try? await channel.close()
            guard let der = recorder.der.withLock({ $0 }) else {
                throw AttestedTLSError.handshakeFailed(place: place, reason: "the server presented no certificate")
            }
            return der
        }
    }

    // MARK: - The connection

    /// Runs `body` with a fresh leaf recorder, within `timeout`; every failure becomes an `AttestedTLSError`.
    private func withDeadline<T: Sendable>(
        _ body: @escaping @Sendable (LeafRecorder) async throws -> T
    ) async throws(AttestedTLSError) -> T {
        let recorder = LeafRecorder()
        let place = self.place
        let timeout = self.timeout
        do {
            return try await withThrowingTaskGroup(of: T.self) { group in
                group.addTask { try await body(recorder) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw AttestedTLSError.timedOut(place: place, after: timeout)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let error as AttestedTLSError {
            throw error
        } catch {
            throw classify(error)
        }
    }

    /// The leaf certificate's DER, as the verification callback saw it.
    private final class LeafRecorder: Sendable {
        let der = Mutex<[UInt8]?>(nil)
    }

    /// TCP, then TLS with a verification callback that accepts and records the leaf, then `configure`.
    private func connect<Output: Sendable>(
        recorder: LeafRecorder, _ configure: @escaping @Sendable (any Channel) throws -> Output
    ) async throws -> Output {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // vhsmd's certificate names no host a client could check (a VM's address is the host's choice); the key is
        // what the evidence binds, and the callback below takes the place of chain and name checks.
        configuration.certificateVerification = .noHostnameVerification
        // After a timeout the connection is dropped without waiting 5 s (NIOSSL's default) for the peer's close_notify.
        configuration.shutdownTimeout = .milliseconds(500)
        let context = try NIOSSLContext(configuration: configuration)
        // SNI takes names only; an IP address goes without.
        let serverName = host.contains(":") || host.split(separator: ".").allSatisfy({ Int($0) != nil }) ? nil : host
        let (seconds, _) = timeout.components
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(max(1, seconds)))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Any leaf is accepted here and recorded: the evidence decides whether to trust its key. The
                    // handshake itself proves the server holds the leaf's private key (CertificateVerify).
                    let handler = try NIOSSLClientHandler(
                        context: context, serverHostname: serverName,
                        customVerificationCallback: { certificates, promise in
                            guard let first = certificates.first, let der = try? first.toDERBytes() else {
                                promise.succeed(.failed)
                                return
                            }
                            recorder.der.withLock { $0 = der }
                            promise.succeed(.certificateVerified)
                        })
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return try configure(channel)
                }
            }
    }

    /// Sends one GET and reads the answer, bounded by `maximumAnswer`.
    private func get(
        _ path: String, on channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    ) async throws -> (status: Int, body: [UInt8], retryAfter: String?) {
        let place = self.place
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "Accept", value: "application/json")
            head.headers.add(name: "Connection", value: "close")
            // Head and end in one write: the server may answer a body-less GET and close (Connection: close)
            // before a separate write of the end, which then fails on a closed channel.
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
            var status: Int?
            var retryAfter: String?
            var received: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    retryAfter = response.headers.first(name: "Retry-After")
                    if let length = response.headers.first(name: "Content-Length").flatMap(Int.init),
                        length > Self.maximumAnswer
                    {
                        throw AttestedTLSError.answerTooLarge(place: place, limit: Self.maximumAnswer)
                    }
                case .body(let buffer):
                    guard received.count + buffer.readableBytes <= Self.maximumAnswer else {
                        throw AttestedTLSError.answerTooLarge(place: place, limit: Self.maximumAnswer)
                    }
                    received += buffer.readableBytesView
                case .end:
                    guard let status else { throw AttestedTLSError.incompleteAnswer(place: place) }
                    return (status, received, retryAfter)
                }
            }
            throw AttestedTLSError.incompleteAnswer(place: place)
        }
    }

    /// A sentence for what NIO, NIOSSL or the operating system threw.
    private func classify(_ error: any Error) -> AttestedTLSError {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first?.error { return classify(first) }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return .unreachable(place: place, reason: "the name '\(host)' does not resolve")
            }
            return .unreachable(place: place, reason: "no address to connect to")
        }
        if let error = error as? IOError {
            return .unreachable(place: place, reason: Self.errnoText(error.errnoCode))
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout: return .timedOut(place: place, after: timeout)
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed:
                return .incompleteAnswer(place: place)
            default: return .unreachable(place: place, reason: "\(error)")
            }
        }
        if let error = error as? NIOSSLError {
            switch error {
            case .handshakeFailed(let inner): return .handshakeFailed(place: place, reason: "\(inner)")
            case .uncleanShutdown: return .incompleteAnswer(place: place)
            default: return .handshakeFailed(place: place, reason: "\(error)")
            }
        }
        if let error = error as? NIOSSLExtraError {
            return .handshakeFailed(place: place, reason: "\(error)")
        }
        if let error = error as? HTTPParserError {
            return .malformedAnswer(place: place, reason: "HTTP that does not parse (\(error))")
        }
        if error is CancellationError { return .timedOut(place: place, after: timeout) }
        return .unreachable(place: place, reason: "\(error)")
    }

    static func errnoText(_ code: Int32) -> String {
        #if canImport(Glibc)
        return String(cString: strerror(code)).lowercased()
        #else
        return "errno \(code)"
        #endif
    }
}

/// Completes `promise` when the TLS handshake completes, fails it when the channel errs or closes first.
private final class HandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    /// A channel that never connected (connection refused) is never active, so never inactive either: the promise
    /// is failed when the closed channel drops its handlers (a promise left unfulfilled is a crash in debug builds).
    func handlerRemoved(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
    }
}
