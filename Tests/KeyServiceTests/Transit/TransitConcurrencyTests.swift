import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import KeyService

/// Transit's writes to a key are read-modify-write under that key's lock. Many connections rotate, configure,
/// encrypt with and decrypt with one key at once through the served HTTP pipeline of a config-mode vhsmd (SQLite in
/// a data directory, behind the barrier, initialised by `sys/init`): no rotation is lost, no config change is
/// undone, every version from 1 to the latest exists, and every ciphertext issued decrypts, also after a restart.
@Suite struct TransitConcurrencyTests {
    /// vhsmd's config-mode stack on `directory`, as `vhsmd --config` opens it (the dev seal stands in for the
    /// Secure Processor: the same root key for every runtime of this process).
    static func runtime(_ directory: String) throws -> Runtime {
        let runtime = try Runtime(
            barrier: Barrier(backend: try SQLiteBackend(directory: directory)), seal: DevSealProvider(),
            storageType: "sqlite")
        try runtime.start()
        return runtime
    }

    static func app(_ runtime: Runtime) throws -> some ApplicationProtocol {
        try buildApplication(
            core: VaultCore(runtime: runtime), host: "127.0.0.1", port: 0, logger: Logger(label: "test"),
            limits: ServerTests.patientLimits)
    }

    /// One client connection; `call` answers the status and the response's JSON object (empty for 204).
    struct Connection: Sendable {
        let client: TestClient
        let token: String

        init(port: Int, token: String) {
            client = TestClient(
                host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(120)))
            client.connect()
            self.token = token
        }

