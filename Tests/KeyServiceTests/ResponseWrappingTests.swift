import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SNP
import Testing

@testable import KeyService

/// Response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/*`): single-use tokens for answers kept in the sealed store.
@Suite struct ResponseWrappingTests {
    let server = ServerTests()

    private func headers(_ token: String?, wrap: String? = nil) -> HTTPFields {
        var fields = HTTPFields()
        if let token { fields[HTTPField.Name("X-Vault-Token")!] = token }
        if let wrap { fields[HTTPField.Name("X-Vault-Wrap-TTL")!] = wrap }
        return fields
    }

    private func errors(_ body: ByteBuffer) throws -> [String] { try server.json(body)["errors"] as? [String] ?? [] }

    @Test func aWrappedTokenCreationIsUnwrappedOnceByItsHolder() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            var wrappingToken = ""
            var wrappedAccessor = ""
            try await client.execute(
                uri: "/v1/auth/token/create", method: .post, headers: headers(root, wrap: "5m"),
                body: ByteBuffer(string: #"{"policies":["default"],"ttl":"1h"}"#)
            ) { response in
                #expect(response.status == .ok)
                let body = try server.json(response.body)
                #expect(body["auth"] is NSNull)
                #expect(body["data"] is NSNull)
                #expect(body["request_id"] as? String == "")
                let info = try #require(body["wrap_info"] as? [String: Any])
                #expect(info["ttl"] as? Int == 300)
                #expect(info["creation_path"] as? String == "auth/token/create")
                wrappingToken = try #require(info["token"] as? String)
                wrappedAccessor = try #require(info["wrapped_accessor"] as? String)
                #expect(!wrappedAccessor.isEmpty && info["accessor"] as? String != wrappedAccessor)
            }
            // Anyone may look it up (no token needed); looking does not spend it.
            try await client.execute(
                uri: "/v1/sys/wrapping/lookup", method: .post, headers: headers(nil),
                body: ByteBuffer(string: #"{"token":"\#(wrappingToken)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let data = try #require(try server.json(response.body)["data"] as? [String: Any])
                #expect(data["creation_path"] as? String == "auth/token/create")
                #expect(data["creation_ttl"] as? Int == 300)
                #expect((data["creation_time"] as? String)?.hasSuffix("Z") == true)
            }
            // The holder unwraps with the wrapping token alone and gets the original answer.
            var created = ""
            try await client.execute(uri: "/v1/sys/wrapping/unwrap", method: .post, headers: headers(wrappingToken)) {
                response in
                #expect(response.status == .ok)
                let body = try server.json(response.body)
                #expect(body["wrap_info"] is NSNull)
                let auth = try #require(body["auth"] as? [String: Any])
                #expect(auth["accessor"] as? String == wrappedAccessor)
                #expect(auth["policies"] as? [String] == ["default"])
                #expect(auth["lease_duration"] as? Int == 3600)
                created = try #require(auth["client_token"] as? String)
            }
            try await client.execute(uri: "/v1/auth/token/lookup-self", method: .get, headers: headers(created)) {
                response in #expect(response.status == .ok)
            }
            // Single use: a second unwrap, or a lookup, finds nothing.
            for path in ["unwrap", "lookup"] {
                try await client.execute(
                    uri: "/v1/sys/wrapping/\(path)", method: .post, headers: headers(wrappingToken)
                ) { response in
                    #expect(response.status == .badRequest)
                    let messages = try errors(response.body)
                    #expect(messages == ["wrapping token is not valid or does not exist"])
                }
            }
        }
    }

