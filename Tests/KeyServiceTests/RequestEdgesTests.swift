import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import KeyService

/// Edges a differential run of hvac calls against OpenBao turned up: refused requests leave nothing behind, bodies
/// are JSON objects, KV merge patches, transit's settings, and the verbs a path does not take.
@Suite struct RequestEdgesTests {
    let server = ServerTests()

    @Test func aRefusedMountEnableLeavesNoMount() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            for body in [
                #"{"type":"kv","config":{"default_lease_ttl":"abc"}}"#, #"{"type":"kv","options":"v2"}"#,
                #"{"type":"kv","config":{"default_lease_ttl":"3h","max_lease_ttl":"1h"}}"#,
            ] {
                try await client.execute(
                    uri: "/v1/sys/mounts/refused", method: .post, headers: token, body: ByteBuffer(string: body)
                ) { response in #expect(response.status == .badRequest, "\(body)") }
                try await client.execute(uri: "/v1/sys/mounts", method: .get, headers: token) { response in
                    let data = try #require(try server.json(response.body)["data"] as? [String: Any])
                    #expect(data["refused/"] == nil, "\(body)")
                }
            }
        }
    }

    @Test func bodiesMustBeJSONObjectsAndVerbsMustFitThePath() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            for body in ["[1,2]", #""text""#, "7"] {
                try await client.execute(
                    uri: "/v1/auth/token/create", method: .post, headers: token, body: ByteBuffer(string: body)
                ) { response in #expect(response.status == .badRequest, "\(body)") }
            }
            try await client.execute(uri: "/v1/sys/health", method: .delete) { response in
                #expect(response.status == .methodNotAllowed)
            }
            var namespaced = token
            namespaced[HTTPField.Name("X-Vault-Namespace")!] = "team-a"
            try await client.execute(uri: "/v1/sys/mounts", method: .get, headers: namespaced) { response in
                #expect(response.status == .notFound)
            }
            // Go's router cleans doubled slashes.
            try await client.execute(uri: "/v1/sys//mounts", method: .get, headers: token) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func mergePatchFollowsRFC7386() throws {
        // RFC 7386 appendix A, a few of its cases.
        func patch(_ target: String, _ patch: String) throws -> JSONValue {
            KVStore.mergePatch(try JSONValue.parse(Array(target.utf8)), try JSONValue.parse(Array(patch.utf8)))
        }
        #expect(try patch(#"{"a":"b"}"#, #"{"a":"c"}"#) == .object(["a": .string("c")]))
        #expect(try patch(#"{"a":"b"}"#, #"{"b":"c"}"#) == .object(["a": .string("b"), "b": .string("c")]))
        #expect(try patch(#"{"a":"b","b":"c"}"#, #"{"a":null}"#) == .object(["b": .string("c")]))
        #expect(
            try patch(#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#) == .object(["a": .object(["b": .string("d")])])
        )
        #expect(try patch(#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#) == .object(["a": .array([.int(1)])]))
        #expect(try patch(#"{"e":null}"#, #"{"a":1}"#) == .object(["e": .null, "a": .int(1)]))
    }

    @Test func transitSettingsAreKeptAndUpsertCanBeTurnedOff() throws {
        let storage = try DevStorage.make()
        let store = TransitStore(storage: storage)
        try store.updateSettings {
            $0.cacheSize = 20
            $0.disableUpsert = true
        }
        let reopened = TransitStore(storage: storage)
        let settings = try reopened.settings()
        #expect(settings.cacheSize == 20 && settings.disableUpsert)
    }
}
