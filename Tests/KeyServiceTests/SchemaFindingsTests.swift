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
                            // A cluster's join, nonce and root-key rotation always answer a body (200, never 204).
                            let alwaysABody = [
                                "/sys/cluster/join", "/sys/cluster/join/nonce", "/sys/cluster/rotate-root",
                            ]
                            .contains(path)
                            #expect(
                                (alwaysABody ? responses["200"] : responses["204"]) != nil && responses["413"] != nil,
                                "\(verb) \(path)")
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

    /// Issue 17's paths are in the document (sys/cluster/…, sys/step-down), with the answers of a node alone: each
    /// of them, called on this node (not a cluster's: DevStorage), answers a 400 the document lists, whose sentence
    /// says the node is alone.
    @Test func theDocumentListsTheClusterPathsAndWhatANodeAloneAnswers() async throws {
        // The join policy's fields are described (as the sev-snp role's), every one the sponsor accepts.
        #expect(Set(OpenAPIDocument.joinPolicyFields.map(\.name)) == ClusterJoinSponsor.policyFields)
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            let paths = try await client.execute(
                uri: "/v1/sys/internal/specs/openapi", method: .get, headers: token
            ) { response in
                try #require(try json(response.body)["paths"] as? [String: [String: Any]])
            }
            let operations: [(path: String, verb: String, uri: String, method: HTTPRequest.Method, body: String?)] = [
                ("/sys/cluster/members", "get", "/v1/sys/cluster/members", .get, nil),
                ("/sys/cluster/members/", "get", "/v1/sys/cluster/members/?list=true", .get, nil),
                ("/sys/cluster/members/{node_id}", "delete", "/v1/sys/cluster/members/node-2", .delete, nil),
                ("/sys/cluster/rotate-root", "post", "/v1/sys/cluster/rotate-root", .post, "{}"),
                ("/sys/cluster/join/nonce", "post", "/v1/sys/cluster/join/nonce", .post, "{}"),
                ("/sys/cluster/join", "post", "/v1/sys/cluster/join", .post, #"{"node_id":"n"}"#),
                ("/sys/cluster/join-policy", "get", "/v1/sys/cluster/join-policy", .get, nil),
                ("/sys/cluster/join-policy", "post", "/v1/sys/cluster/join-policy", .post, "{}"),
                ("/sys/cluster/join-policy", "delete", "/v1/sys/cluster/join-policy", .delete, nil),
                ("/sys/step-down", "post", "/v1/sys/step-down", .post, "{}"),
            ]
            for operation in operations {
                let documented = try #require(
                    paths[operation.path]?[operation.verb] as? [String: Any], "\(operation.verb) \(operation.path)")
                let responses = try #require(documented["responses"] as? [String: Any])
                try await client.execute(
                    uri: operation.uri, method: operation.method, headers: token,
                    body: operation.body.map { ByteBuffer(string: $0) }
                ) { response in
                    #expect(response.status == .badRequest, "\(operation.uri)")
                    #expect(responses["400"] != nil, "\(operation.verb) \(operation.path)")
                    let errors = try json(response.body)["errors"] as? [String] ?? []
                    #expect(errors.contains { $0.contains("this vhsmd") }, "\(operation.uri): \(errors)")
                }
            }
            // The clustered answers: the members' and the join's fields, the removal's 404, the nonce's 429, the
            // step-down's 204 only, the join's request fields (certificates: a list or one string).
            func properties(_ path: String, _ verb: String, _ status: String = "200") -> [String: Any]? {
                let operation = paths[path]?[verb] as? [String: Any]
                let answer = (operation?["responses"] as? [String: Any])?[status] as? [String: Any]
                let schema = ((answer?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
                let data = ((schema as? [String: Any])?["properties"] as? [String: Any])?["data"] as? [String: Any]
                return data?["properties"] as? [String: Any]
            }
            #expect(Set((properties("/sys/cluster/members", "get") ?? [:]).keys) == ["keys", "members", "cluster"])
            #expect(
                Set((properties("/sys/cluster/members/", "get") ?? [:]).keys) == ["keys", "members", "cluster"])
            #expect(
                Set((properties("/sys/cluster/members/{node_id}", "delete") ?? [:]).keys)
                    == ["removed", "generation"])
            #expect(properties("/sys/cluster/rotate-root", "post")?["generation"] != nil)
            #expect(
                Set((properties("/sys/cluster/join/nonce", "post") ?? [:]).keys) == ["nonce", "expires_at", "ttl"])
            #expect(
                Set((properties("/sys/cluster/join", "post") ?? [:]).keys)
                    == ["cluster", "generation", "suite", "sealed_root_key", "info"])
            #expect(properties("/sys/cluster/join-policy", "get")?["default"] != nil)
            let remove = try #require(paths["/sys/cluster/members/{node_id}"]?["delete"] as? [String: Any])
            #expect((remove["responses"] as? [String: Any])?["404"] != nil)
            #expect((remove["responses"] as? [String: Any])?["204"] == nil)
            let nonce = try #require(paths["/sys/cluster/join/nonce"]?["post"] as? [String: Any])
            #expect((nonce["responses"] as? [String: Any])?["429"] != nil)
            #expect((nonce["security"] as? [Any])?.isEmpty == true)
            let stepDown = try #require(paths["/sys/step-down"]?["post"] as? [String: Any])
            let stepDownAnswers = try #require(stepDown["responses"] as? [String: Any])
            #expect(stepDownAnswers["204"] != nil && stepDownAnswers["200"] == nil && stepDownAnswers["307"] != nil)
            #expect(paths["/sys/step-down"]?["x-vault-sudo"] as? Bool == true)
            let join = try #require(paths["/sys/cluster/join"]?["post"] as? [String: Any])
            let fields = try #require(
                ((((join["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"]
                    as? [String: Any])?["schema"] as? [String: Any])?["properties"] as? [String: Any])
            #expect(Set(fields.keys) == ["node_id", "nonce", "report", "certificates", "public_key"])
            #expect(((fields["certificates"] as? [String: Any])?["anyOf"] as? [Any])?.count == 2)
            // sys/leader and sys/health: their answers outside the envelope, health's 429 with the same body.
            let leader = try #require(paths["/sys/leader"]?["get"] as? [String: Any])
            let leaderSchema = try #require(
                (((((leader["responses"] as? [String: Any])?["200"] as? [String: Any])?["content"] as? [String: Any])?[
                    "application/json"] as? [String: Any])?["schema"] as? [String: Any])?["properties"]
                    as? [String: Any])
            #expect(leaderSchema["ha_enabled"] != nil && leaderSchema["leader_node_id"] != nil)
            let health = try #require(paths["/sys/health"]?["get"] as? [String: Any])
            let standby = try #require((health["responses"] as? [String: Any])?["429"] as? [String: Any])
            #expect(
                ((((standby["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
                    as? [String: Any])?["properties"] as? [String: Any])?["standby"] != nil)
        }
    }
}
