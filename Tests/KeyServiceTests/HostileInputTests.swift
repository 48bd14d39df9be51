import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KeyService

/// Inputs that trapped vhsmd (a trap in the test process fails the whole run): each is answered with a 4xx and a
/// sentence over the served pipeline, and the server keeps serving after it.
@Suite struct HostileInputTests {
    let server = ServerTests()
    static let tokenHeader = HTTPField.Name("X-Vault-Token")!
    static let wrapHeader = HTTPField.Name("X-Vault-Wrap-TTL")!

    /// The first error message of a JSON answer.
    func firstError(_ buffer: ByteBuffer) throws -> String {
        let body = try server.json(buffer)
        return try #require((body["errors"] as? [String])?.first)
    }

    /// The server still answers after the hostile requests.
    func stillServing(_ client: some TestClientProtocol) async throws {
        try await client.execute(uri: "/v1/sys/health", method: .get) { response throws in
            #expect(response.status == .ok)
        }
    }

    @Test func hugeWrapTTLsAreRefusedWith400() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            for ttl in ["99999999999999999999s", "99999999999999999999", "9223372037", "3000000h", "1e30s"] {
                try await client.execute(uri: "/v1/sys/health", method: .get, headers: [Self.wrapHeader: ttl]) {
                    response throws in
                    #expect(response.status == .badRequest, "\(ttl)")
                    #expect(try firstError(response.body).contains("X-Vault-Wrap-TTL"), "\(ttl)")
                }
                try await client.execute(
                    uri: "/v1/sys/mounts", method: .get, headers: [Self.tokenHeader: root, Self.wrapHeader: ttl]
                ) { response throws in #expect(response.status == .badRequest, "\(ttl)") }
            }
            // The longest duration Vault takes still wraps.
            try await client.execute(
                uri: "/v1/sys/mounts", method: .get, headers: [Self.tokenHeader: root, Self.wrapHeader: "9223372036"]
            ) { response throws in
                #expect(response.status == .ok)
                let wrapInfo = try server.json(response.body)["wrap_info"] as? [String: Any]
                #expect(wrapInfo?["ttl"] as? Int == 9_223_372_036)
            }
            try await stillServing(client)
        }
    }

    @Test func healthStatusCodesOutsideHTTPsRangeAreRefusedWith400() async throws {
        let (app, _) = try await server.makeApp()
        try await app.test(.live) { client in
            for query in [
                "activecode=1000", "activecode=0", "activecode=-1", "activecode=99", "activecode=100",
                "activecode=abc", "activecode=99999999999999999999", "sealedcode=1000", "uninitcode=-5",
                "standbycode=65536",
            ] {
                try await client.execute(uri: "/v1/sys/health?\(query)", method: .get) { response throws in
                    #expect(response.status == .badRequest, "\(query)")
                    let name = String(query.prefix { $0 != "=" })
                    #expect(try firstError(response.body).hasPrefix("bad code for \(name): "), "\(query)")
                }
                try await client.execute(uri: "/v1/sys/health?\(query)", method: .head) { response throws in
                    #expect(response.status == .badRequest, "\(query)")
                }
            }
            for code in [200, 299, 418, 503, 999] {
                try await client.execute(uri: "/v1/sys/health?activecode=\(code)", method: .get) { response throws in
                    #expect(response.status.code == code)
                    #expect(try server.json(response.body)["sealed"] as? Bool == false)
                }
            }
            try await stillServing(client)
        }
    }

    @Test func numbersOutsideInt64AndDurationsOver292YearsAreRefusedWith400() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [Self.tokenHeader: root]
        try await app.test(.live) { client in
            func post(
                _ uri: String, _ body: String, expect status: HTTPResponse.Status, mentioning word: String? = nil
            )
                async throws
            {
                try await client.execute(uri: uri, method: .post, headers: token, body: ByteBuffer(string: body)) {
                    response throws in
                    #expect(response.status == status, "\(uri) \(body)")
                    if let word {
                        #expect(try firstError(response.body).contains(word), "\(uri) \(body)")
                    }
                }
            }
            // JSONValue.int on doubles outside Int64 (and integers too long for Int64, parsed as doubles).
            for number in ["1e30", "-1e30", "99999999999999999999", "9.3e18"] {
                try await post(
                    "/v1/auth/token/create", #"{"num_uses":\#(number)}"#, expect: .badRequest, mentioning: "num_uses")
                try await post(
                    "/v1/secret/config", #"{"max_versions":\#(number)}"#, expect: .badRequest,
                    mentioning: "max_versions")
                try await post(
                    "/v1/secret/data/x", #"{"options":{"cas":\#(number)},"data":{"a":"b"}}"#, expect: .badRequest,
                    mentioning: "cas")
            }
            // Durations: strings and integers past Go's time.Duration, in token, KV and mount fields.
            let ttls = [
                #""99999999999999999999s""#, #""9999999999""#, "9999999999", "-9999999999", #""3000000h""#, "1e30",
            ]
            for (index, ttl) in ttls.enumerated() {
                try await post("/v1/auth/token/create", #"{"ttl":\#(ttl)}"#, expect: .badRequest, mentioning: "ttl")
                try await post(
                    "/v1/auth/token/create", #"{"period":\#(ttl)}"#, expect: .badRequest, mentioning: "period")
                try await post(
                    "/v1/auth/token/create", #"{"explicit_max_ttl":\#(ttl)}"#, expect: .badRequest,
                    mentioning: "explicit_max_ttl")
                try await post(
                    "/v1/auth/token/renew-self", #"{"increment":\#(ttl)}"#, expect: .badRequest, mentioning: "increment"
                )
                try await post(
                    "/v1/secret/config", #"{"delete_version_after":\#(ttl)}"#, expect: .badRequest,
                    mentioning: "delete_version_after")
                try await post(
                    "/v1/sys/mounts/m\(index)", #"{"type":"kv","config":{"default_lease_ttl":\#(ttl)}}"#,
                    expect: .badRequest, mentioning: "default_lease_ttl")
            }
            // The longest duration Vault takes is still a duration (capped by the token method's maximum).
            try await post("/v1/auth/token/create", #"{"ttl":9223372036}"#, expect: .ok)
            try await post("/v1/auth/token/create", #"{"ttl":"2562047h47m16s"}"#, expect: .ok)
            try await stillServing(client)
        }
    }

    @Test func partialFailureCodesOutsideFinalHTTPCodesRevertTo400() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [Self.tokenHeader: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/mounts/transit", method: .post, headers: token,
                body: ByteBuffer(string: #"{"type":"transit"}"#)
            ) { response throws in #expect(response.status == .noContent) }
            try await client.execute(uri: "/v1/transit/keys/k", method: .post, headers: token) { response throws in
                #expect(response.status == .ok)
            }
            func encrypt(code: String) -> ByteBuffer {
                ByteBuffer(
                    string: #"{"partial_failure_response_code":\#(code),"#
                        + #""batch_input":[{"plaintext":"aGk="},{"plaintext":"!!"}]}"#)
            }
            for code in ["1000", "600", "0", "-1", "99", "100", "1"] {
                try await client.execute(
                    uri: "/v1/transit/encrypt/k", method: .post, headers: token, body: encrypt(code: code)
                ) { response throws in
                    #expect(response.status == .badRequest, "\(code)")
                    let body = try server.json(response.body)
                    #expect(
                        body["warnings"] as? [String] == [
                            "invalid HTTP response code override from partial_failure_response_code, reverting to 400"
                        ], "\(code)")
                    let results = (body["data"] as? [String: Any])?["batch_results"] as? [[String: Any]]
                    #expect(results?.count == 2)
                }
            }
            for code in ["1e30", "99999999999999999999"] {
                try await client.execute(
                    uri: "/v1/transit/encrypt/k", method: .post, headers: token, body: encrypt(code: code)
                ) { response throws in
                    #expect(response.status == .badRequest, "\(code)")
                    #expect(try firstError(response.body).contains("partial_failure_response_code"))
                }
            }
            try await client.execute(
                uri: "/v1/transit/encrypt/k", method: .post, headers: token, body: encrypt(code: "207")
            ) { response throws in #expect(response.status.code == 207) }
            try await stillServing(client)
        }
    }

    /// JSON nests at most 256 levels (deeper is 400 before anything recurses over it); a body at the limit is
    /// stored and read back; HCL policies nest at most 100 levels.
    @Test func nestingIsBoundedInJSONBodiesAndPolicies() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [Self.tokenHeader: root]
        let nested: @Sendable (Int) -> String = { depth in
            String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/secret/data/deep", method: .post, headers: token,
                body: ByteBuffer(string: #"{"data":{"a":\#(nested(100_000))}}"#)
            ) { response throws in
                #expect(response.status == .badRequest)
                #expect(try firstError(response.body).contains("not valid JSON"))
            }
            // Two levels for the body and "data", so the value's own nesting is 254: 256 in all.
            try await client.execute(
                uri: "/v1/secret/data/deep", method: .post, headers: token,
                body: ByteBuffer(string: #"{"data":{"a":\#(nested(254))}}"#)
            ) { response throws in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/v1/secret/data/deeper", method: .post, headers: token,
                body: ByteBuffer(string: #"{"data":{"a":\#(nested(255))}}"#)
            ) { response throws in #expect(response.status == .badRequest) }
            try await client.execute(uri: "/v1/secret/data/deep", method: .get, headers: token) { response throws in
                #expect(response.status == .ok)
                let expected = nested(254)
                #expect(String(buffer: response.body).contains(expected))
            }
            // Policies: a deep HCL list, a deep HCL block nesting and a deep JSON document are refused.
            let deepList = #"path "a" { capabilities = \#(nested(50_000)) }"#
            let deepBlocks = String(repeating: "a {", count: 50_000) + String(repeating: "}", count: 50_000)
            let deepJSON = #"{"path":{"a":{"x":\#(nested(200))}}}"#
            for policy in [deepList, deepBlocks, deepJSON] {
                let body = try JSONSerialization.data(withJSONObject: ["policy": policy])
                try await client.execute(
                    uri: "/v1/sys/policies/acl/deep", method: .post, headers: token, body: ByteBuffer(bytes: body)
                ) { response throws in
                    #expect(response.status == .badRequest)
                    #expect(try firstError(response.body).contains("nested deeper than 100 levels"))
                }
            }
            try await stillServing(client)
        }
    }

    /// A storage failure answers 500 with "internal error" and the request ID; the underlying error (here a path
    /// and an SQLite message) is not in the answer.
    @Test func internalErrorDetailsStayOutOfTheAnswer() async throws {
        let backend = FailingBackend()
        let barrier = Barrier(backend: backend)
        try barrier.initialize(rootKey: try DevSealProvider().rootKey())
        let services = try Services.open(EngineStorage(backend: barrier, prefix: ""))
        let root = try services.tokens.create(
            id: "test-root",
            entry: .root(accessor: "acc"))
        try services.mounts.enable(path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), metrics: ServiceMetrics())
        let app = try ServerTests.serve(core)
        try await app.test(.live) { client in
            backend.failing.store(true, ordering: .relaxed)
            try await client.execute(
                uri: "/v1/secret/data/x", method: .post, headers: [Self.tokenHeader: root],
                body: ByteBuffer(string: #"{"data":{"a":"b"}}"#)
            ) { response throws in
                #expect(response.status == .internalServerError)
                let text = String(buffer: response.body)
                #expect(!text.contains(FailingBackend.Failure.text))
                #expect(!text.contains("sealed storage"))
                let errors = try #require(try server.json(response.body)["errors"] as? [String])
                #expect(errors.count == 1)
                #expect(errors.first?.hasPrefix("internal error (request id ") == true)
                // The ID is a request ID (a UUID), the one a log line names.
                let id = errors.first?.dropFirst("internal error (request id ".count).prefix(36)
                #expect(id.flatMap { UUID(uuidString: String($0)) } != nil)
            }
            backend.failing.store(false, ordering: .relaxed)
            try await stillServing(client)
        }
    }
}

/// A memory store whose writes fail while `failing` is set, with a detailed error as SQLite would give.
final class FailingBackend: StorageBackend {
    struct Failure: Error, CustomStringConvertible {
        static let text = "disk I/O error (SQLITE_IOERR_WRITE) on /var/lib/vhsm/store.db"
        var description: String { Self.text }
    }

    let failing = Atomic<Bool>(false)
    private let memory = MemoryBackend()

    func get(_ path: String) throws -> [UInt8]? { try memory.get(path) }
    func put(_ path: String, _ value: [UInt8]) throws {
        if failing.load(ordering: .relaxed) { throw Failure() }
        try memory.put(path, value)
    }
    func delete(_ path: String) throws {
        if failing.load(ordering: .relaxed) { throw Failure() }
        try memory.delete(path)
    }
    func list(prefix: String) throws -> [String] { try memory.list(prefix: prefix) }
    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        if failing.load(ordering: .relaxed) { throw Failure() }
        return try memory.transaction(body)
    }
}