    @Test func wrapRewrapAndTheRefusals() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/wrapping/wrap", method: .post, headers: headers(root),
                body: ByteBuffer(string: #"{"a":"b"}"#)
            ) { response in
                #expect(response.status == .badRequest)
                let messages = try errors(response.body)
                #expect(messages == ["endpoint requires response wrapping to be used"])
            }
            for (ttl, message) in [
                ("abc", #"error parsing X-Vault-Wrap-TTL header: time: invalid duration "abc""#),
                ("-5", "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"),
            ] {
                try await client.execute(
                    uri: "/v1/sys/wrapping/wrap", method: .post, headers: headers(root, wrap: ttl),
                    body: ByteBuffer(string: #"{"a":"b"}"#)
                ) { response in
                    #expect(response.status == .badRequest)
                    let messages = try errors(response.body)
                    #expect(messages == [message])
                }
            }
            // A 204 has nothing to wrap and stays a 204.
            try await client.execute(
                uri: "/v1/sys/policies/acl/p", method: .post, headers: headers(root, wrap: "60"),
                body: ByteBuffer(string: #"{"policy":"path \"x\" { capabilities = [\"read\"] }"}"#)
            ) { response in #expect(response.status == .noContent) }

            var first = ""
            try await client.execute(
                uri: "/v1/sys/wrapping/wrap", method: .post, headers: headers(root, wrap: "90s"),
                body: ByteBuffer(string: #"{"a":"b","n":1}"#)
            ) { response in
                let info = try #require(try server.json(response.body)["wrap_info"] as? [String: Any])
                #expect(info["creation_path"] as? String == "sys/wrapping/wrap")
                first = try #require(info["token"] as? String)
            }
            // Rewrap: a new token with the original's path and TTL; the old one is spent.
            var second = ""
            try await client.execute(
                uri: "/v1/sys/wrapping/rewrap", method: .post, headers: headers(root),
                body: ByteBuffer(string: #"{"token":"\#(first)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let info = try #require(try server.json(response.body)["wrap_info"] as? [String: Any])
                #expect(info["creation_path"] as? String == "sys/wrapping/wrap")
                #expect(info["ttl"] as? Int == 90)
                second = try #require(info["token"] as? String)
                #expect(second != first)
            }
            try await client.execute(uri: "/v1/sys/wrapping/unwrap", method: .post, headers: headers(first)) {
                response in #expect(response.status == .badRequest)
            }
            // With the token in the body, the caller's own token authorises the unwrap.
            try await client.execute(
                uri: "/v1/sys/wrapping/unwrap", method: .post, headers: headers(root),
                body: ByteBuffer(string: #"{"token":"\#(second)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let data = try #require(try server.json(response.body)["data"] as? [String: Any])
                #expect(data["a"] as? String == "b")
                #expect(data["n"] as? Int == 1)
            }
            // An ordinary token is not a wrapping token: refused, and left alone.
            try await client.execute(
                uri: "/v1/sys/wrapping/unwrap", method: .post, headers: headers(root),
                body: ByteBuffer(string: #"{"token":"\#(root)"}"#)
            ) { response in #expect(response.status == .badRequest) }
            try await client.execute(uri: "/v1/auth/token/lookup-self", method: .get, headers: headers(root)) {
                response in #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/sys/wrapping/lookup", method: .post, headers: headers(nil)) {
                response in
                #expect(response.status == .forbidden)
                let messages = try errors(response.body)
                #expect(messages == ["error validating wrapping token: token is empty"])
            }
        }
    }

    @Test func usingTheWrappingTokenForAnythingElseSpendsIt() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            var wrapping = ""
            try await client.execute(
                uri: "/v1/secret/data/w", method: .post, headers: headers(root),
                body: ByteBuffer(string: #"{"data":{"x":"y"}}"#)
            ) { response in #expect(response.status == .ok) }
            try await client.execute(uri: "/v1/secret/data/w", method: .get, headers: headers(root, wrap: "1m")) {
                response in
                let info = try #require(try server.json(response.body)["wrap_info"] as? [String: Any])
                #expect(info["creation_path"] as? String == "secret/data/w")
                wrapping = try #require(info["token"] as? String)
            }
            // Its policy grants nothing, and the one use is gone.
            try await client.execute(uri: "/v1/auth/token/lookup-self", method: .get, headers: headers(wrapping)) {
                response in #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/v1/sys/wrapping/unwrap", method: .post, headers: headers(wrapping)) {
                response in #expect(response.status == .badRequest)
            }
        }
    }

    @Test func theWrappedAnswerIsSealedAndGoesWithItsToken() throws {
        let storage = try DevStorage.make()
        let tokens = try TokenStore(storage: storage)
        var reply = VaultReply.data(["secret": .string("s3cret")])
        reply.leaseDuration = 60
        let wrapped = try tokens.wrap(reply, path: "kv/x", ttl: 30)
        let token = try #require(
            wrapped.wrapInfo?.objectMembers["token"].flatMap { value -> String? in
                if case .string(let text) = value { return text }
                return nil
            })
        let record = TokenStore.wrappingRecord(tokens.key(token: token))
        #expect(try storage.read(TokenStore.WrappedResponse.self, record) != nil)
        let entry = try #require(try tokens.entry(token: token))
        #expect(entry.policies == ["response-wrapping"] && entry.numUses == 1 && entry.orphan && !entry.renewable)
        let unwrapped = try tokens.unwrap(token: token).reply
        #expect(unwrapped.data == .object(["secret": .string("s3cret")]))
        #expect(unwrapped.leaseDuration == 60)
        #expect(try storage.read(TokenStore.WrappedResponse.self, record) == nil)
        #expect(try tokens.entry(token: token) == nil)

        // Revoking a wrapping token removes what it wrapped.
        let other = try tokens.wrap(reply, path: "kv/y", ttl: 30)
        guard case .string(let second)? = other.wrapInfo?.objectMembers["token"] else {
            Issue.record("no wrapping token")
            return
        }
        try tokens.revoke(key: tokens.key(token: second))
        #expect(
            try storage.read(TokenStore.WrappedResponse.self, TokenStore.wrappingRecord(tokens.key(token: second)))
                == nil)
    }

    @Test func theAuditLineHashesTheWrappingToken() throws {
        let device = try AuditDeviceTests().device()
        let response = AuditResponse(
            VaultReply(wrapInfo: .object(["token": .string("s.secret"), "accessor": .string("acc"), "ttl": .int(60)])))
        let line = device.responseLine(AuditDeviceTests.transitEncrypt, response: response, time: "t")
        let text = String(decoding: line.serialized, as: UTF8.self)
        #expect(!text.contains("s.secret"))
        #expect(text.contains("\"wrap_info\":{\"accessor\":\"hmac-sha256:"))
    }
}
