import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Sealing
import Synchronization

/// One HTTP/1.1 request to vhsmd, over plain HTTP (http:// URLs) or HTTPS with a trust the operator chose: a CA
/// file, or the SHA-256 of the leaf certificate (vhsmd's self-signed certificate prints it at every start). TLS is
/// swift-nio-ssl's; nothing here is hand-written cryptography.
struct VaultClient: Sendable {
    enum Trust: Sendable {
        /// Plain HTTP.
        case none
        /// PEM certificates that anchor the server's chain, or hold its leaf itself (vhsmd's self-signed
        /// certificate); either way the host name (or IP address) must match the leaf.
        case certificates([NIOSSLCertificate])
        /// The leaf certificate's SHA-256 (32 bytes); chain and name are not checked.
        case fingerprint([UInt8])
    }

    let host: String
    let port: Int
    let secure: Bool
    let trust: Trust
    /// Connect, send and receive within this time.
    var timeout: Duration = .seconds(60)
    /// The most body bytes an answer may have.
    static let maximumAnswer = 1 << 20
    /// Sent as `X-Vault-Token` when set.
    var token: String? = nil

    /// `http://HOST:PORT` or `https://HOST:PORT` (an IPv6 address in brackets; no path). https needs a CA file or
    /// a fingerprint.
    init(url: String, caFile: String?, fingerprint: String?) throws {
        let secure: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            (secure, rest) = (true, url.dropFirst(8))
        } else if url.hasPrefix("http://") {
            (secure, rest) = (false, url.dropFirst(7))
        } else {
            throw CLIError.usage("the URL '\(url)' must start with https:// (or http:// for a plain-HTTP vhsmd)")
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.hasSuffix("/v1") { rest = rest.dropLast(3) }
        let host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw CLIError.usage("the URL '\(url)' has an IPv6 address without its closing ']'")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { portText = "" }
        } else if let colon = rest.lastIndex(of: ":") {
            (host, portText) = (rest[..<colon], rest[rest.index(after: colon)...])
        } else {
            host = rest
        }
        let port: Int
        if let portText {
            guard let number = Int(portText), (1...65_535).contains(number) else {
                throw CLIError.usage("the URL '\(url)' must be SCHEME://HOST:PORT with a port from 1 to 65535")
            }
            port = number
        } else {
            port = secure ? 443 : 80
        }
        guard !host.isEmpty, !host.contains("/") else {
            throw CLIError.usage("the URL '\(url)' must be SCHEME://HOST:PORT, e.g. https://10.0.2.15:8200 (no path)")
        }
        self.host = String(host)
        self.port = port
        self.secure = secure
        switch (secure, caFile, fingerprint) {
        case (false, nil, nil): trust = .none
        case (false, _, _):
            throw CLIError.usage("--cacert and --fingerprint are for https:// URLs; '\(url)' is plain HTTP")
        case (true, nil, nil):
            throw CLIError.usage(
                "an https:// URL needs --cacert FILE (the PEM CA or vhsmd's DATA/tls/cert.pem) or --fingerprint "
                    + "SHA256 (the certificate fingerprint vhsmd prints at start): the host is not trusted")
        case (true, _?, _?): throw CLIError.usage("give --cacert or --fingerprint, not both")
        case (true, let file?, nil):
            let text = try Inputs.read(file)
            do {
                let certificates = try NIOSSLCertificate.fromPEMBytes(text)
                guard !certificates.isEmpty else { throw CLIError.input(file, "holds no PEM certificate") }
                trust = .certificates(certificates)
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError.input(file, "is not a PEM certificate file: \(error)")
            }
        case (true, nil, let pin?):
            let digits = pin.filter { $0 != ":" }
            guard let bytes = SealedRootToken.hexBytes(digits), bytes.count == 32 else {
                throw CLIError.usage(
                    "--fingerprint must be a SHA-256: 64 hex digits, colon-separated or not, not '\(pin)'")
            }
            trust = .fingerprint(bytes)
        }
    }

    /// The answer's status and body.
    struct Answer {
        var status: Int
        var body: [UInt8]
        /// The DER of the leaf certificate the TLS handshake presented (nil over plain HTTP).
        var leafCertificate: [UInt8]? = nil
        /// The `Location` of a redirect (a standby naming the active node).
        var location: String? = nil
    }

    /// Sends `method path` with a JSON body and returns the answer. Failures are sentences naming the server.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]) async throws -> Answer {
        let place = "\(secure ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        let pinMismatch = PinMismatch()
        do {
            return try await withThrowingTaskGroup(of: Answer.self) { group in
                group.addTask {
                    guard case .certificates(let certificates) = trust else {
                        return try await exchange(method, path, body: body, pinMismatch: pinMismatch, holding: nil)
                    }
                    // A self-signed leaf (vhsmd's own DATA/tls/cert.pem, CA:FALSE) is no anchor to BoringSSL; as
                    // curl does, the --cacert file may hold the server's certificate itself. The first handshake
                    // records the leaf it is shown and accepts it when the file holds it; any other leaf fails that
                    // handshake (nothing is sent) and a second connection has BoringSSL verify the server against
                    // the file as CAs. What decides is the recorded leaf, not which error NIO reports.
                    let held = Set(certificates.compactMap { try? $0.toDERBytes() })
                    let presented = RecordedLeaf()
                    do {
                        return try await exchange(
                            method, path, body: body, pinMismatch: pinMismatch,
                            holding: (held, presented))
                    } catch {
                        guard let leaf = presented.der.withLock({ $0 }), !held.contains(leaf) else { throw error }
                    }
                    let anchored = RecordedLeaf()
                    do {
                        return try await exchange(
                            method, path, body: body, pinMismatch: pinMismatch, holding: nil, recorder: anchored)
                    } catch {
                        // The server presents a certificate the file does not hold, and the file's CAs did not
                        // complete a handshake with it: refused, whatever error NIO reports.
                        if !anchored.handshakeCompleted.withLock({ $0 }), let leaf = presented.der.withLock({ $0 }) {
                            pinMismatch.served.withLock {
                                $0 = VaultClient.colonHex(Array(SHA256.hash(data: leaf)))
                            }
                            pinMismatch.reason.withLock { $0 = "\(error)" }
                        }
                        throw error
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw CLIError.unreachable(
                        "\(place) did not answer within \(timeout): check the URL, the network and that vhsmd is running"
                    )
                }
                let answer = try await group.next()!
                group.cancelAll()
                return answer
            }
        } catch let error as CLIError {
            throw error
        } catch {
            if let served = pinMismatch.served.withLock({ $0 }), case .certificates = trust {
                let reason = pinMismatch.reason.withLock { $0 }.map { " (\($0))" } ?? ""
                throw CLIError.refused(
                    "\(place) presented a certificate (SHA-256 \(served)) that the --cacert file neither holds nor "
                        + "verifies for \(host)\(reason): this is not the vhsmd you trust (check the file, or pin "
                        + "vhsmd's printed fingerprint)")
            } else if let served = pinMismatch.served.withLock({ $0 }) {
                throw CLIError.refused(
                    "\(place) presented a certificate whose SHA-256 is \(served), not the pinned fingerprint: "
                        + "this is not the vhsmd you pinned (check the fingerprint vhsmd printed at start)")
            }
            if let failure = error as? ConnectFailure {
                // No connection, so nothing was sent and no certificate was seen: exit 3, try again later.
                throw CLIError.unreachable(
                    "cannot reach \(place): \(failure.reason(host: host)). Check the URL, the network and that vhsmd "
                        + "is listening")
            }
            throw CLIError.refused(Self.exchangeFailure(method, place: place, path: path, error: error, secure: secure))
        }
    }

    /// The connection itself failed (refused, no route, a name that does not resolve, the connect timeout): the
    /// server was not reached.
    struct ConnectFailure: Error {
        let error: any Error

        /// What the system said, as a short phrase ("connection refused", "the name 'h' does not resolve").
        func reason(host: String) -> String {
            switch error {
            case let error as NIOConnectionError:
                if let first = error.connectionErrors.first?.error {
                    return ConnectFailure(error: first).reason(host: host)
                }
                if error.dnsAError != nil || error.dnsAAAAError != nil { return "the name '\(host)' does not resolve" }
                return "no address to connect to"
            case let error as IOError: return String(cString: strerror(error.errnoCode)).lowercased()
            case ChannelError.connectTimeout(let timeout):
                return "no answer to the connection within \(timeout.nanoseconds / 1_000_000_000) s"
            default: return "\(error)"
            }
        }
    }

    /// A connection that failed after it was made (a TLS handshake that failed without a certificate verdict, a
    /// reset, HTTP that does not parse), as a sentence.
    static func exchangeFailure(
        _ method: HTTPMethod, place: String, path: String, error: any Error, secure: Bool
    ) -> String {
        "cannot \(method) \(place)/v1/\(path): \(error). Check the URL, that vhsmd is listening, and "
            + (secure ? "that --cacert or --fingerprint names its certificate" : "that it serves plain HTTP")
    }

    /// One connection. `holding`: the --cacert certificates (DER) accepted as the leaf itself, and where the leaf
    /// the handshake presented is recorded; nil for the trust's own verification (BoringSSL's against the CA file,
    /// the pinned fingerprint, or none over plain HTTP).
    private func exchange(
        _ method: HTTPMethod, _ path: String, body: [UInt8], pinMismatch: PinMismatch,
        holding: (certificates: Set<[UInt8]>, presented: RecordedLeaf)?, recorder: RecordedLeaf = RecordedLeaf()
    ) async throws -> Answer {
        let context: NIOSSLContext?
        if secure {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if case .certificates(let roots) = trust { configuration.trustRoots = .certificates(roots) }
            // A pinned fingerprint names the one certificate accepted: its host names are not checked (vhsmd's
            // self-signed certificate names the address it was configured with, not the one a client reaches it by,
            // e.g. through NAT), as the Trust case says.
            if case .fingerprint = trust { configuration.certificateVerification = .noHostnameVerification }
            context = try NIOSSLContext(configuration: configuration)
        } else {
            context = nil
        }
        let host = self.host
        let trust = self.trust
        // SNI takes names only; for an IP address NIOSSL checks the leaf's IP SANs against the peer's address.
        let serverName = host.contains(":") || host.split(separator: ".").allSatisfy({ Int($0) != nil }) ? nil : host
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(.seconds(20))
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await bootstrap.connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        let handler: NIOSSLClientHandler
                        // The leaf is accepted by its identity: its SHA-256 is the pin, or its DER is one of the
                        // --cacert certificates.
                        var accepts: (@Sendable ([UInt8]) -> Bool)?
                        switch trust {
                        case .fingerprint(let pin): accepts = { Array(SHA256.hash(data: $0)) == pin }
                        case .certificates:
                            if let held = holding?.certificates { accepts = { held.contains($0) } }
                        case .none: accepts = nil
                        }
                        let presented = holding?.presented
                        if let accepts {
                            handler = try NIOSSLClientHandler(
                                context: context, serverHostname: serverName,
                                customVerificationCallback: { certificates, promise in
                                    guard let leaf = certificates.first, let der = try? leaf.toDERBytes() else {
                                        promise.succeed(.failed)
                                        return
                                    }
                                    presented?.der.withLock { $0 = der }
                                    if accepts(der) {
                                        promise.succeed(.certificateVerified)
                                    } else {
                                        // A pin names one certificate: another is the refusal. A leaf the
                                        // --cacert file does not hold is next checked against it as CAs.
                                        if presented == nil {
                                            let served = VaultClient.colonHex(Array(SHA256.hash(data: der)))
                                            pinMismatch.served.withLock { $0 = served }
                                        }
                                        promise.succeed(.failed)
                                    }
                                })
                        } else {
                            handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(LeafRecorder(recorder))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            throw ConnectFailure(error: error)
        }
        do {
            return try await converse(channel, method, path, body: body, recorder: recorder)
        } catch ChannelError.ioOnClosedChannel {
            // A write after the pipeline failed says only that the channel closed: the cause is what the pipeline
            // reported (a failed handshake, a reset).
            throw recorder.error.withLock { $0 } ?? ChannelError.ioOnClosedChannel
        }
    }

    private func converse(
        _ channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>, _ method: HTTPMethod,
        _ path: String, body: [UInt8], recorder: RecordedLeaf
    ) async throws -> Answer {
        let host = self.host
        let port = self.port
        let token = self.token
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/v1/" + path)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "Connection", value: "close")
            if let token { head.headers.add(name: "X-Vault-Token", value: token) }
            // The whole request in one write: a server that has the head of a body-less request may answer and
            // close (Connection: close) before a separate write of the end, which then fails on a closed channel.
            try await outbound.write(
                contentsOf: [.head(head), .body(.byteBuffer(ByteBuffer(bytes: body))), .end(nil)])
            var status: Int?
            var received: [UInt8] = []
            var leaf: [UInt8]?
            var location: String?
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    location = response.headers.first(name: "Location")
                    leaf = recorder.der.withLock { $0 }
                case .body(let buffer):
                    received += buffer.readableBytesView
                    guard received.count <= Self.maximumAnswer else {
                        throw CLIError.refused("the answer to \(path) is larger than 1 MiB, more than vhsmd sends")
                    }
                case .end:
                    guard let status else { throw CLIError.refused("the answer to \(path) has no status line") }
                    return Answer(status: status, body: received, leafCertificate: leaf, location: location)
                }
            }
            throw CLIError.refused("the connection closed before the answer to \(path) was complete")
        }
    }

    /// The DER of the leaf certificate the handshake presented.
    final class RecordedLeaf: Sendable {
        let der = Mutex<[UInt8]?>(nil)
        /// Whether the TLS handshake completed (its verification passed).
        let handshakeCompleted = Mutex(false)
        /// The first error the pipeline reported.
        let error = Mutex<(any Error)?>(nil)
    }

    /// Records the handshake's leaf certificate when the first bytes after the handshake arrive (the TLS handler
    /// is still in the pipeline then, however soon the server closes).
    final class LeafRecorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = NIOAny
        let recorded: RecordedLeaf

        init(_ recorded: RecordedLeaf) { self.recorded = recorded }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if recorded.der.withLock({ $0 }) == nil,
                let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self),
                let der = try? handler.peerCertificate?.toDERBytes()
            {
                recorded.der.withLock { $0 = der }
            }
            context.fireChannelRead(data)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent {
                recorded.handshakeCompleted.withLock { $0 = true }
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            recorded.error.withLock { if $0 == nil { $0 = error } }
            context.fireErrorCaught(error)
        }
    }

    /// The fingerprint a server presented when it was not the pinned one, for the error message.
    final class PinMismatch: Sendable {
        let served = Mutex<String?>(nil)
        /// What failed when the --cacert file's CAs were asked to verify it.
        let reason = Mutex<String?>(nil)
    }

    /// `AB:CD:…`, as vhsmd and openssl print fingerprints.
    static func colonHex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02X", $0) }.joined(separator: ":")
    }
}
