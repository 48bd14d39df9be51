import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import KeyService

@Suite struct ServerTests {
    /// The listener's limits with patient timeouts: a test client connects before its first request, and under
    /// `swift test --parallel` on two cores that request can come later than Vault's 10 s header timeout. Tests
    /// of the timeouts set their own.
    static var patientLimits: ListenerLimits {
        var limits = ListenerLimits()
        limits.readHeaderTimeout = .seconds(300)
        limits.readTimeout = .seconds(300)
        return limits
    }

    func makeApp(
        limits: ListenerLimits = ServerTests.patientLimits, audit: AuditBroker = AuditBroker()
    ) async throws -> (some ApplicationProtocol, String) {
        let storage = try DevStorage.make()
        let services = try Services.open(storage)
        let tokens = services.tokens
        let root = try tokens.create(
            id: "test-root",
            entry: .root(accessor: "acc"))
        try services.mounts.enable(
            path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), audit: audit, metrics: ServiceMetrics())
        return (try Self.serve(core, limits: limits), root)
    }

    /// The served application of `core` on a loopback port the system picks, with patient limits unless told.
    static func serve(
        _ core: VaultCore, limits: ListenerLimits = ServerTests.patientLimits
    ) throws -> some ApplicationProtocol {
        try buildApplication(core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), limits: limits)
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test func healthAnswersWithoutATokenAndHonoursTheStatusQuery() async throws {
        let (app, _) = try await makeApp()
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/sys/health", method: .get) { response in
                #expect(response.status == .ok)
                let body = try json(response.body)
                #expect(body["initialized"] as? Bool == true && body["sealed"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/sys/health?activecode=299", method: .get) { response in
                #expect(response.status.code == 299)
            }
            try await client.execute(uri: "/v1/sys/health", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
            }
        }
    }

    @Test func aMissingTokenIsForbiddenWithVaultsErrorShape() async throws {
        let (app, _) = try await makeApp()
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/auth/token/lookup-self", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType] == "application/json")
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors == ["permission denied"])
            }
        }
    }

    @Test func responsesCarryTheEnvelopeAndUnknownPathsSayNoHandler() async throws {
        let (app, root) = try await makeApp()
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/auth/token/lookup-self", method: .get, headers: [HTTPField.Name("X-Vault-Token")!: root]
            ) { response in
                let body = try json(response.body)
                for key in [
                    "request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth",
                ] {
                    #expect(body.keys.contains(key), "\(key)")
                }
                #expect((body["data"] as? [String: Any])?["policies"] as? [String] == ["root"])
            }
            try await client.execute(
                uri: "/v1/nowhere/x", method: .get, headers: [HTTPField.Name("X-Vault-Token")!: root]
            ) { response in
                #expect(response.status == .notFound)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors?.first?.contains("no handler for route") == true)
            }
        }
    }

    @Test func aDeletedKVVersionIs404WithItsMetadata() async throws {
        let (app, root) = try await makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/secret/data/app", method: .post, headers: token,
                body: ByteBuffer(string: #"{"data":{"k":"v"},"options":{}}"#)
            ) { response in #expect(response.status == .ok) }
            try await client.execute(uri: "/v1/secret/data/app", method: .delete, headers: token) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/v1/secret/data/app", method: .get, headers: token) { response in
                #expect(response.status == .notFound)
                let data = try #require(try json(response.body)["data"] as? [String: Any])
                #expect(data["data"] is NSNull)
                #expect(((data["metadata"] as? [String: Any])?["deletion_time"] as? String)?.isEmpty == false)
            }
        }
    }

    @Test func theListVerbIsRewrittenOnlyAtRequestStarts() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ListVerbRewriter()))
        let requests = [
            "LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /v1/x HTTP/1.1\r\nContent-Length: 14\r\n\r\nLIST /v1/body/",
            "LIST /v1/y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nLIST \r\n0\r\n\r\n",
            "GET /v1/z HTTP/1.1\r\n\r\n",
        ]
        // Feed the stream in awkward pieces, as TCP may deliver it.
        let stream = Array(requests.joined().utf8)
        var offset = 0
        for size in [3, 50, 1, 17, 200, 1000] where offset < stream.count {
            let end = min(stream.count, offset + size)
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
            offset = end
        }
        var output: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { output += buffer.readableBytesView }
        let expected = requests.joined()
            .replacingOccurrences(of: "LIST /v1/secret", with: "LINK /v1/secret")
            .replacingOccurrences(of: "LIST /v1/y", with: "LINK /v1/y")
        #expect(String(decoding: output, as: UTF8.self) == expected)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nContent-Length: 14\r\n\r\n", ListVerbRewriter.State.body(remaining: 14)),
        ("POST / HTTP/1.1\r\ncontent-LENGTH:\t7 \r\n\r\n", .body(remaining: 7)),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", .chunkSize(scanned: 0)),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", .head(scanned: 0)),
        ("GET / HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n", .head(scanned: 0)),
        ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", .passthrough),
    ])
    func requestFramingIsReadFromTheHeadBytes(head: String, expected: ListVerbRewriter.State) throws {
        #expect(try ListVerbRewriter.framing(of: ByteBuffer(string: head)) == expected)
    }

    /// A Content-Length that is not a number is a parse error (NIO's error handler answers 400 and closes).
    @Test func aMalformedContentLengthIsAParseError() {
        #expect(throws: HTTPParserError.invalidContentLength) {
            try ListVerbRewriter.framing(of: ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"))
        }
    }

    @Test func chunkSizesAreHexWithOptionalExtensions() {
        func size(_ text: String) -> Int? {
            ListVerbRewriter.chunkSize(ByteBuffer(string: text).readableBytesView[...])
        }
        #expect(size("1a") == 26)
        #expect(size("FF;name=value") == 255)
        #expect(size(" 0 ") == 0)
        #expect(size("xyz") == nil)
        #expect(size("") == nil)
        #expect(size("1234567890abcdef") == nil)
    }

    @Test func requestIDsAreVersion4UUIDs() {
        let ids = (0..<100).map { _ in RequestID.make() }
        #expect(Set(ids).count == 100)
        for id in ids {
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased())
            let characters = Array(id)
            #expect(characters[14] == "4")
            #expect("89ab".contains(characters[19]))
        }
    }
}
