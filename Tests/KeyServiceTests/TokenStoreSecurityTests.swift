import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import KeyService

/// The token store's guards, as OpenBao 2.7.2 keeps them (each case is also an hvac check run against both): only
/// root creates root, `no_parent` and `revoke-orphan` take sudo, an expiring root cannot mint a non-expiring one,
/// `response-wrapping` is reserved, policy names are sanitised on every path, and revocation of a deep tree is
/// iterative. Over the served pipeline (`.live`).
@Suite struct TokenStoreSecurityTests {
    let server = ServerTests()

    /// One request over the live server: status and decoded body (empty for 204).
    struct Answer {
        var status: HTTPResponse.Status
        var body: [String: Any]

        var errors: [String] { body["errors"] as? [String] ?? [] }
        var auth: [String: Any] { body["auth"] as? [String: Any] ?? [:] }
        var data: [String: Any] { body["data"] as? [String: Any] ?? [:] }
        var clientToken: String { auth["client_token"] as? String ?? "" }
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String,
        _ body: String? = nil
    ) async throws -> Answer {
        try await client.execute(
            uri: "/v1/" + path, method: method, headers: [HTTPField.Name("X-Vault-Token")!: token],
            body: body.map { ByteBuffer(string: $0) }
        ) { response in
            let bytes = Data(response.body.readableBytesView)
            let object = bytes.isEmpty ? [:] : try JSONSerialization.jsonObject(with: bytes) as? [String: Any] ?? [:]
            return Answer(status: response.status, body: object)
        }
    }

