import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KeyService

/// The router's ACL check and the policy endpoints over the served pipeline (`.live`): PATCH is held to a rule's
/// parameter constraints (as OpenBao holds it), every operation is checked as itself, `sys/policyX` is no policy
/// endpoint, and a policy change that cannot be kept is not served.
@Suite struct ACLRequestTests {
    let server = ServerTests()
    typealias Call = TokenStoreSecurityTests

    static func patch(
        _ client: some TestClientProtocol, _ path: String, token: String, _ body: String
    ) async throws -> HTTPResponse.Status {
        try await client.execute(
            uri: "/v1/" + path, method: .patch,
            headers: [
                HTTPField.Name("X-Vault-Token")!: token, .contentType: "application/merge-patch+json",
            ], body: ByteBuffer(string: body)
        ) { $0.status }
    }

    @Test func patchIsHeldToTheRulesParameterConstraints() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            for name in ["s", "r", "al"] {
                let written = try await Call.call(
                    client, .post, "secret/data/" + name, token: root, #"{"data":{"a":"1"}}"#)
                #expect(written.status == .ok)
            }
            let token = try await Call.token(
                client, root: root, policy: "patcher",
                #"""
                path "secret/data/*" {
                    capabilities = ["patch", "read"]
                    denied_parameters = { "options" = [] }
                }
                path "secret/data/r" {
                    capabilities = ["patch"]
                    required_parameters = ["options"]
                }
                path "secret/data/al" {
                    capabilities = ["patch"]
                    allowed_parameters = { "data" = [] }
                }
                """#)
            #expect(try await Self.patch(client, "secret/data/s", token: token, #"{"data":{"b":"2"}}"#) == .ok)
            #expect(
                try await Self.patch(client, "secret/data/s", token: token, #"{"data":{"b":"2"},"options":{"cas":1}}"#)
                    == .forbidden)
            #expect(try await Self.patch(client, "secret/data/r", token: token, #"{"data":{"b":"2"}}"#) == .forbidden)
            #expect(
                try await Self.patch(client, "secret/data/r", token: token, #"{"data":{"b":"2"},"options":{}}"#) == .ok)
            #expect(
                try await Self.patch(client, "secret/data/al", token: token, #"{"data":{"b":"2"},"options":{}}"#)
                    == .forbidden)
            #expect(try await Self.patch(client, "secret/data/al", token: token, #"{"data":{"b":"3"}}"#) == .ok)
            // The denied PATCH changed nothing.
            let read = try await Call.call(client, .get, "secret/data/s", token: root)
            #expect((read.data["data"] as? [String: String]) == ["a": "1", "b": "2"])
        }
    }

    /// Every request operation is checked as itself: a rule granting only `read` (with `sudo`) allows reads and
    /// nothing else, and a rule granting every other capability but `read` allows no read.
    @Test func everyOperationIsCheckedAsItself() throws {
        let readOnly = try Policy.parse(#"path "p/*" { capabilities = ["read", "sudo"] }"#, name: "r")
        let allButRead = try Policy.parse(
            #"path "p/*" { capabilities = ["create", "update", "delete", "list", "patch", "sudo"] }"#, name: "w")
        let operations: [VaultRequest.Operation] = [.read, .create, .update, .delete, .list, .patch]
        for operation in operations {
            #expect(ACLOperation(operation).rawValue == operation.rawValue)
            let request = VaultRequest(operation: operation, path: "p/x", body: .object([:]), query: [:], token: nil)
            #expect(ACL(policies: [readOnly]).authorize(request) == (operation == .read), "\(operation)")
            #expect(ACL(policies: [allButRead]).authorize(request) == (operation != .read), "\(operation)")
        }
    }

    @Test func policyEndpointsAreMatchedOnSegmentBoundaries() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            let text = #"{"policy":"path \"secret/*\" { capabilities = [\"read\"] }"}"#
            // A token allowed on `sys/policyfoo` (not on `sys/policy/foo`) cannot write the policy `foo` with it.
            let token = try await Call.token(
                client, root: root, policy: "near",
                #"path "sys/policyfoo" { capabilities = ["create", "update", "read"] }"#)
            for (path, caller) in [
                ("sys/policyfoo", token), ("sys/policyfoo", root), ("sys/policies/aclfoo", root),
            ] {
                #expect(try await Call.call(client, .put, path, token: caller, text).status == .notFound, "\(path)")
                #expect(try await Call.call(client, .get, path, token: caller).status == .notFound, "\(path)")
            }
            #expect(try await Call.call(client, .get, "sys/policy/foo", token: root).status == .notFound)
            #expect(try await Call.call(client, .get, "sys/policies/acl/foo", token: root).status == .notFound)
            #expect(try await Call.call(client, .put, "sys/policy/foo", token: root, text).status == .noContent)
            #expect(try await Call.call(client, .get, "sys/policies/acl/foo", token: root).status == .ok)
        }
    }

    /// A store whose writes of the policy set fail while `failing` is set.
    final class PolicyWritesFail: StorageBackend {
        let inner: any StorageBackend
        let failing = Mutex(false)

        init(_ inner: any StorageBackend) { self.inner = inner }

        struct Refused: Error, CustomStringConvertible {
            var description: String { "the test store refuses writes of the policy set" }
        }

        func get(_ path: String) throws -> [UInt8]? { try inner.get(path) }
        func put(_ path: String, _ value: [UInt8]) throws {
            if path.hasPrefix("core/policies"), failing.withLock({ $0 }) { throw Refused() }
            try inner.put(path, value)
        }
        func delete(_ path: String) throws { try inner.delete(path) }
        func list(prefix: String) throws -> [String] { try inner.list(prefix: prefix) }
        func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
            try inner.transaction(body)
        }
    }

    @Test func aPolicyChangeThatCannotBeKeptIsNotServed() async throws {
        let dev = try DevStorage.make()
        let backend = PolicyWritesFail(dev.backend)
        let services = try Services.open(EngineStorage(backend: backend, prefix: ""))
        let root = try services.tokens.create(
            id: "test-root",
            entry: .root(accessor: "acc"))
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), metrics: ServiceMetrics())
        let app = try ServerTests.serve(core)
        try await app.test(.live) { client in
            let first = #"{"policy":"path \"secret/a\" { capabilities = [\"read\"] }"}"#
            let second = #"{"policy":"path \"secret/*\" { capabilities = [\"read\", \"update\"] }"}"#
            #expect(try await Call.call(client, .put, "sys/policies/acl/kept", token: root, first).status == .noContent)
            backend.failing.withLock { $0 = true }
            let changed = try await Call.call(client, .put, "sys/policies/acl/kept", token: root, second)
            #expect(changed.status == .internalServerError)
            let added = try await Call.call(client, .put, "sys/policies/acl/new", token: root, second)
            #expect(added.status == .internalServerError)
            let deleted = try await Call.call(client, .delete, "sys/policies/acl/kept", token: root)
            #expect(deleted.status == .internalServerError)
            // Memory is as storage: the first text, version 1; no `new`.
            let kept = try await Call.call(client, .get, "sys/policies/acl/kept", token: root)
            #expect(kept.data["policy"] as? String == #"path "secret/a" { capabilities = ["read"] }"#)
            #expect(kept.data["version"] as? Int == 1)
            #expect(try await Call.call(client, .get, "sys/policies/acl/new", token: root).status == .notFound)
            let listed = try await Call.call(client, .get, "sys/policies/acl?list=true", token: root)
            #expect(listed.data["keys"] as? [String] == ["default", "kept", "root"])
            // And what is kept is what a restart restores.
            backend.failing.withLock { $0 = false }
        }
        let reopened = try Services.open(EngineStorage(backend: backend, prefix: ""))
        #expect(reopened.policies.list() == ["default", "kept", "root"])
        #expect(reopened.policies.entry("kept")?.version == 1)
    }
}
