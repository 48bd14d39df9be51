import Foundation
import SNP
import SNPEmulator
import Testing
import X509

@testable import KeyService

/// `auth/sev-snp` role and config writes change only the fields they name, under the method's write lock: writers
/// naming different fields of the same role (or of the config) at the same time never lose one another's change.
/// The backend is driven directly from parallel tasks (the served pipeline in tests runs one event loop, where two
/// writes never overlap); without the lock these tests lose updates.
@Suite struct SevSNPAuthConcurrencyTests {
    /// One field per writer, each with a value that differs from the default, and how it reads back.
    static let roleFields: [(field: String, value: JSONValue, read: JSONValue)] = [
        ("token_ttl", .string("11m"), .int(660)), ("token_max_ttl", .string("2h"), .int(7200)),
        ("token_num_uses", .int(7), .int(7)), ("min_guest_svn", .int(4), .int(4)), ("bound_vmpl", .int(1), .int(1)),
        ("allow_vlek", .bool(false), .bool(false)), ("permit_provisional_firmware", .bool(true), .bool(true)),
        ("bound_host_data", .string(String(repeating: "11", count: 32)), .string(String(repeating: "11", count: 32))),
        ("bound_products", .array([.string("genoa")]), .array([.string("genoa")])),
        ("token_no_default_policy", .bool(true), .bool(true)),
        ("min_tcb", .string("0400000000000018"), .string("0400000000000018")),
        ("token_period", .string("5m"), .int(300)),
    ]

    struct Method {
        let backend: SevSNPAuthBackend
        let context: SevSNPAuthBackend.Context

        init() throws {
            let barrier = Barrier(backend: MemoryBackend())
            try barrier.initialize(rootKey: try DevSealProvider().rootKey())
            let services = try Services.open(EngineStorage(backend: barrier, prefix: ""))
            backend = SevSNPAuthBackend(storage: EngineStorage(backend: barrier, prefix: "auth/race/"))
            context = SevSNPAuthBackend.Context(
                tokens: services.tokens, policies: services.policies, servedSPKISHA256: AttestedLoginBinding.absent)
        }

        func call(
            _ operation: VaultRequest.Operation, _ path: String, _ body: [String: JSONValue] = [:]
        )
            async throws(VaultError) -> VaultReply
        {
            try await backend.serve(
                VaultRequest(operation: operation, path: "auth/race/" + path, body: .object(body), query: [:]),
                path: path, context: context)
        }

        func read(_ path: String) async throws -> [String: JSONValue] {
            let reply = try await call(.read, path)
            guard case .object(let data)? = reply.data else {
                Issue.record("reading \(path) answered no data")
                return [:]
            }
            return data
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func concurrentWritersOfDifferentRoleFieldsAllLand() async throws {
        let method = try Method()
        let measurement = JSONValue.array([.string(String(repeating: "5a", count: 48))])
        for round in 0..<20 {
            let name = "race-\(round)"
            _ = try await method.call(.update, "role/" + name, ["bound_measurements": measurement])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (field, value, _) in Self.roleFields {
                    group.addTask { _ = try await method.call(.update, "role/" + name, [field: value]) }
                }
                try await group.waitForAll()
            }
            let data = try await method.read("role/" + name)
            #expect(data["bound_measurements"] == measurement, "round \(round)")
            for (field, _, read) in Self.roleFields {
                #expect(data[field] == read, "round \(round): \(field) was lost")
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func concurrentWritersOfDifferentConfigFieldsAllLand() async throws {
        let method = try Method()
        let audience = JSONValue.array([.string(String(repeating: "ab", count: 32))])
        let roots = JSONValue.array([.string(SevSNPAuthTests.chip.ark.pemRepresentation)])
        for round in 0..<50 {
            let writes: [[String: JSONValue]] = [
                ["nonce_ttl": .string("\(90 + round)s")], ["audience_spki_sha256": audience],
                ["clock_skew": .string("\(30 + round)s")], ["trusted_roots": roots],
            ]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for body in writes { group.addTask { _ = try await method.call(.update, "config", body) } }
                try await group.waitForAll()
            }
            let data = try await method.read("config")
            #expect(data["nonce_ttl"] == .int(Int64(90 + round)), "round \(round)")
            #expect(data["audience_spki_sha256"] == audience, "round \(round)")
            #expect(data["clock_skew"] == .int(Int64(30 + round)), "round \(round)")
            #expect(data["trusted_roots"] == roots, "round \(round)")
            _ = try await method.call(
                .update, "config",
                [
                    "audience_spki_sha256": .array([]), "trusted_roots": .array([]), "nonce_ttl": .string("60s"),
                    "clock_skew": .int(0),
                ])
        }
    }
}
