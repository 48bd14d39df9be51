import Foundation
import Testing

@testable import KeyService

@Suite struct PolicyStoreTests {
    @Test func putGetListDelete() async throws {
        let store = PolicyStore()
        #expect(store.list() == ["default", "root"])
        let text = #"path "transit/*" { capabilities = ["read"] }"#
        let first = try store.put(name: "  App ", policy: text)
        #expect(first.name == "app" && first.version == 1 && first.raw == text)
        let second = try store.put(name: "app", policy: text + "\n")
        #expect(second.version == 2)
        #expect(store.entry("APP")?.raw == text + "\n")
        #expect(store.policy("app")?.rules.first?.path == "transit/")
        try store.put(name: "zeta", policy: text)
        #expect(store.list() == ["app", "default", "zeta", "root"])
        try store.delete("app")
        try store.delete("never-existed")
        #expect(store.entry("app") == nil)
        #expect(store.list() == ["default", "zeta", "root"])
    }

    @Test func builtinsAreProtected() async throws {
        let store = PolicyStore()
        let text = #"path "*" { capabilities = ["read"] }"#
        #expect(throws: VaultError.badRequest("cannot update \"root\" policy")) {
            try store.put(name: "root", policy: text)
        }
        #expect(throws: VaultError.badRequest("cannot delete \"root\" policy")) { try store.delete("root") }
        #expect(throws: VaultError.badRequest("cannot delete default policy")) { try store.delete("Default") }
        // `default` may be rewritten.
        let updated = try store.put(name: "default", policy: text)
        #expect(updated.version == 2)
        #expect(store.entry("root")?.raw == "")
        #expect(store.entry("default")?.version == 2)
        #expect(store.policy("root") == Policy.root)
    }

    @Test func rejectsInvalidPolicies() async throws {
        let store = PolicyStore()
        #expect(throws: VaultError.badRequest("failed to parse policy: path \"a\": invalid capability \"fly\"")) {
            try store.put(name: "bad", policy: #"path "a" { capabilities = ["fly"] }"#)
        }
        #expect(throws: VaultError.badRequest("'policy' parameter not supplied or empty")) {
            try store.put(name: "bad", policy: "")
        }
        #expect(throws: VaultError.badRequest("policy name must be provided in the URL")) {
            try store.put(name: " ", policy: #"path "a" {}"#)
        }
        #expect(store.entry("bad") == nil)
    }

    @Test func checkAndSet() async throws {
        let store = PolicyStore()
        let text = #"path "a" { capabilities = ["read"] }"#
        #expect(throws: VaultError.badRequest("check-and-set parameter did not match the current version")) {
            try store.put(name: "p", policy: text, cas: 3)
        }
        try store.put(name: "p", policy: text, cas: -1, casRequired: true)
        #expect(throws: VaultError.badRequest("check-and-set parameter set to -1 on existing entry")) {
            try store.put(name: "p", policy: text, cas: -1)
        }
        #expect(throws: VaultError.badRequest("check-and-set parameter required for this call")) {
            try store.put(name: "p", policy: text)
        }
        #expect(try store.put(name: "p", policy: text, cas: 1).version == 2)
    }

    @Test func decodesBase64Policies() async throws {
        let store = PolicyStore()
        let text = #"path "a" { capabilities = ["read"] }"#
        let entry = try store.put(name: "b64", policy: Data(text.utf8).base64EncodedString())
        #expect(entry.raw == text)
        // Wrapped base64 with CRLF line ends (a file written on Windows): each "\r\n" is one Character in Swift.
        let long = text + "\n" + #"path "b/*" { capabilities = ["read", "list"] }"#
        let wrapped = Data(long.utf8).base64EncodedString(options: [
            .lineLength64Characters, .endLineWithCarriageReturn, .endLineWithLineFeed,
        ])
        #expect(wrapped.contains("\r\n"))
        #expect(try store.put(name: "b64-crlf", policy: wrapped).raw == long)
    }

    @Test func tokenPoliciesBuildAnACL() async throws {
        let store = PolicyStore()
        try store.put(name: "app", policy: #"path "transit/encrypt/app" { capabilities = ["update"] }"#)
        let acl = store.acl(for: ["app", "default", "missing"])
        #expect(acl.allows(.update, path: "transit/encrypt/app"))
        #expect(acl.allows(.read, path: "auth/token/lookup-self"))
        #expect(!acl.allows(.update, path: "transit/encrypt/other"))
        #expect(store.acl(for: ["root"]).isRoot)
        #expect(store.policies(named: ["missing", "app"]).map(\.name) == ["app"])
    }

    @Test func snapshotRoundTrips() async throws {
        let store = PolicyStore()
        try store.put(name: "app", policy: #"path "a" { capabilities = ["read"] }"#)
        let saved = store.snapshot()
        #expect(saved.map(\.name) == ["app", "default"])
        let restored = try PolicyStore(restoring: saved)
        #expect(restored.snapshot() == saved)
        #expect(restored.acl(for: ["app"]).allows(.read, path: "a"))
        let data = try JSONEncoder().encode(saved)
        #expect(try JSONDecoder().decode([PolicyStore.Entry].self, from: data) == saved)
    }
}
