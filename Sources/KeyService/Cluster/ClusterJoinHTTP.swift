import AttestedTLS
import Crypto
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SNP

/// The joiner's connection to its sponsor (`join` in the configuration): HTTPS whose leaf certificate attested TLS
/// verified first (a fresh report from the sponsor's `sys/attestation`, its MEASUREMENT equal to this node's own),
/// then pinned for the join's requests; or plain HTTP for tests with `tls_disable` (S is then 32 zero bytes).
struct ClusterJoinHTTP: ClusterJoinTransport {
    let host: String
    let port: Int
    /// The DER of the sponsor's verified leaf certificate; nil over plain HTTP.
    let pinnedLeaf: [UInt8]?
    let audienceSPKISHA256: [UInt8]
    let place: String
    var timeout: Duration = .seconds(30)
    static let maximumAnswer = 1 << 20

    /// `https://HOST:PORT`: the sponsor is verified by attested TLS before anything is sent (its MEASUREMENT must be
    /// `measurement`, its chain one `verifier` trusts); `http://HOST:PORT`: no verification at all.
    static func connect(
        url: String, measurement: [UInt8], verifier: ReportVerifier
    ) async throws(ClusterJoinError) -> ClusterJoinHTTP {
        if url.hasPrefix("http://") {
            var rest = url.dropFirst("http://".count)
            while rest.hasSuffix("/") { rest = rest.dropLast() }
            if rest.hasSuffix("/v1") { rest = rest.dropLast(3) }
            let hasPort =
                rest.contains(":") && rest.split(separator: ":").last!.allSatisfy { $0.isASCII && $0.isNumber }
            let parsed: AttestedTLSClient
            do { parsed = try AttestedTLSClient(url: "https://" + rest + (hasPort ? "" : ":80")) } catch {
                throw ClusterJoinError("join '\(url)' is not http://HOST:PORT or https://HOST:PORT: \(error)")
            }
            return ClusterJoinHTTP(
                host: parsed.host, port: parsed.port, pinnedLeaf: nil, audienceSPKISHA256: AttestedLoginBinding.absent,
                place: "http://" + rest)
        }
        let client: AttestedTLSClient
        do { client = try AttestedTLSClient(url: url) } catch {
            throw ClusterJoinError("join '\(url)' is not http://HOST:PORT or https://HOST:PORT: \(error)")
        }
        let verification: ServerVerification
        do {
            verification = try await client.verify(
                reference: ReferenceValues(measurements: [measurement]), verifier: verifier)
        } catch {
            throw ClusterJoinError("the sponsor \(client.place) could not be verified by attested TLS: \(error)")
        }
        guard verification.trusted, let spki = verification.spkiSHA256 else {
            throw ClusterJoinError(
                "the sponsor \(client.place) is not trusted by attested TLS; nothing was sent: "
                    + verification.verdict.problems.joined(separator: "; "))
        }
        return ClusterJoinHTTP(
            host: client.host, port: client.port, pinnedLeaf: verification.leafCertificate, audienceSPKISHA256: spki,
            place: client.place)
    }

    func post(_ path: String, body: [UInt8]) async throws -> (status: Int, body: [UInt8]) {
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            group.addTask { try await exchange(path, body: body) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw ClusterJoinError("no answer from \(place) within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func exchange(_ path: String, body: [UInt8]) async throws -> (Int, [UInt8]) {
        let answer = try await send(
            method: .POST, target: "/v1/" + path, headers: [("Content-Type", "application/json")], body: body,
            limit: Self.maximumAnswer)
        return (answer.status, answer.body)
    }

    /// One request on a fresh connection (the pinned leaf over https): its status, headers and body (at most `limit`
    /// bytes). Used by the join and by a standby forwarding a client's request (`ClusterForwarder`).
    func send(
        method: HTTPMethod, target: String, headers: [(String, String)], body: [UInt8], limit: Int
    ) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        let context = try pinnedLeaf.map { _ in try PinnedLeaf.clientContext() }
        let pinned = pinnedLeaf
        let host = self.host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(20))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context, let pinned {
                        try channel.pipeline.syncOperations.addHandler(
                            try PinnedLeaf.handler(context: context, host: host, pinned: pinned))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let hostHeader = PinnedLeaf.hostHeader(host: host, port: port)
        let place = self.place
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
            head.headers.add(name: "Host", value: hostHeader)
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "Connection", value: "close")
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(ByteBuffer(bytes: body))), .end(nil)])
            var status: Int?
            var answerHeaders = HTTPHeaders()
            var received: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    answerHeaders = response.headers
                case .body(let buffer):
                    received += buffer.readableBytesView
                    guard received.count <= limit else {
                        throw ClusterJoinError("the answer of \(place) to \(target) is larger than \(limit) bytes")
                    }
                case .end:
                    guard let status else { throw ClusterJoinError("the answer of \(place) has no status line") }
                    return (status, answerHeaders, received)
                }
            }
            throw ClusterJoinError("the connection to \(place) closed before the answer to \(target) was complete")
        }
    }
}
