import Foundation
import Testing

@testable import KeyService

struct SQLiteBackendTests {
    @Test func freshFileIsMigratedToTheCurrentSchema() throws {
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        #expect(backend.file == directory.path + "/vhsm.db")
        #expect(try backend.storedSchemaVersion() == SQLiteBackend.schemaVersion)
        let db = try SQLiteConnection(file: backend.file)
        #expect(
            try strings(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") == ["entries", "meta"])
        #expect(
            try strings(db, "SELECT name || ' ' || type FROM pragma_table_info('entries')") == [
                "path TEXT", "value BLOB",
            ])
    }

    @Test func reopeningKeepsDataAndRunsNoMigrationTwice() throws {
        let directory = TemporaryDirectory()
        try SQLiteBackend(directory: directory.path).put("a", [1])
        let reopened = try SQLiteBackend(directory: directory.path)
        #expect(try reopened.get("a") == [1])
        #expect(try reopened.storedSchemaVersion() == 1)
        let versions = try strings(
            SQLiteConnection(file: reopened.file), "SELECT value FROM meta WHERE key = 'schema_version'")
        #expect(versions == ["1"])
    }

    @Test func fileFromANewerBuildIsRefused() throws {
        let directory = TemporaryDirectory()
        let file = try SQLiteBackend(directory: directory.path).file
        try SQLiteConnection(file: file).run(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", [.text(String(SQLiteBackend.schemaVersion + 1))])
        #expect {
            try SQLiteBackend(file: file)
        } throws: { error in
            guard
                case StorageError.newerSchema(file, SQLiteBackend.schemaVersion + 1, SQLiteBackend.schemaVersion) =
                    error
            else { return false }
            return "\(error)".contains("migrated by a newer vhsmd")
        }
    }

    @Test func unreadableSchemaVersionIsRefusedAndTheFileLeftAlone() throws {
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        try backend.put("kept", [7])
        try SQLiteConnection(file: backend.file).run("UPDATE meta SET value = 'two' WHERE key = 'schema_version'")
        #expect {
            try SQLiteBackend(file: backend.file)
        } throws: { error in
            guard case StorageError.migration = error else { return false }
            return "\(error)".contains("meta.schema_version is two")
        }
        #expect(try strings(SQLiteConnection(file: backend.file), "SELECT path FROM entries") == ["kept"])
    }

    @Test func emptyValuesAndTextWithNULRoundTrip() throws {
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        try backend.put("empty", [])
        try backend.put("nul\u{0}path", [0, 1, 0])
        #expect(try backend.get("empty") == [])
        #expect(try backend.get("nul\u{0}path") == [0, 1, 0])
        #expect(try backend.get("nul") == nil)
        #expect(try backend.list(prefix: "") == ["empty", "nul\u{0}path"])
    }

    @Test func failedTransactionLeavesNothingBehind() throws {
        struct Abort: Error {}
        let directory = TemporaryDirectory()
        let backend = try SQLiteBackend(directory: directory.path)
        try backend.put("a", [1])
        #expect(throws: Abort.self) {
            try backend.transaction { transaction in
                try transaction.put("a", [2])
                try transaction.put("b", [3])
                #expect(try transaction.get("a") == [2])
                throw Abort()
            }
        }
        #expect(try backend.get("a") == [1])
        #expect(try backend.get("b") == nil)
    }

    private func strings(_ db: SQLiteConnection, _ sql: String) throws -> [String] {
        var values = [String]()
        try db.forEachRow(sql) { row in
            values.append(row.text(0) ?? "NULL")
            return true
        }
        return values
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
