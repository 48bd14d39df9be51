import Crypto
import Foundation
import Testing

@testable import KeyService

/// vhsmd's state lives in the sealed store: mounts, transit keys and KV secrets come back after a restart from
/// the same SQLite file and root key, and from nothing else.
@Suite struct PersistenceTests {
    func request(_ operation: VaultRequest.Operation, _ body: JSONValue = .object([:])) -> VaultRequest {
        VaultRequest(operation: operation, path: "", body: body, query: [:], token: nil)
    }

    func open(_ file: String, rootKey: SymmetricKey, fresh: Bool) throws -> MountTable {
        let barrier = Barrier(backend: try SQLiteBackend(file: file))
        if fresh { try barrier.initialize(rootKey: rootKey) } else { try barrier.unseal(rootKey: rootKey) }
        return MountTable(storage: EngineStorage(backend: barrier, prefix: ""))
    }

    /// A new store in a temporary directory (kept alive by the returned value) under a random root key.
    func fresh() throws -> (directory: TemporaryDirectory, file: String, rootKey: SymmetricKey, table: MountTable) {
        let directory = TemporaryDirectory()
        let file = directory.path + "/vhsm.db"
        let rootKey = SymmetricKey(size: .bits256)
        return (directory, file, rootKey, try open(file, rootKey: rootKey, fresh: true))
    }

    @Test func aVersion1KVMountIsUpgradedInPlaceAndStaysUpgraded() async throws {
        let (directory, file, rootKey, first) = try fresh()
        defer { withExtendedLifetime(directory) {} }
        try first.enable(path: "old/", type: "kv", description: "", options: [:])
        let (v1, _) = try #require(first.route("old/x"))
        for (path, value) in [("x", "1"), ("dir/y", "2")] {
            _ = try await v1.backend.handle(request(.update, .object(["a": .string(value)])), path: path)
        }
        #expect(throws: VaultError.self) {
            try first.tune(
                path: "old", description: nil, defaultLeaseTTL: nil, maxLeaseTTL: nil,
                options: ["version": .string("3")])
        }
        let warning = try first.tune(
            path: "old", description: nil, defaultLeaseTTL: nil, maxLeaseTTL: nil, options: ["version": .string("2")])
        #expect(warning?.contains("2 secret(s)") == true)
        let (v2, _) = try #require(first.route("old/data/dir/y"))
        let read = try await v2.backend.handle(request(.read), path: "data/dir/y")
        #expect(read.data?["data"] == .object(["a": .string("2")]))
        #expect(read.data?["metadata"]?["version"] == .int(1))
        // Version 2 stays: no downgrade, and a restart opens the mount as version 2.
        #expect(throws: VaultError.self) {
            try first.tune(
                path: "old", description: nil, defaultLeaseTTL: nil, maxLeaseTTL: nil, options: ["version": .int(1)])
        }
        let second = try open(file, rootKey: rootKey, fresh: false)
        try second.load()
        let (again, _) = try #require(second.route("old/data/x"))
        let written = try await again.backend.handle(
            request(.update, .object(["data": .object(["a": .string("one")])])), path: "data/x")
        #expect(written.data?["version"] == .int(2))
        let first1 = try await again.backend.handle(
            VaultRequest(operation: .read, path: "", body: .object([:]), query: ["version": "1"], token: nil),
            path: "data/x")
        #expect(first1.data?["data"] == .object(["a": .string("1")]))
    }

    @Test func mountsKeysAndSecretsSurviveARestart() async throws {
        let (directory, file, rootKey, first) = try fresh()
        defer { withExtendedLifetime(directory) {} }
        try first.enable(path: "transit/", type: "transit", description: "", options: [:])
        try first.enable(path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let (transit, _) = try #require(first.route("transit/keys/app"))
        _ = try await transit.backend.handle(request(.update), path: "keys/app")
        let encrypted = try await transit.backend.handle(
            request(.update, .object(["plaintext": .string("c2VjcmV0")])), path: "encrypt/app")
        let ciphertext = try #require(encrypted.data?["ciphertext"])
        let (kv, _) = try #require(first.route("secret/data/db"))
        _ = try await kv.backend.handle(
            request(.update, .object(["data": .object(["password": .string("hunter2")])])), path: "data/db")

        // A new process: the same file, the same root key.
        let second = try open(file, rootKey: rootKey, fresh: false)
        try second.load()
        let (transitAgain, _) = try #require(second.route("transit/keys/app"))
        let decrypted = try await transitAgain.backend.handle(
            request(.update, .object(["ciphertext": ciphertext])), path: "decrypt/app")
        #expect(decrypted.data?["plaintext"] == .string("c2VjcmV0"))
        let (kvAgain, _) = try #require(second.route("secret/data/db"))
        let secret = try await kvAgain.backend.handle(request(.read), path: "data/db")
        #expect(secret.data?["data"] == .object(["password": .string("hunter2")]))

        // Another root key (another chip, measurement or TCB) opens nothing.
        #expect(throws: (any Error).self) { try open(file, rootKey: SymmetricKey(size: .bits256), fresh: false) }

        // Nothing readable at rest: neither the secret nor the key name's value.
        // (WAL mode: recent writes may sit in the -wal file, so both files are searched.)
        var scanned = 0
        for path in [file, file + "-wal"] where FileManager.default.fileExists(atPath: path) {
            let raw = try Data(contentsOf: URL(fileURLWithPath: path))
            scanned += raw.count
            #expect(raw.range(of: Data("hunter2".utf8)) == nil, "\(path)")
        }
        #expect(scanned > 0)
    }
}