    /// Writes `policy` as `name` and creates a token holding it; returns the token.
    static func token(
        _ client: some TestClientProtocol, root: String, policy name: String, _ text: String
    ) async throws -> String {
        let encoded = String(decoding: try JSONSerialization.data(withJSONObject: ["policy": text]), as: UTF8.self)
        let written = try await call(client, .put, "sys/policies/acl/" + name, token: root, encoded)
        #expect(written.status == .noContent)
        let created = try await call(client, .post, "auth/token/create", token: root, #"{"policies":["\#(name)"]}"#)
        #expect(created.status == .ok)
        return created.clientToken
    }

    @Test func onlyRootCreatesRootWhateverARoleAllows() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            let ops = try await Self.token(
                client, root: root, policy: "ops", #"path "auth/token/create/ops" { capabilities = ["update"] }"#)
            // A role listing root, in any case: stored sanitised.
            let role = try await Self.call(
                client, .post, "auth/token/roles/ops", token: root, #"{"allowed_policies":["ROOT"]}"#)
            #expect(role.status == .noContent)
            let read = try await Self.call(client, .get, "auth/token/roles/ops", token: root)
            #expect(read.data["allowed_policies"] as? [String] == ["root"])
            for body in [#"{}"#, #"{"policies":["root"]}"#, #"{"policies":[" Root "]}"#] {
                let minted = try await Self.call(client, .post, "auth/token/create/ops", token: ops, body)
                #expect(minted.status == .badRequest, "\(body)")
                #expect(minted.errors == ["root tokens may not be created without parent token being root"])
            }
            // A sudo holder on auth/token/create may name any policy, but not root.
            let sudo = try await Self.token(
                client, root: root, policy: "creator",
                #"path "auth/token/create" { capabilities = ["update", "sudo"] }"#)
            let viaSudo = try await Self.call(
                client, .post, "auth/token/create", token: sudo, #"{"policies":["ROOT"]}"#)
            #expect(viaSudo.status == .badRequest)
            #expect(viaSudo.errors == ["root tokens may not be created without parent token being root"])
            let other = try await Self.call(
                client, .post, "auth/token/create", token: sudo, #"{"policies":["other"]}"#)
            #expect(other.status == .ok)
            #expect(other.auth["policies"] as? [String] == ["default", "other"])
        }
    }

    @Test func noParentAndRevokeOrphanTakeSudo() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            let plain = try await Self.token(
                client, root: root, policy: "plain",
                #"""
                path "auth/token/create" { capabilities = ["update"] }
                path "auth/token/revoke-orphan" { capabilities = ["update"] }
                """#)
            let sudo = try await Self.token(
                client, root: root, policy: "sudo",
                #"""
                path "auth/token/create" { capabilities = ["update", "sudo"] }
                path "auth/token/revoke-orphan" { capabilities = ["update", "sudo"] }
                """#)
            let refused = try await Self.call(
                client, .post, "auth/token/create", token: plain, #"{"no_parent":true,"policies":["plain"]}"#)
            #expect(refused.status == .badRequest)
            #expect(refused.errors == ["root or sudo privileges required to create orphan token"])
            let orphan = try await Self.call(
                client, .post, "auth/token/create", token: sudo, #"{"no_parent":true,"policies":["sudo"]}"#)
            #expect(orphan.status == .ok)
            #expect(orphan.auth["orphan"] as? Bool == true)

            let parent = try await Self.call(client, .post, "auth/token/create", token: root, "{}").clientToken
            let child = try await Self.call(client, .post, "auth/token/create", token: parent, "{}").clientToken
            let denied = try await Self.call(
                client, .post, "auth/token/revoke-orphan", token: plain, #"{"token":"\#(parent)"}"#)
            #expect(denied.status == .badRequest)
            #expect(denied.errors == ["root or sudo privileges required to revoke and orphan"])
            // Still there, with its child.
            #expect(
                try await Self.call(client, .post, "auth/token/lookup", token: root, #"{"token":"\#(parent)"}"#)
                    .status == .ok)
            let done = try await Self.call(
                client, .post, "auth/token/revoke-orphan", token: sudo, #"{"token":"\#(parent)"}"#)
            #expect(done.status == .noContent)
            let left = try await Self.call(client, .post, "auth/token/lookup", token: root, #"{"token":"\#(child)"}"#)
            #expect(left.status == .ok)
            #expect(left.data["orphan"] as? Bool == true)
        }
    }

    @Test func anExpiringRootCannotMintANonExpiringOne() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            let expiring = try await Self.call(client, .post, "auth/token/create", token: root, #"{"ttl":"1h"}"#)
            #expect(expiring.auth["policies"] as? [String] == ["root"])
            #expect(expiring.auth["lease_duration"] as? Int == 3600)
            let token = expiring.clientToken
            for (path, body) in [
                ("auth/token/create", "{}"), ("auth/token/create", #"{"ttl":"0"}"#), ("auth/token/create-orphan", "{}"),
            ] {
                let minted = try await Self.call(client, .post, path, token: token, body)
                #expect(minted.status == .badRequest, "\(path) \(body)")
                #expect(minted.errors == ["expiring root tokens cannot create non-expiring root tokens"])
            }
            let bounded = try await Self.call(client, .post, "auth/token/create", token: token, #"{"ttl":"2h"}"#)
            #expect(bounded.status == .ok)
            #expect(bounded.auth["lease_duration"] as? Int == 7200)
            // An explicit max TTL bounds a root token asked without a TTL.
            let capped = try await Self.call(
                client, .post, "auth/token/create", token: token, #"{"explicit_max_ttl":"3h"}"#)
            #expect(capped.status == .ok)
            #expect(capped.auth["lease_duration"] as? Int == 10800)
            // The never-expiring root still mints never-expiring roots.
            let forever = try await Self.call(client, .post, "auth/token/create", token: root, "{}")
            #expect(forever.status == .ok)
            #expect(forever.auth["lease_duration"] as? Int == 0)
        }
    }

    @Test func responseWrappingIsReservedLikeRoot() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            for body in [#"{"policies":["response-wrapping"]}"#, #"{"policies":[" Response-Wrapping"]}"#] {
                let created = try await Self.call(client, .post, "auth/token/create", token: root, body)
                #expect(created.status == .badRequest)
                #expect(created.errors == [#"cannot assign policy "response-wrapping""#])
            }
            let role = try await Self.call(
                client, .post, "auth/token/roles/rw", token: root, #"{"allowed_policies":["response-wrapping"]}"#)
            #expect(role.status == .noContent)
            let viaRole = try await Self.call(client, .post, "auth/token/create/rw", token: root, "{}")
            #expect(viaRole.status == .badRequest)
            #expect(viaRole.errors == [#"cannot assign policy "response-wrapping""#])
            for path in ["sys/policies/acl/response-wrapping", "sys/policy/Response-Wrapping"] {
                let written = try await Self.call(
                    client, .put, path, token: root, #"{"policy":"path \"x\" { capabilities = [\"read\"] }"}"#)
                #expect(written.status == .badRequest)
                #expect(written.errors == [#"cannot update "response-wrapping" policy"#])
            }
            let deleted = try await Self.call(client, .delete, "sys/policies/acl/response-wrapping", token: root)
            #expect(deleted.status == .badRequest)
            #expect(deleted.errors == [#"cannot delete "response-wrapping" policy"#])
            let read = try await Self.call(client, .get, "sys/policies/acl/response-wrapping", token: root)
            #expect(read.status == .ok)
            #expect((read.data["policy"] as? String)?.contains(#"path "sys/wrapping/unwrap""#) == true)
            let listed = try await Self.call(client, .get, "sys/policies/acl?list=true", token: root)
            #expect(listed.data["keys"] as? [String] == ["default", "root"])
        }
    }

    @Test func policyNamesAreSanitisedOnEveryPath() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            // ROOT is root for the token store as for the ACL: a root token, shown as such.
            let upper = try await Self.call(
                client, .post, "auth/token/create", token: root, #"{"policies":["ROOT","x"]}"#)
            #expect(upper.status == .ok)
            #expect(upper.auth["policies"] as? [String] == ["root"])
            let looked = try await Self.call(client, .get, "auth/token/lookup-self", token: upper.clientToken)
            #expect(looked.data["policies"] as? [String] == ["root"])
            // Other names the same way: " Reader " is the policy "reader".
            let policy = #"{"policy":"path \"auth/token/create\" { capabilities = [\"update\"] }"}"#
            #expect(
                try await Self.call(client, .put, "sys/policies/acl/Reader", token: root, policy).status == .noContent)
            let reader = try await Self.call(
                client, .post, "auth/token/create", token: root, #"{"policies":[" Reader ","reader"]}"#)
            #expect(reader.auth["policies"] as? [String] == ["default", "reader"])
            // The sanitised policy is the one the ACL applies; a non-root creator cannot reach root by case.
            let child = try await Self.call(
                client, .post, "auth/token/create", token: reader.clientToken, #"{"policies":["ROOT"]}"#)
            #expect(child.status == .badRequest)
            #expect(child.errors == ["child policies must be subset of parent"])
            let same = try await Self.call(
                client, .post, "auth/token/create", token: reader.clientToken, #"{"policies":["READER"]}"#)
            #expect(same.status == .ok)
            #expect(same.auth["policies"] as? [String] == ["default", "reader"])
        }
    }

    /// Revoking the top of a 10 000-deep chain of child tokens: iterative and linear (the recursive revocation,
    /// which rescanned every token at each level, neither finished in time nor kept its stack).
    @Test(.timeLimit(.minutes(2))) func revokingADeepChainOfChildren() async throws {
        let storage = try DevStorage.make()
        let services = try Services.open(storage)
        let tokens = services.tokens
        func entry(parent: [UInt8]?, policies: [String]) -> TokenStore.Entry {
            TokenStore.Entry(
                accessor: TokenStore.newToken(prefix: ""), policies: policies, displayName: "token",
                creationTime: Date(), ttl: parent == nil ? nil : 3600, explicitMaxTTL: 0, renewable: true, numUses: 0,
                meta: [:], parent: parent, orphan: parent == nil, path: "auth/token/create")
        }
        let root = try tokens.create(id: "test-root", entry: entry(parent: nil, policies: ["root"]))
        let top = try tokens.create(entry: entry(parent: tokens.key(token: root), policies: ["default"]))
        var chain = [top]
        for _ in 0..<10_000 {
            chain.append(try tokens.create(entry: entry(parent: tokens.key(token: chain.last!), policies: ["default"])))
        }
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), metrics: ServiceMetrics())
        let app = try ServerTests.serve(core)
        let probes = [top, chain[5_000], chain[chain.count - 1]]
        try await app.test(.live) { client in
            let revoked = try await Self.call(client, .post, "auth/token/revoke", token: root, #"{"token":"\#(top)"}"#)
            #expect(revoked.status == .noContent)
            for token in probes {
                let lookup = try await Self.call(
                    client, .post, "auth/token/lookup", token: root, #"{"token":"\#(token)"}"#)
                #expect(lookup.status == .forbidden)
            }
            #expect(try await Self.call(client, .get, "auth/token/lookup-self", token: root).status == .ok)
        }
        #expect(try tokens.accessorList().count == 1)
    }
}
