import FoundationEssentials
import Glibc
import Synchronization

/// The store on the sealed volume: one SQLite file (`vhsm.db` in the data directory) in WAL mode
/// with synchronous=FULL, so a `put` that returned is in the fsync'd WAL and survives `kill -9`
/// and power loss.
///
/// Schema (see `SQLiteBackend.migrations`): `meta(key, value)` holding `schema_version`, and
/// `entries(path TEXT PRIMARY KEY, value BLOB NOT NULL)`. Values are opaque here; the barrier
/// above seals them. The database, its WAL and shared-memory files are mode 0600, the directory 0700.
/// Reads run concurrently on reader connections (WAL readers never wait for the writer); writes and
/// transactions are serialised on one writer connection.
final class SQLiteBackend: StorageBackend {
    static let defaultDirectory = "/var/lib/vhsm"
    static let fileName = "vhsm.db"
    /// The `schema_version` that `migrations` leave in `meta`.
    static var schemaVersion: Int { migrations.count }
    /// Idle reader connections kept open for the next reads.
    private static let idleReaderLimit = 8

    /// The database file.
    let file: String
    private let writer: Mutex<SQLiteConnection>
    private let idleReaders = Mutex<[SQLiteConnection]>([])

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

    /// Opens (creating it if needed) the database at `file`, switches it to WAL with synchronous=FULL,
    /// applies pending migrations and checks that WAL and synchronous=FULL are in effect.
    init(file: String) throws(StorageError) {
        self.file = file
        try Self.createPrivateFile(file)
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(file: file)
            _ = try connection.text("PRAGMA journal_mode = WAL")
            try connection.execute("PRAGMA synchronous = FULL")
        } catch {
            throw .open(file: file, cause: error)
        }
        writer = Mutex(connection)
        try migrate()
        try checkPragma("journal_mode", expected: "wal")
        try checkPragma("synchronous", expected: "2")
    }

    // MARK: - StorageBackend

    func get(_ path: String) throws -> [UInt8]? {
        do {
            return try read { db throws(SQLiteError) in try Self.get(path, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "read", path: path, cause: error)
        }
    }

    func put(_ path: String, _ value: [UInt8]) throws {
        do {
            try writer.withLock { db throws(SQLiteError) in try Self.put(path, value, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "write", path: path, cause: error)
        }
    }

    func delete(_ path: String) throws {
        do {
            try writer.withLock { db throws(SQLiteError) in try Self.delete(path, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "delete", path: path, cause: error)
        }
    }

    func list(prefix: String) throws -> [String] {
        do {
            return try read { db throws(SQLiteError) in try Self.list(prefix: prefix, in: db) }
        } catch {
            throw StorageError.sqlite(file: file, operation: "list", path: prefix, cause: error)
        }
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        try writer.withLock { db in
            do { try db.execute("BEGIN IMMEDIATE") } catch {
                throw StorageError.sqlite(file: file, operation: "begin a transaction", path: nil, cause: error)
            }
            let result: Result
            do {
                result = try body(Transaction(db: db, file: file))
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
            do { try db.execute("COMMIT") } catch {
                try? db.execute("ROLLBACK")
                throw StorageError.sqlite(file: file, operation: "commit a transaction", path: nil, cause: error)
            }
            return result
        }
    }

    /// The writer connection's value of `PRAGMA name` (`journal_mode`, `synchronous`, `busy_timeout`).
    func pragma(_ name: String) throws -> String {
        precondition(name.allSatisfy { $0.isLetter || $0 == "_" }, "not a pragma name: \(name)")
        do {
            return try writer.withLock { db throws(SQLiteError) in try db.text("PRAGMA \(name)") ?? "" }
        } catch {
            throw StorageError.sqlite(file: file, operation: "query PRAGMA \(name)", path: nil, cause: error)
        }
    }

    /// The `schema_version` recorded in `meta`.
    func storedSchemaVersion() throws -> Int? {
        do {
            return try read { db throws(SQLiteError) in
                try db.text("SELECT value FROM meta WHERE key = 'schema_version'").flatMap { Int($0) }
            }
        } catch {
            throw StorageError.sqlite(file: file, operation: "read", path: "meta.schema_version", cause: error)
        }
    }

    /// Runs `body` on an idle reader connection (opening one when none is idle), then keeps the
    /// connection for the next read unless enough are idle.
    private func read<T>(_ body: (SQLiteConnection) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        let connection: SQLiteConnection
        if let idle = idleReaders.withLock({ $0.popLast() }) {
            connection = idle
        } else {
            connection = try Self.openReader(file)
        }
        let result = try body(connection)
        idleReaders.withLock { idle in
            if idle.count < Self.idleReaderLimit { idle.append(connection) }
        }
        return result
    }

    private static func openReader(_ file: String) throws(SQLiteError) -> SQLiteConnection {
        let connection = try SQLiteConnection(file: file)
        try connection.execute("PRAGMA query_only = 1")
        return connection
    }

    // MARK: - Schema

    /// Every schema version's SQL, in order: `migrations[n]` takes the store from version n to n + 1.
    /// Append migrations; never edit one that has shipped. Pending migrations run in one transaction
    /// that ends by recording the new `schema_version` in `meta`.
    static let migrations: [String] = [
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE entries (path TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
        """
    ]

    private func migrate() throws(StorageError) {
        let file = file
        try writer.withLock { db throws(StorageError) in
            do {
                try db.execute("BEGIN IMMEDIATE")
            } catch {
                throw .migration(file: file, cause: error)
            }
            do {
                let current = try Self.schemaVersion(in: db, file: file)
                guard current <= Self.migrations.count else {
                    throw StorageError.newerSchema(file: file, version: current, supported: Self.migrations.count)
                }
                for sql in Self.migrations.dropFirst(current) { try db.execute(sql) }
                if current < Self.migrations.count {
                    try db.run(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                            + "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [.text(String(Self.migrations.count))])
                }
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                if let error = error as? StorageError { throw error }
                throw .migration(file: file, cause: error)
            }
        }
    }

    /// The version in `meta`, 0 for a new file (no `meta` table yet).
    private static func schemaVersion(in db: SQLiteConnection, file: String) throws -> Int {
        let hasMeta = try db.text("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'") != nil
        guard hasMeta else { return 0 }
        let text = try db.text("SELECT value FROM meta WHERE key = 'schema_version'")
        guard let text, let version = Int(text), version >= 0 else {
            throw StorageError.migration(
                file: file, cause: SQLiteError.corrupt("meta.schema_version is \(text ?? "missing")"))
        }
        return version
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

    fileprivate static func get(_ path: String, in db: SQLiteConnection) throws(SQLiteError) -> [UInt8]? {
        var value: [UInt8]?
        try db.forEachRow("SELECT value FROM entries WHERE path = ?", [.text(path)]) { row in
            value = row.blob(0)
            return false
        }
        return value
    }

    fileprivate static func put(_ path: String, _ value: [UInt8], in db: SQLiteConnection) throws(SQLiteError) {
        try db.run(
            "INSERT INTO entries (path, value) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET value = excluded.value",
            [.text(path), .blob(value)])
    }

    fileprivate static func delete(_ path: String, in db: SQLiteConnection) throws(SQLiteError) {
        try db.run("DELETE FROM entries WHERE path = ?", [.text(path)])
    }

    /// Paths sort by their UTF-8 bytes (BINARY collation), so every path under `prefix` sits in one
    /// run that starts at `prefix`: scan it on the primary key and stop at the first path past it.
    fileprivate static func list(prefix: String, in db: SQLiteConnection) throws(SQLiteError) -> [String] {
        var paths = [String]()
        try db.forEachRow("SELECT path FROM entries WHERE path >= ? ORDER BY path", [.text(prefix)]) { row in
            guard let path = row.text(0), path.utf8.starts(with: prefix.utf8) else { return false }
            paths.append(path)
            return true
        }
        return StorageListing.children(of: prefix, in: paths)
    }

    /// The writer connection inside `SQLiteBackend.transaction(_:)`.
    private struct Transaction: StorageTransaction {
        var db: SQLiteConnection
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
