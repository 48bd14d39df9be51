import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import KeyService

/// Issue 16, item 2: what schemathesis (scripts/schema-test.sh, driven by vhsmd's own OpenAPI document) found, each
/// through the served pipeline.
@Suite struct SchemaFindingsTests {
    let server = ServerTests()

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    /// A client's mistake in transit is a 400 with Vault's sentence, never a 500: a backup of a key that forbids it,
    /// a restore of something that is not a backup (whose answer named Swift's decoding error), an existing key.
    @Test func transitBackupAndRestoreMistakesAre400WithASentence() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/mounts/transit", method: .post, headers: token,
                body: ByteBuffer(string: #"{"type":"transit"}"#)
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(
                uri: "/v1/transit/keys/k", method: .post, headers: token, body: ByteBuffer(string: "{}")
            ) { response in #expect(response.status.code / 100 == 2) }
            try await client.execute(uri: "/v1/transit/backup/k", method: .get, headers: token) { response in
                #expect(response.status == .badRequest)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors == ["exporting is disallowed on the policy"])
            }
            for body in [#"{"backup": ""}"#, #"{"backup": "bm90IGpzb24="}"#] {
                try await client.execute(
                    uri: "/v1/transit/restore", method: .post, headers: token, body: ByteBuffer(string: body)
                ) { response in
                    #expect(response.status == .badRequest)
                    let errors = try json(response.body)["errors"] as? [String]
                    #expect(
                        errors == [
                            "failed to restore the policy: the backup is not base64 of a key this server backed up"
                        ])
                }
            }
        }
    }

    /// Every operation in the document lists the answers vhsmd gives: a write's 204 beside its 200, and the
    /// refusals (400, 403, 404, 405, 503; 413 for a body) in Vault's error shape; an unauthenticated path needs no
    /// token; a duration is answered as seconds.
    @Test func theDocumentListsEveryAnswerAnOperationGives() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/auth/vms", method: .post, headers: token, body: ByteBuffer(string: #"{"type":"sev-snp"}"#)
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(uri: "/v1/sys/internal/specs/openapi", method: .get, headers: token) { response in
                let paths = try #require(try json(response.body)["paths"] as? [String: [String: Any]])
                var operations = 0
                for (path, item) in paths {
                    for verb in ["get", "post", "patch", "delete"] {
                        guard let operation = item[verb] as? [String: Any] else { continue }
                        operations += 1
                        let responses = try #require(operation["responses"] as? [String: Any])
                        for status in ["400", "403", "404", "405", "503"] {
                            let answer = try #require(responses[status] as? [String: Any], "\(verb) \(path) \(status)")
                            let content = answer["content"] as? [String: Any]
                            #expect(content?["application/json"] != nil, "\(verb) \(path) \(status)")
                        }
                        if verb == "post" || verb == "patch" {
                            #expect(responses["204"] != nil && responses["413"] != nil, "\(verb) \(path)")
                        }
                    }
                }
                #expect(operations > 100)
                let nonce = try #require(paths["/auth/vms/nonce"]?["post"] as? [String: Any])
                #expect((nonce["security"] as? [Any])?.isEmpty == true)
                let tidy = try #require(paths["/auth/token/tidy"]?["post"] as? [String: Any])
                #expect((tidy["responses"] as? [String: Any])?["202"] != nil)
                let config = try #require(paths["/auth/vms/config"]?["get"] as? [String: Any])
                let answer = try #require(
                    ((((((config["responses"] as? [String: Any])?["200"] as? [String: Any])?["content"]
                        as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any])?[
                            "properties"] as? [String: Any])?["data"] as? [String: Any])
                let nonceTTL = try #require((answer["properties"] as? [String: Any])?["nonce_ttl"] as? [String: Any])
                #expect(nonceTTL["type"] as? String == "integer")
            }
        }
    }
}
