import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import KeyService

/// `allowed_parameters`, `denied_parameters`, `required_parameters` as Vault's `AllowOperation` checks them, and
/// the create-vs-update existence check on KV v2 writes.
@Suite struct ParameterConstraintTests {
    private func acl(_ texts: String...) throws -> ACL {
        ACL(policies: try texts.enumerated().map { index, text in try Policy.parse(text, name: "p\(index)") })
    }

    @Test func allowedParametersRestrictNamesAndValues() throws {
        let acl = try acl(
            #"""
            path "transit/keys/*" {
              capabilities = ["create", "update"]
              allowed_parameters = { "type" = ["aes256-gcm96", "ed25519"], "exportable" = [] }
            }
            """#)
        let path = "transit/keys/a"
        #expect(acl.allows(.update, path: path, parameters: ["type": .string("ed25519")]))
        #expect(
            acl.allows(.update, path: path, parameters: ["type": .string("aes256-gcm96"), "exportable": .bool(true)]))
        #expect(acl.allows(.update, path: path, parameters: [:]))
        #expect(!acl.allows(.update, path: path, parameters: ["type": .string("rsa-2048")]))
        #expect(!acl.allows(.update, path: path, parameters: ["derived": .bool(true)]))
        // Names are matched case-insensitively, as Vault lower-cases them.
        #expect(acl.allows(.update, path: path, parameters: ["TYPE": .string("ed25519")]))
        // Without `parameters` (capability queries) nothing is checked.
        #expect(acl.allows(.update, path: path))
        // A delete is not subject to parameter constraints.
        #expect(!acl.allows(.delete, path: path, parameters: ["x": .int(1)]))
    }

    @Test func deniedParametersWinAndStarDeniesAnyData() throws {
        let acl = try acl(
            #"""
            path "secret/data/*" {
              capabilities = ["create", "update"]
              denied_parameters = { "options" = [] , "mode" = ["*-unsafe", "raw*"] }
              allowed_parameters = { "*" = [] }
            }
            path "locked/*" {
              capabilities = ["update"]
              denied_parameters = { "*" = [] }
            }
            """#)
        #expect(acl.allows(.update, path: "secret/data/a", parameters: ["data": .object(["k": .string("v")])]))
        #expect(!acl.allows(.update, path: "secret/data/a", parameters: ["options": .object([:])]))
        #expect(!acl.allows(.update, path: "secret/data/a", parameters: ["mode": .string("very-unsafe")]))
        #expect(!acl.allows(.update, path: "secret/data/a", parameters: ["mode": .string("rawbytes")]))
        #expect(acl.allows(.update, path: "secret/data/a", parameters: ["mode": .string("safe")]))
        #expect(!acl.allows(.update, path: "locked/x", parameters: ["anything": .int(1)]))
        // Denied names alone (no allow-list) leave every other name allowed.
        let denyOnly = try self.acl(#"path "d/*" { capabilities = ["update"] denied_parameters = { "a" = [] } }"#)
        #expect(denyOnly.allows(.update, path: "d/x", parameters: ["b": .int(1)]))
        #expect(!denyOnly.allows(.update, path: "d/x", parameters: ["a": .int(1), "b": .int(1)]))
        #expect(acl.allows(.update, path: "locked/x", parameters: [:]))
    }

    @Test func requiredParametersMustBePresentAndListsMatchElementwise() throws {
        let acl = try acl(
            #"""
            path "transit/encrypt/*" {
              capabilities = ["update"]
              required_parameters = ["context"]
              allowed_parameters = { "context" = [], "plaintext" = [], "key_version" = [1, 2], "tags" = ["a", "b"] }
            }
            """#)
        let path = "transit/encrypt/k"
        #expect(!acl.allows(.update, path: path, parameters: ["plaintext": .string("eA==")]))
        #expect(
            acl.allows(.update, path: path, parameters: ["plaintext": .string("eA=="), "context": .string("Yw==")]))
        #expect(acl.allows(.update, path: path, parameters: ["context": .string("c"), "key_version": .int(2)]))
        #expect(!acl.allows(.update, path: path, parameters: ["context": .string("c"), "key_version": .int(3)]))
        #expect(acl.allows(.update, path: path, parameters: ["context": .string("c"), "tags": .array([.string("a")])]))
        #expect(
            !acl.allows(
                .update, path: path,
                parameters: ["context": .string("c"), "tags": .array([.string("a"), .string("z")])]))
    }

    @Test func policiesOnTheSamePathMergeTheirParameterLists() throws {
        let acl = try acl(
            #"path "k/*" { capabilities = ["update"] allowed_parameters = { "type" = ["a"] } }"#,
            #"path "k/*" { capabilities = ["update"] allowed_parameters = { "type" = ["b"], "size" = [] } }"#)
        #expect(acl.allows(.update, path: "k/x", parameters: ["type": .string("a")]))
        #expect(acl.allows(.update, path: "k/x", parameters: ["type": .string("b"), "size": .int(3)]))
        #expect(!acl.allows(.update, path: "k/x", parameters: ["type": .string("c")]))
    }

    @Test func kvWritesNeedCreateForNewSecretsAndUpdateForExistingOnes() async throws {
        let server = ServerTests()
        let (app, root) = try await server.makeApp()
        let rootHeader: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            func call(
                _ uri: String, _ method: HTTPRequest.Method, _ headers: HTTPFields, _ body: String = ""
            ) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body)) {
                    response in
                    let parsed =
                        response.body.readableBytes == 0 ? [:] : (try? server.json(response.body)) ?? [:]
                    return (response.status, parsed)
                }
            }
            let policies = [
                ("creator", #"path "secret/data/*" { capabilities = ["create"] }"#),
                ("updater", #"path "secret/data/*" { capabilities = ["update"] }"#),
            ]
            for (name, text) in policies {
                let body = try JSONSerialization.data(withJSONObject: ["policy": text])
                let (status, _) = try await call(
                    "/v1/sys/policies/acl/\(name)", .put, rootHeader, String(decoding: body, as: UTF8.self))
                #expect(status == .noContent)
            }
            var tokens: [String: HTTPFields] = [:]
            for name in ["creator", "updater"] {
                let (_, body) = try await call(
                    "/v1/auth/token/create", .post, rootHeader, #"{"policies":["\#(name)"]}"#)
                let token = try #require((body["auth"] as? [String: Any])?["client_token"] as? String)
                tokens[name] = [HTTPField.Name("X-Vault-Token")!: token]
            }
            let write = #"{"data":{"k":"v"}}"#
            #expect(try await call("/v1/secret/data/new", .post, tokens["updater"]!, write).0 == .forbidden)
            #expect(try await call("/v1/secret/data/new", .post, tokens["creator"]!, write).0 == .ok)
            #expect(try await call("/v1/secret/data/new", .post, tokens["creator"]!, write).0 == .forbidden)
            #expect(try await call("/v1/secret/data/new", .post, tokens["updater"]!, write).0 == .ok)
        }
    }
}
