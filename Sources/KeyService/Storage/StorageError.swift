import CLinux
import Glibc

/// Why the physical store (`SQLiteBackend`) failed. Every case names the file or directory involved
/// and, for entry operations, the storage path.
enum StorageError: Error, CustomStringConvertible {
    /// The data directory could not be created.
    case directory(path: String, reason: String)
    /// The database file could not be created or given mode 0600.
    case file(path: String, operation: String, errno: Int32)
    /// SQLite refused to open the database file.
    case open(file: String, cause: any Error)
    /// The file's schema version is newer than this build's: a newer vhsmd wrote it.
    case newerSchema(file: String, version: Int, supported: Int)
    /// A schema migration failed; the transaction that ran it was rolled back.
    case migration(file: String, cause: any Error)
    /// The connection does not run with the durability settings acknowledged writes rely on.
    case pragma(file: String, name: String, expected: String, actual: String)
    /// Reading or writing one entry (or committing a transaction) failed.
    case sqlite(file: String, operation: String, path: String?, cause: any Error)

    var description: String {
        switch self {
        case .directory(let path, let reason):
            "cannot create the data directory '\(path)': \(reason). Is the sealed volume mounted and writable?"
        case .file(let path, let operation, let errno):
            "cannot \(operation) '\(path)': \(Self.message(errno)). "
                + "Is the data directory on the sealed volume and owned by vhsmd's user?"
        case .open(let file, let cause):
            "cannot open the SQLite store '\(file)': \(cause). Is the file a vhsmd database and the volume writable?"
        case .newerSchema(let file, let version, let supported):
            "the SQLite store '\(file)' was migrated by a newer vhsmd (schema version \(version); this build "
                + "knows up to \(supported)): run that version, or restore a backup made by this one"
        case .migration(let file, let cause):
            "cannot migrate the SQLite store '\(file)' to this build's schema: \(cause). "
                + "The file is unchanged; is the disk full?"
        case .pragma(let file, let name, let expected, let actual):
            "the SQLite store '\(file)' runs with \(name)=\(actual) where \(expected) is required "
                + "for acknowledged writes to survive a crash: does the filesystem support WAL (shared memory)?"
        case .sqlite(let file, let operation, let path, let cause):
            "cannot \(operation)\(path.map { " '\($0)'" } ?? "") in the SQLite store '\(file)': \(cause). "
                + "Is the sealed volume still mounted, and neither full nor read-only?"
        }
    }

    /// What a client is told (with the request ID) when the failure is a condition of the data directory that an
    /// operator can act on: its volume is full, fails I/O or is read-only. The sentence names the data directory,
    /// what happened to the request and what brings writes back; never a storage path or a value. Nil for anything
    /// else, which the client sees as "internal error".
    var clientMessage: String? {
        guard case .sqlite(let file, let operation, _, let cause) = self, let cause = cause as? SQLiteError else {
            return nil
        }
        let directory = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        let writes = ["write", "delete", "begin a transaction", "commit a transaction"].contains(operation)
        let outcome = writes ? "the change was not stored" : "the \(operation) did not complete"
        let system = cause.systemErrno == 0 ? "" : ": \(Self.message(cause.systemErrno))"
        let step = Self.ioSteps[cause.code].map { ", \($0) failed" } ?? ""
        let sqlite = "SQLite: \(cause.message)\(step)\(system)"
        if cause.primaryCode == SQLITE_FULL || cause.systemErrno == ENOSPC || cause.systemErrno == EDQUOT {
            return "vhsmd's data directory '\(directory)' is full (\(sqlite)): \(outcome). Writes succeed again, "
                + "without a restart, once space is freed on its volume; stored data can still be read"
        }
        switch cause.primaryCode {
        case SQLITE_IOERR:
            return "vhsmd's data directory '\(directory)' failed an I/O operation (\(sqlite)): \(outcome). "
                + "Check its volume and the kernel log; writes succeed again once the volume does"
        case SQLITE_READONLY:
            return "vhsmd's data directory '\(directory)' is read-only (\(sqlite)): \(outcome). "
                + "Remount its volume read-write"
        default:
            return nil
        }
    }

    /// The system call behind SQLite's extended I/O error codes, in words.
    private static let ioSteps: [Int32: String] = [
        SQLITE_IOERR | (1 << 8): "a read", SQLITE_IOERR | (2 << 8): "a read (short)",
        SQLITE_IOERR | (3 << 8): "a write", SQLITE_IOERR | (4 << 8): "an fsync",
        SQLITE_IOERR | (5 << 8): "an fsync of the directory", SQLITE_IOERR | (6 << 8): "a truncate",
        SQLITE_IOERR | (13 << 8): "an fallocate", SQLITE_IOERR | (19 << 8): "growing the shared-memory file",
        SQLITE_IOERR | (21 << 8): "mapping the shared-memory file",
    ]

    private static func message(_ errno: Int32) -> String {
        String(cString: strerror(errno))
    }
}
