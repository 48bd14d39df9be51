import Foundation
import Testing

@testable import KeyService

@Suite struct PolicyStoreTests {
    @Test func putGetListDelete() async throws {
        let store = PolicyStore()
        #expect(await store.list() == ["default", "root"])
        let text = #"path "transit/*" { capabilities = ["read"] }"#
        let first = try await store.put(name: "  App ", policy: text)
        #expect(first.name == "app" && first.version == 1 && first.raw == text)
        let second = try await store.put(name: "app", policy: text + "\n")
        #expect(second.version == 2)
        #expect(await store.entry("APP")?.raw == text + "\n")
        #expect(await store.policy("app")?.rules.first?.path == "transit/")
        try await store.put(name: "zeta", policy: text)
        #expect(await store.list() == ["app", "default", "zeta", "root"])
        try await store.delete("app")
        try await store.delete("never-existed")
        #expect(await store.entry("app") == nil)
        #expect(await store.list() == ["default", "zeta", "root"])
    }

    @Test func builtinsAreProtected() async throws {
        let store = PolicyStore()
        let text = #"path "*" { capabilities = ["read"] }"#
        await #expect(throws: PolicyError("cannot update \"root\" policy")) {
            try await store.put(name: "root", policy: text)
        }
        await #expect(throws: PolicyError("cannot delete \"root\" policy")) { try await store.delete("root") }
        await #expect(throws: PolicyError("cannot delete default policy")) { try await store.delete("Default") }
        // `default` may be rewritten.
        let updated = try await store.put(name: "default", policy: text)
        #expect(updated.version == 2)
        #expect(await store.entry("root")?.raw == "")
        #expect(await store.entry("default")?.version == 2)
        #expect(await store.policy("root") == Policy.root)
    }

    @Test func rejectsInvalidPolicies() async throws {
        let store = PolicyStore()
        await #expect(throws: PolicyError("failed to parse policy: path \"a\": invalid capability \"fly\"")) {
            try await store.put(name: "bad", policy: #"path "a" { capabilities = ["fly"] }"#)
        }
        await #expect(throws: PolicyError("'policy' parameter not supplied or empty")) {
            try await store.put(name: "bad", policy: "")
        }
        await #expect(throws: PolicyError("policy name must be provided in the URL")) {
            try await store.put(name: " ", policy: #"path "a" {}"#)
        }
        #expect(await store.entry("bad") == nil)
    }

    @Test func checkAndSet() async throws {
        let store = PolicyStore()
        let text = #"path "a" { capabilities = ["read"] }"#
        await #expect(throws: PolicyError("check-and-set parameter did not match the current version")) {
            try await store.put(name: "p", policy: text, cas: 3)
        }
        try await store.put(name: "p", policy: text, cas: -1, casRequired: true)
        await #expect(throws: PolicyError("check-and-set parameter set to -1 on existing entry")) {
            try await store.put(name: "p", policy: text, cas: -1)
        }
        await #expect(throws: PolicyError("check-and-set parameter required for this call")) {
            try await store.put(name: "p", policy: text)
        }
        #expect(try await store.put(name: "p", policy: text, cas: 1).version == 2)
    }

    @Test func decodesBase64Policies() async throws {
        let store = PolicyStore()
        let text = #"path "a" { capabilities = ["read"] }"#
        let entry = try await store.put(name: "b64", policy: Data(text.utf8).base64EncodedString())
        #expect(entry.raw == text)
    }

    @Test func tokenPoliciesBuildAnACL() async throws {
        let store = PolicyStore()
        try await store.put(name: "app", policy: #"path "transit/encrypt/app" { capabilities = ["update"] }"#)
        let acl = await store.acl(for: ["app", "default", "missing"])
        #expect(acl.allows(.update, path: "transit/encrypt/app"))
        #expect(acl.allows(.read, path: "auth/token/lookup-self"))
        #expect(!acl.allows(.update, path: "transit/encrypt/other"))
        #expect(await store.acl(for: ["root"]).isRoot)
        #expect(await store.policies(named: ["missing", "app"]).map(\.name) == ["app"])
    }

    @Test func snapshotRoundTrips() async throws {
        let store = PolicyStore()
        try await store.put(name: "app", policy: #"path "a" { capabilities = ["read"] }"#)
        let saved = await store.snapshot()
        #expect(saved.map(\.name) == ["app", "default"])
        let restored = try PolicyStore(restoring: saved)
        #expect(await restored.snapshot() == saved)
        #expect(await restored.acl(for: ["app"]).allows(.read, path: "a"))
        let data = try JSONEncoder().encode(saved)
        #expect(try JSONDecoder().decode([PolicyStore.Entry].self, from: data) == saved)
    }
}
