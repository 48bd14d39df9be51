import FoundationEssentials
import GRDB
import Glibc

/// The store on the sealed volume: one SQLite file (`vhsm.db` in the data directory) in WAL mode
/// with synchronous=FULL, so a `put` that returned is in the fsync'd WAL and survives `kill -9`
/// and power loss.
///
/// Schema (see `SQLiteBackend.migrator`): `meta(key, value)` holding `schema_version`, and
/// `entries(path TEXT PRIMARY KEY, value BLOB NOT NULL)`. Values are opaque here; the barrier
/// above seals them. The database, its WAL and shared-memory files are mode 0600, the directory 0700.
/// Reads run concurrently on reader connections; writes and transactions are serialised on one
/// writer connection.
final class SQLiteBackend: StorageBackend {
    static let defaultDirectory = "/var/lib/vhsm"
    static let fileName = "vhsm.db"
    /// The `schema_version` that `migrator` leaves in `meta`.
    static let schemaVersion = 1

    /// The database file.
    let file: String
    private let pool: DatabasePool

    /// Opens (creating it if needed) `vhsm.db` in `directory`, which is created with mode 0700 if missing.
    convenience init(directory: String = SQLiteBackend.defaultDirectory) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .directory(path: directory, reason: "\(error)")
        }
        try self.init(file: directory + "/" + Self.fileName)
    }

    /// Opens (creating it if needed) the database at `file`, applies pending migrations and checks
    /// that WAL and synchronous=FULL are in effect.
    init(file: String) throws(StorageError) {
        self.file = file
        try Self.createPrivateFile(file)

        var configuration = Configuration()
        configuration.label = "vhsm"
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        do {
            pool = try DatabasePool(path: file, configuration: configuration)
            // The pool turns WAL on after `prepareDatabase` and sets synchronous=NORMAL on the
            // writer as it does: set FULL again on the writer, the only connection that commits.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            throw .open(file: file, cause: error)
        }
        try migrate()
        try checkPragma("journal_mode", expected: "wal")
        try checkPragma("synchronous", expected: "2")
    }

    // MARK: - StorageBackend

    func get(_ path: String) throws -> [UInt8]? {
        do {
            return try pool.read { db in try Self.get(path, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "read", path: path, cause: error)
        }
    }

    func put(_ path: String, _ value: [UInt8]) throws {
        do {
            try pool.write { db in try Self.put(path, value, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "write", path: path, cause: error)
        }
    }

    func delete(_ path: String) throws {
        do {
            try pool.write { db in try Self.delete(path, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "delete", path: path, cause: error)
        }
    }

    func list(prefix: String) throws -> [String] {
        do {
            return try pool.read { db in try Self.list(prefix: prefix, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "list", path: prefix, cause: error)
        }
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        do {
            return try pool.write { db in try body(Transaction(db: db, file: file)) }
        } catch let error as DatabaseError {
            throw StorageError.sqlite(file: file, operation: "commit a transaction", path: nil, cause: error)
        }
    }

    /// The writer connection's value of `PRAGMA name` (`journal_mode`, `synchronous`, `busy_timeout`).
    func pragma(_ name: String) throws -> String {
        precondition(name.allSatisfy { $0.isLetter || $0 == "_" }, "not a pragma name: \(name)")
        do {
            return try pool.writeWithoutTransaction { db in
                try String.fetchOne(db, sql: "PRAGMA \(name)") ?? ""
            }
        } catch {
            throw StorageError.sqlite(file: file, operation: "query PRAGMA \(name)", path: nil, cause: error)
        }
    }

    /// The `schema_version` recorded in `meta`.
    func storedSchemaVersion() throws -> Int? {
        do {
            return try pool.read { db in
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema_version'").flatMap { Int($0) }
            }
        } catch {
            throw StorageError.sqlite(file: file, operation: "read", path: "meta.schema_version", cause: error)
        }
    }

    // MARK: - Schema

    /// Every schema version, in order. Append migrations; never edit one that has shipped. Each
    /// one runs in its own transaction and ends by recording its number as `schema_version`.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
                    CREATE TABLE entries (path TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
                    INSERT INTO meta (key, value) VALUES ('schema_version', '1');
                    """)
        }
        return migrator
    }

    private func migrate() throws(StorageError) {
        let migrator = Self.migrator
        do {
            let unknown = try pool.read { db in
                try migrator.appliedIdentifiers(db).subtracting(migrator.migrations)
            }
            if !unknown.isEmpty { throw StorageError.newerSchema(file: file, unknownMigrations: unknown.sorted()) }
            try migrator.migrate(pool)
        } catch let error as StorageError {
            throw error
        } catch {
            throw .migration(file: file, cause: error)
        }
    }

    private func checkPragma(_ name: String, expected: String) throws(StorageError) {
        let actual: String
        do {
            actual = try pragma(name)
        } catch {
            throw .open(file: file, cause: error)
        }
        guard actual == expected else { throw .pragma(file: file, name: name, expected: expected, actual: actual) }
    }

    /// Creates `file` with mode 0600 unless it exists, forces 0600 on it and on its WAL and
    /// shared-memory files (SQLite gives those the database file's mode), and makes a new file's
    /// directory entry durable.
    private static func createPrivateFile(_ file: String) throws(StorageError) {
        let descriptor = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw .file(path: file, operation: "create", errno: errno) }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else { throw .file(path: file, operation: "chmod 0600", errno: errno) }
        for suffix in ["-wal", "-shm"] where chmod(file + suffix, 0o600) != 0 && errno != ENOENT {
            throw .file(path: file + suffix, operation: "chmod 0600", errno: errno)
        }
        let directory = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        let directoryDescriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else { throw .file(path: directory, operation: "open", errno: errno) }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else { throw .file(path: directory, operation: "fsync", errno: errno) }
    }

    // MARK: - SQL

    fileprivate static func get(_ path: String, in db: Database) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT value FROM entries WHERE path = ?", arguments: [path]).map { Array($0) }
    }

    fileprivate static func put(_ path: String, _ value: [UInt8], in db: Database) throws {
        try db.execute(
            sql:
                "INSERT INTO entries (path, value) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET value = excluded.value",
            arguments: [path, Data(value)])
    }

    fileprivate static func delete(_ path: String, in db: Database) throws {
        try db.execute(sql: "DELETE FROM entries WHERE path = ?", arguments: [path])
    }

    /// Paths sort by their UTF-8 bytes (BINARY collation), so every path under `prefix` sits in one
    /// run that starts at `prefix`: scan it on the primary key and stop at the first path past it.
    fileprivate static func list(prefix: String, in db: Database) throws -> [String] {
        var paths = [String]()
        let cursor = try String.fetchCursor(
            db, sql: "SELECT path FROM entries WHERE path >= ? ORDER BY path", arguments: [prefix])
        while let path = try cursor.next() {
            guard path.utf8.starts(with: prefix.utf8) else { break }
            paths.append(path)
        }
        return StorageListing.children(of: prefix, in: paths)
    }

    /// The writer connection inside `SQLiteBackend.transaction(_:)`.
    private struct Transaction: StorageTransaction {
        var db: Database
        var file: String

        func get(_ path: String) throws -> [UInt8]? {
            do { return try SQLiteBackend.get(path, in: db) } catch {
                throw StorageError.sqlite(file: file, operation: "read", path: path, cause: error)
            }
        }

        func put(_ path: String, _ value: [UInt8]) throws {
            do { try SQLiteBackend.put(path, value, in: db) } catch {
                throw StorageError.sqlite(file: file, operation: "write", path: path, cause: error)
            }
        }

        func delete(_ path: String) throws {
            do { try SQLiteBackend.delete(path, in: db) } catch {
                throw StorageError.sqlite(file: file, operation: "delete", path: path, cause: error)
            }
        }

        func list(prefix: String) throws -> [String] {
            do { return try SQLiteBackend.list(prefix: prefix, in: db) } catch {
                throw StorageError.sqlite(file: file, operation: "list", path: prefix, cause: error)
            }
        }
    }
}