        func call(
            _ method: HTTPRequest.Method, _ path: String, _ body: [String: Any] = [:]
        ) async throws -> (status: Int, json: [String: Any]) {
            let bytes = try JSONSerialization.data(withJSONObject: body)
            let response = try await client.execute(
                TestClient.Request(
                    "/v1/" + path, method: method, headers: [HTTPField.Name("X-Vault-Token")!: token],
                    body: ByteBuffer(bytes: bytes)))
            guard let body = response.body, body.readableBytes > 0 else { return (response.status.code, [:]) }
            let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView))
            return (response.status.code, object as? [String: Any] ?? [:])
        }

        /// The response's `data` on a 200, else an error naming the request and the answer.
        func data(
            _ method: HTTPRequest.Method, _ path: String, _ body: [String: Any] = [:]
        ) async throws
            -> [String: Any]
        {
            let (status, json) = try await call(method, path, body)
            guard status == 200, let data = json["data"] as? [String: Any] else {
                throw Failure("\(method) \(path) answered \(status): \(json)")
            }
            return data
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A ciphertext issued during the run, with its key and plaintext.
    struct Issued: Sendable {
        let key: String
        let plaintext: String
        let ciphertext: String
    }

    /// What the workers saw: every rotation's `latest_version`, every ciphertext, every failure.
    struct Record: Sendable {
        var rotatedTo: [Int] = []
        var issued: [Issued] = []
        var configured = 0
        var failures: [String] = []
    }

    static let workers = 8
    static let rounds = 25
    /// Keys that do not exist until the workers' concurrent encryptions create them (upsert), one per round.
    static let upsertRounds = 10

    @Test func concurrentRotateEncryptAndConfigOnOneKeyLoseNothing() async throws {
        let directory = TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let app = try Self.app(try Self.runtime(directory.path))
        let (token, issued) = try await app.test(.live) { client in
            let port = try #require(client.port)
            let initialised = try await client.execute(
                uri: "/v1/sys/init", method: .put, body: ByteBuffer(string: "{}"))
            let initBody = try JSONSerialization.jsonObject(with: Data(initialised.body.readableBytesView))
            let token = try #require((initBody as? [String: Any])?["root_token"] as? String)
            let setup = Connection(port: port, token: token)
            #expect(try await setup.call(.post, "sys/mounts/transit", ["type": "transit"]).status == 204)
            _ = try await setup.data(.post, "transit/keys/k")
            let first = try await setup.data(.post, "transit/encrypt/k", ["plaintext": "Zmlyc3Q="])
            let firstCiphertext = try #require(first["ciphertext"] as? String)

            let connections = (0..<Self.workers).map { _ in Connection(port: port, token: token) }
            var record = await withTaskGroup(of: Record.self) { group in
                for (worker, connection) in connections.enumerated() {
                    group.addTask {
                        await Self.hammer(connection, worker: worker, firstCiphertext: firstCiphertext)
                    }
                }
                var all = Record()
                for await mine in group {
                    all.rotatedTo += mine.rotatedTo
                    all.issued += mine.issued
                    all.configured += mine.configured
                    all.failures += mine.failures
                }
                return all
            }
            record.issued.append(Issued(key: "k", plaintext: "Zmlyc3Q=", ciphertext: firstCiphertext))
            #expect(record.failures.isEmpty, "\(record.failures.count) requests failed: \(record.failures.prefix(5))")

            // Each rotation made its own version, none twice.
            let rotations = Self.workers * Self.rounds
            #expect(record.rotatedTo.count == rotations)
            #expect(record.rotatedTo.sorted() == Array(2...(rotations + 1)), "rotations answered duplicates")
            #expect(record.configured == rotations)
            try await Self.check(setup, rotations: rotations, record.issued)
            for connection in connections + [setup] { try await connection.client.shutdown() }
            return (token, record.issued)
        }

        // A restart on the same data directory: nothing cached, every key read from SQLite.
        let restarted = try Self.app(try Self.runtime(directory.path))
        try await restarted.test(.live) { client in
            let connection = Connection(port: try #require(client.port), token: token)
            try await Self.check(connection, rotations: Self.workers * Self.rounds, issued)
            try await connection.client.shutdown()
        }
    }

    /// One worker's share, round by round: rotate, encrypt twice, change the config, decrypt the first ciphertext,
    /// and in the first rounds encrypt with a key no one has created yet (every worker in the same round names the
    /// same key, so their upserts race).
    static func hammer(_ connection: Connection, worker: Int, firstCiphertext: String) async -> Record {
        var record = Record()
        for round in 0..<rounds {
            do {
                let rotated = try await connection.data(.post, "transit/keys/k/rotate")
                guard let latest = rotated["latest_version"] as? Int else {
                    throw Failure("rotate answered without latest_version: \(rotated)")
                }
                record.rotatedTo.append(latest)
                for item in 0..<2 {
                    record.issued.append(try await encrypt(connection, "k", "worker \(worker) round \(round).\(item)"))
                }
                // min_decryption_version stays 1, so that every version keeps decrypting; exportable only ever
                // turns on, so the key must end exportable.
                _ = try await connection.data(
                    .post, "transit/keys/k/config",
                    ["min_decryption_version": 1, "deletion_allowed": round % 2 == 0, "exportable": true])
                record.configured += 1
                let decrypted = try await connection.data(.post, "transit/decrypt/k", ["ciphertext": firstCiphertext])
                if decrypted["plaintext"] as? String != "Zmlyc3Q=" {
                    throw Failure("the first ciphertext decrypted to \(decrypted)")
                }
                if round < upsertRounds {
                    record.issued.append(try await encrypt(connection, "upsert-\(round)", "worker \(worker)"))
                }
            } catch {
                record.failures.append("worker \(worker) round \(round): \(error)")
            }
        }
        return record
    }

    static func encrypt(_ connection: Connection, _ key: String, _ text: String) async throws -> Issued {
        let plaintext = Data(text.utf8).base64EncodedString()
        let data = try await connection.data(.post, "transit/encrypt/\(key)", ["plaintext": plaintext])
        guard let ciphertext = data["ciphertext"] as? String else {
            throw Failure("encrypt answered without a ciphertext: \(data)")
        }
        return Issued(key: key, plaintext: plaintext, ciphertext: ciphertext)
    }

    /// The key has every version from 1 to 1 + `rotations`, the config changes stuck, and every ciphertext decrypts
    /// to its plaintext.
    static func check(_ connection: Connection, rotations: Int, _ issued: [Issued]) async throws {
        let key = try await connection.data(.get, "transit/keys/k")
        #expect(key["latest_version"] as? Int == rotations + 1)
        let versions = Set((key["keys"] as? [String: Any] ?? [:]).keys)
        #expect(versions == Set((1...(rotations + 1)).map(String.init)), "versions missing or extra")
        #expect(key["exportable"] as? Bool == true, "the config change was undone")
        var failures: [String] = []
        for item in issued {
            let (status, json) = try await connection.call(
                .post, "transit/decrypt/\(item.key)", ["ciphertext": item.ciphertext])
            let plaintext = (json["data"] as? [String: Any])?["plaintext"] as? String
            if status != 200 || plaintext != item.plaintext {
                failures.append("\(item.key) \(item.ciphertext.prefix(12))…: \(status) \(json["errors"] ?? "")")
            }
        }
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(issued.count) ciphertexts do not decrypt: \(failures.prefix(3))")
    }
}
