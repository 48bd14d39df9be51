import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import KeyService

/// `sys/auth/token/tune`: the token method's default and maximum TTL govern the tokens it issues and renews.
@Suite struct TokenTuningTests {
    let server = ServerTests()

    @Test func theTunedTTLsSetTheDefaultAndCapTokens() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            func post(_ uri: String, _ body: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(
                    uri: uri, method: .post, headers: token, body: ByteBuffer(string: body)
                ) { response in
                    (response.status, response.body.readableBytes == 0 ? [:] : try server.json(response.body))
                }
            }
            func leaseDuration(_ body: [String: Any]) -> Int? {
                (body["auth"] as? [String: Any])?["lease_duration"] as? Int
            }

            #expect(
                try await post("/v1/sys/auth/token/tune", #"{"default_lease_ttl":"1h","max_lease_ttl":"2h"}"#).0
                    == .noContent)
            try await client.execute(uri: "/v1/sys/auth/token/tune", method: .get, headers: token) { response in
                let data = try #require(try server.json(response.body)["data"] as? [String: Any])
                #expect(data["default_lease_ttl"] as? Int == 3600 && data["max_lease_ttl"] as? Int == 7200)
            }
            #expect(leaseDuration(try await post("/v1/auth/token/create", #"{"policies":["default"]}"#).1) == 3600)
            #expect(leaseDuration(try await post("/v1/auth/token/create", #"{"ttl":"5h"}"#).1) == 7200)
            #expect(leaseDuration(try await post("/v1/auth/token/create", #"{"period":"5h"}"#).1) == 7200)
            let (refused, body) = try await post("/v1/sys/auth/token/tune", #"{"default_lease_ttl":"3h"}"#)
            #expect(refused == .badRequest)
            #expect(
                body["errors"] as? [String]
                    == ["backend max lease TTL of 7200 would be less than backend default lease TTL of 10800"])
            #expect(try await post("/v1/sys/auth/token/tune", #"{"token_type":"batch"}"#).0 == .badRequest)
            #expect(
                try await post("/v1/sys/auth/token/tune", #"{"max_lease_ttl":"system","default_lease_ttl":"system"}"#).0
                    == .noContent)
            #expect(leaseDuration(try await post("/v1/auth/token/create", #"{"policies":["default"]}"#).1) == 2_764_800)
        }
    }

    @Test func theTuningIsKeptInTheSealedStoreAndCapsRenewals() throws {
        let storage = try DevStorage.make()
        let first = try TokenStore(storage: storage)
        try first.tune(defaultLeaseTTL: 600, maxLeaseTTL: 1200, description: "short")
        let reopened = try TokenStore(storage: storage)
        #expect(reopened.tuning == TokenStore.Tuning(defaultLeaseTTL: 600, maxLeaseTTL: 1200, description: "short"))
        let entry = TokenStore.Entry(
            accessor: "a", policies: ["default"], displayName: "token", creationTime: Date(), ttl: 600,
            explicitMaxTTL: 0, renewable: true, numUses: 0, meta: [:], parent: nil, orphan: true,
            path: "auth/token/create")
        let issued = try reopened.create(entry: entry)
        let renewed = try reopened.renew(key: reopened.key(token: issued), increment: 86_400)
        #expect(renewed.ttl! <= 1200)
    }
}
