import CLinux
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@testable import KeyService

/// Failing storage under the served pipeline (issue 16 item 6; scripts/faults-test.sh does the same to a real
/// vhsmd on a full tmpfs and under an LD_PRELOAD shim): a full or failing data directory answers 500 with a
/// sentence naming it, stored data is still read, writes come back without a restart, and an audit device that
/// cannot record refuses the request with a sentence.
@Suite struct FailingStorageTests {
    let server = ServerTests()
    static let tokenHeader = HTTPField.Name("X-Vault-Token")!

    /// A memory store whose writes fail, while `failure` is set, with the `StorageError` `SQLiteBackend` throws
    /// for that SQLite error on the database file `/srv/vhsm-data/vhsm.db`.
    final class BrokenDisk: StorageBackend {
        static let file = "/srv/vhsm-data/vhsm.db"
        let failure = Mutex<SQLiteError?>(nil)
        private let memory = MemoryBackend()

        private func check(_ operation: String, _ path: String?) throws {
            if let cause = failure.withLock({ $0 }) {
                throw StorageError.sqlite(file: Self.file, operation: operation, path: path, cause: cause)
            }
        }

        func get(_ path: String) throws -> [UInt8]? { try memory.get(path) }
        func put(_ path: String, _ value: [UInt8]) throws {
            try check("write", path)
            try memory.put(path, value)
        }
        func delete(_ path: String) throws {
            try check("delete", path)
            try memory.delete(path)
        }
        func list(prefix: String) throws -> [String] { try memory.list(prefix: prefix) }
        func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
            try check("begin a transaction", nil)
            return try memory.transaction(body)
        }
    }

    static let full = SQLiteError(code: SQLITE_FULL, message: "database or disk is full", systemErrno: ENOSPC)
    static let fsyncFailed = SQLiteError(
        code: SQLITE_IOERR | (4 << 8), message: "disk I/O error", systemErrno: EIO)

    /// A KV v2 mount at secret/ on `backend` behind the barrier, served by the real pipeline.
    func app(
        _ backend: any StorageBackend, audit: AuditBroker = AuditBroker()
    ) throws -> (
        some ApplicationProtocol, String, Services
    ) {
        let barrier = Barrier(backend: backend)
        try barrier.initialize(rootKey: try DevSealProvider().rootKey())
        let services = try Services.open(EngineStorage(backend: barrier, prefix: ""))
        let root = try services.tokens.create(id: "test-root", entry: .root(accessor: "acc"))
        try services.mounts.enable(path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "file"),
                services: services), audit: audit, metrics: ServiceMetrics())
        return (try ServerTests.serve(core), root, services)
    }

    func put(
        _ client: some TestClientProtocol, _ name: String, _ value: String, token: String
    ) async throws
        -> (HTTPResponse.Status, [String])
    {
        try await client.execute(
            uri: "/v1/secret/data/\(name)", method: .post, headers: [Self.tokenHeader: token],
            body: ByteBuffer(string: #"{"data":{"v":"\#(value)"}}"#)
        ) { response throws in
            let errors = (try? server.json(response.body)["errors"] as? [String]) ?? []
            return (response.status, errors)
        }
    }

    func read(_ client: some TestClientProtocol, _ name: String, token: String) async throws -> String? {
        try await client.execute(uri: "/v1/secret/data/\(name)", method: .get, headers: [Self.tokenHeader: token]) {
            response throws in
            guard response.status == .ok else { return nil }
            let data = try server.json(response.body)["data"] as? [String: Any]
            return (data?["data"] as? [String: Any])?["v"] as? String
        }
    }

    /// A full data directory: the write is a 500 whose one message names the directory, says it is full, that the
    /// change was not stored and carries the request ID; stored secrets still read; once space returns the next
    /// write succeeds on the same server. Before: "internal error (request id …)" and nothing about the disk.
    @Test func aFullDataDirectoryIsNamedAndWritesComeBackWithoutARestart() async throws {
        let disk = BrokenDisk()
        let (app, root, _) = try app(disk)
        try await app.test(.live) { client in
            #expect(try await put(client, "before", "kept", token: root).0 == .ok)
            disk.failure.withLock { $0 = Self.full }
            let (status, errors) = try await put(client, "during", "lost", token: root)
            #expect(status == .internalServerError)
            #expect(errors.count == 1)
            let message = try #require(errors.first)
            #expect(message.hasPrefix("vhsmd's data directory '/srv/vhsm-data' is full"))
            #expect(message.contains("No space left on device"))
            #expect(message.contains("the change was not stored"))
            #expect(message.contains("without a restart, once space is freed"))
            #expect(message.contains("(request id "))
            // The storage path (which names the mount's UUID) stays in the log.
            #expect(!message.contains("logical/"))
            #expect(try await read(client, "before", token: root) == "kept")
            #expect(try await read(client, "during", token: root) == nil)
            disk.failure.withLock { $0 = nil }
            #expect(try await put(client, "after", "stored", token: root).0 == .ok)
            #expect(try await read(client, "after", token: root) == "stored")
            #expect(try await read(client, "before", token: root) == "kept")
        }
    }

    /// A failed fsync (SQLITE_IOERR_FSYNC): a 500 naming the directory and the I/O failure; reads go on.
    @Test func aFailingSyncIsNamedAndReadsGoOn() async throws {
        let disk = BrokenDisk()
        let (app, root, _) = try app(disk)
        try await app.test(.live) { client in
            #expect(try await put(client, "before", "kept", token: root).0 == .ok)
            disk.failure.withLock { $0 = Self.fsyncFailed }
            for name in ["a", "b"] {
                let (status, errors) = try await put(client, name, "lost", token: root)
                #expect(status == .internalServerError)
                #expect(
                    errors.first?.hasPrefix("vhsmd's data directory '/srv/vhsm-data' failed an I/O operation") == true)
                #expect(errors.first?.contains("an fsync failed: Input/output error") == true)
            }
            #expect(try await read(client, "before", token: root) == "kept")
            disk.failure.withLock { $0 = nil }
            #expect(try await put(client, "a", "stored", token: root).0 == .ok)
            #expect(try await read(client, "a", token: root) == "stored")
        }
    }

    /// The sentence comes from the error's kind alone: a failure that is not the data directory's (a constraint,
    /// a corrupt value) is not described to the client.
    @Test func onlyConditionsOfTheDataDirectoryAreDescribed() {
        let constraint = StorageError.sqlite(
            file: BrokenDisk.file, operation: "write", path: "x",
            cause: SQLiteError(code: SQLITE_CONSTRAINT, message: "UNIQUE constraint failed: entries.path"))
        #expect(constraint.clientMessage == nil)
        #expect(VaultError.storage(constraint, detail: "d").messages == ["internal error"])
        let readOnly = StorageError.sqlite(
            file: BrokenDisk.file, operation: "read", path: "x",
            cause: SQLiteError(code: SQLITE_READONLY, message: "attempt to write a readonly database"))
        #expect(readOnly.clientMessage?.contains("'/srv/vhsm-data' is read-only") == true)
        #expect(readOnly.clientMessage?.contains("the read did not complete") == true)
    }

    /// An audit device whose file refuses writes (/dev/full: ENOSPC): the request is refused with a 500 whose
    /// message says no audit device could record it and why, and the refused write was not made. Before: a bare
    /// "internal error".
    @Test func aRequestNoAuditDeviceCanRecordIsRefusedWithASentence() async throws {
        let descriptor = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        let device = AuditDevice(path: "/dev/full", descriptor: descriptor, salt: Array(repeating: 7, count: 32))
        let (app, root, services) = try app(MemoryBackend(), audit: AuditBroker(devices: [device]))
        try await app.test(.live) { client in
            let (status, errors) = try await put(client, "refused", "never", token: root)
            #expect(status == .internalServerError)
            #expect(errors.count == 1)
            let message = try #require(errors.first)
            #expect(message.hasPrefix("the request was refused because no audit device could record it"))
            #expect(message.contains("No space left on device"))
            #expect(message.contains("Is the disk (or the user's quota) full?"))
            #expect(!message.contains("/dev/full"))
            // Health is not audited and still answers.
            try await client.execute(uri: "/v1/sys/health", method: .get) { response throws in
                #expect(response.status == .ok)
            }
        }
        let (mount, _) = try #require(services.route("secret/data/refused"))
        let kv = try #require(mount.backend as? KVBackend)
        #expect(throws: VaultError.notFound) { try kv.store.read("refused", version: nil) }
    }
}
