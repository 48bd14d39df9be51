import Foundation
import GRDB
import Testing

@testable import KeyService

struct SQLiteBackendTests {
    @Test func freshFileIsMigratedToTheCurrentSchema() throws {
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        #expect(backend.file == directory.path + "/vhsm.db")
        #expect(try backend.storedSchemaVersion() == SQLiteBackend.schemaVersion)
        let queue = try DatabaseQueue(path: backend.file)
        let tables = try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(tables == ["entries", "grdb_migrations", "meta"])
        let columns = try queue.read { db in try db.columns(in: "entries").map { "\($0.name) \($0.type)" } }
        #expect(columns == ["path TEXT", "value BLOB"])
    }

    @Test func reopeningKeepsDataAndRunsNoMigrationTwice() throws {
        let directory = TemporaryDirectory()
        try SQLiteBackend(directory: directory.path).put("a", [1])
        let reopened = try SQLiteBackend(directory: directory.path)
        #expect(try reopened.get("a") == [1])
        #expect(try reopened.storedSchemaVersion() == 1)
        let applied = try DatabaseQueue(path: reopened.file).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
        }
        #expect(applied == ["v1"])
    }

    @Test func fileFromANewerBuildIsRefused() throws {
        let directory = TemporaryDirectory()
        let file = try SQLiteBackend(directory: directory.path).file
        try DatabaseQueue(path: file).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2')")
        }
        #expect {
            try SQLiteBackend(file: file)
        } throws: { error in
            guard case StorageError.newerSchema(file, ["v2"]) = error else { return false }
            return "\(error)".contains("migrated by a newer vhsmd")
        }
    }

    @Test func writerRunsWALWithSynchronousFullAndABusyTimeout() throws {
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        #expect(try backend.pragma("journal_mode") == "wal")
        #expect(try backend.pragma("synchronous") == "2")  // FULL
        #expect(try backend.pragma("busy_timeout") == "10000")
        // The setting commits rely on must hold after writes too, not only after opening.
        try backend.put("x", [1])
        try backend.transaction { try $0.put("y", [2]) }
        #expect(try backend.pragma("synchronous") == "2")
    }

    @Test func databaseFilesArePrivateToTheOwner() throws {
        let directory = TemporaryDirectory()
        let dataDirectory = directory.path + "/var/lib/vhsm"
        let backend = try SQLiteBackend(directory: dataDirectory)
        try backend.put("x", [1])
        func mode(_ path: String) throws -> Int {
            try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode(dataDirectory) == 0o700)
        for suffix in ["", "-wal", "-shm"] {
            #expect(try mode(backend.file + suffix) == 0o600, "\(backend.file + suffix)")
        }
    }

    @Test func existingFileWithLooseModeIsTightened() throws {
        let directory = TemporaryDirectory()
        let file = directory.path + "/vhsm.db"
        #expect(FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o644]))
        _ = try SQLiteBackend(file: file)
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func missingDirectoryParentIsReportedWithItsPath() {
        #expect {
            try SQLiteBackend(file: "/nonexistent-vhsm-dir/vhsm.db")
        } throws: { error in
            "\(error)".hasPrefix("cannot create '/nonexistent-vhsm-dir/vhsm.db': No such file or directory.")
        }
    }

    /// What `kill -9` leaves: a file whose writer never closed. A second pool opened while the first
    /// is still alive (so nothing was checkpointed or closed) must see every acknowledged write.
    @Test func acknowledgedWritesAreReadableFromAnotherConnectionBeforeClose() throws {
        let directory = TemporaryDirectory()
        let writer = try SQLiteBackend(directory: directory.path)
        for index in 0..<200 {
            try writer.put("crash/\(index)", Array("value \(index)".utf8))
        }
        try writer.transaction { transaction in
            for index in 200..<250 { try transaction.put("crash/\(index)", Array("value \(index)".utf8)) }
        }
        let reader = try SQLiteBackend(directory: directory.path)
        #expect(try reader.list(prefix: "crash/").count == 250)
        for index in 0..<250 {
            #expect(try reader.get("crash/\(index)") == Array("value \(index)".utf8))
        }
        withExtendedLifetime(writer) {}
    }

    @Test func barrierOverSQLiteSurvivesReopening() throws {
        let directory = TemporaryDirectory()
        let rootKey = try DevSealProvider().rootKey()
        let first = Barrier(backend: try SQLiteBackend(directory: directory.path))
        try first.initialize(rootKey: rootKey)
        try first.put("secret/a", Array("alpha".utf8))
        try first.rotate()
        try first.put("secret/b", Array("bravo".utf8))

        let second = Barrier(backend: try SQLiteBackend(directory: directory.path))
        #expect(try second.isInitialized)
        try second.unseal(rootKey: rootKey)
        #expect(try second.get("secret/a") == Array("alpha".utf8))
        #expect(try second.get("secret/b") == Array("bravo".utf8))
        #expect(try second.keyStatus().term == 2)
        withExtendedLifetime(first) {}
    }
}
