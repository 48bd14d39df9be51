import AttestedTLS
public import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SNP
public import SNPEmulator
import SwiftASN1
public import Synchronization
public import X509

/// An in-process HTTPS server on 127.0.0.1 with a fresh self-signed P-256 certificate, answering each request with
/// `answer(server, uri)`: a stand-in for vhsmd in the client's tests (the real one is in scripts/attested-tls-test.sh).
public final class FakeVHSMD: Sendable {
    let channel: any Channel
    public let port: Int
    public let certificate: Certificate
    public let certificateDER: [UInt8]
    /// The URI of every request, in order.
    public let requests = Mutex<[String]>([])

    public typealias Answer = @Sendable (FakeVHSMD, String) async throws -> (Int, [UInt8])

    private init(channel: any Channel, certificate: Certificate, der: [UInt8]) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.certificate = certificate
        self.certificateDER = der
    }

    /// `lengthHeader: false` answers chunked, without Content-Length.
    public static func start(
        tls: Bool = true, lengthHeader: Bool = true, extensions: Certificate.Extensions = Certificate.Extensions(),
        key: P256.Signing.PrivateKey = P256.Signing.PrivateKey(), answer: @escaping Answer
    ) async throws -> FakeVHSMD {
        let name = try DistinguishedName { CommonName("vhsmd") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60), notValidAfter: Date().addingTimeInterval(3600),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let der = serializer.serializedBytes
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: der, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: configuration)
        let box = Mutex<FakeVHSMD?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        Responder(server: { box.withLock { $0 } }, lengthHeader: lengthHeader, answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = FakeVHSMD(channel: channel, certificate: certificate, der: der)
        box.withLock { $0 = server }
        return server
    }

    public func stop() { channel.close(promise: nil) }

    /// The SHA-256 of this server's SPKI.
    public var spkiSHA256: [UInt8] { AttestedTLSBinding.spkiSHA256(certificate.publicKey.subjectPublicKeyInfoDER) }

    /// vhsmd's answer to `uri` (`/v1/sys/attestation?nonce=HEX`): a report from `guest` binding the nonce and
    /// `spkiSHA256` (default: this server's key), in Vault's envelope, with the certificate table's chain unless
    /// `certificates` is false (a host that supplies none); 400 for another request.
    public func attestation(
        _ uri: String, guest: EmulatedGuest, spkiSHA256: [UInt8]? = nil, certificates: Bool = true
    ) throws -> (Int, [UInt8]) {
        let prefix = "/v1/sys/attestation?nonce="
        guard uri.hasPrefix(prefix), let nonce = try? Hex.decode(String(uri.dropFirst(prefix.count)), count: 32) else {
            return (400, Array(#"{"errors":["not a sys/attestation request with a nonce"]}"#.utf8))
        }
        let spki = spkiSHA256 ?? self.spkiSHA256
        guard let data = AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spki) else {
            return (500, Array(#"{"errors":["bad key hash"]}"#.utf8))
        }
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data))
        let report = try response.checked()
        let chain = certificates ? AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey) : []
        return (200, Self.envelope(nonce: nonce, report: report.bytes, certificates: chain, spki: spki))
    }

    /// `{"data": {"format", "nonce", "report", "certificates", "spki_sha256"}, …}` as vhsmd writes it.
    public static func envelope(nonce: [UInt8], report: [UInt8], certificates: [[UInt8]], spki: [UInt8]) -> [UInt8] {
        let list = certificates.map { "\"\(Data($0).base64EncodedString())\"" }.joined(separator: ",")
        return Array(
            (#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"#
                + #""format":"vhsm-attested-tls-v1","nonce":"\#(Hex.encode(nonce))","#
                + #""report":"\#(Data(report).base64EncodedString())","certificates":[\#(list)],"#
                + #""spki_sha256":"\#(Hex.encode(spki))"},"wrap_info":null,"warnings":null,"auth":null}"#).utf8)
    }

    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: @Sendable () -> FakeVHSMD?
        let answer: Answer
        let lengthHeader: Bool

        init(server: @escaping @Sendable () -> FakeVHSMD?, lengthHeader: Bool, answer: @escaping Answer) {
            self.server = server
            self.lengthHeader = lengthHeader
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data), let server = server() else { return }
            server.requests.withLock { $0.append(head.uri) }
            let answer = self.answer
            let bound = NIOLoopBound((context, self), eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: (Int, [UInt8]).self)
            promise.completeWithTask { try await answer(server, head.uri) }
            promise.futureResult.whenComplete { result in
                let (context, handler) = bound.value
                let (status, body) = (try? result.get()) ?? (500, Array(#"{"errors":["test server failed"]}"#.utf8))
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                if handler.lengthHeader { headers.add(name: "Content-Length", value: String(body.count)) }
                let responseHead = HTTPResponseHead(
                    version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
                context.write(handler.wrapOutboundOut(.head(responseHead)), promise: nil)
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    bound.value.0.close(promise: nil)
                }
            }
        }
    }
}
