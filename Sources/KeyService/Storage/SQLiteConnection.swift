import CLinux
import Glibc

/// A failed SQLite call: the extended result code, SQLite's message and the errno of the system call that failed
/// (0 when none did).
struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var systemErrno: Int32 = 0

    var description: String {
        let system = systemErrno == 0 ? "" : ", system error \(String(cString: strerror(systemErrno)))"
        return "\(message) (SQLite result code \(code)\(system))"
    }

    /// The primary result code (`SQLITE_FULL`, `SQLITE_IOERR`, …) of the extended one.
    var primaryCode: Int32 { code & 0xFF }

    /// The file's contents are not what this build wrote.
    static func corrupt(_ message: String) -> SQLiteError { SQLiteError(code: SQLITE_CORRUPT, message: message) }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case text(String)
    case blob([UInt8])
}

/// One connection to the system SQLite (libsqlite3), opened in multi-thread mode with extended result
/// codes, no symlink following and a 10 s busy timeout. Statements are prepared once per SQL text and
/// kept. A connection is used by one thread at a time: `SQLiteBackend` hands each one out under a mutex,
/// which is why it may cross isolation domains (`@unchecked Sendable`).
final class SQLiteConnection: @unchecked Sendable {
    static let busyTimeoutMilliseconds: Int32 = 10_000

    let file: String
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    /// Opens (creating it if needed) the database `file`.
    init(file: String) throws(SQLiteError) {
        var opened: OpaquePointer?
        let flags =
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW
            | SQLITE_OPEN_EXRESCODE
        let status = sqlite3_open_v2(file, &opened, flags, nil)
        guard status == SQLITE_OK, let opened else {
            let error = SQLiteError(
                code: status, message: opened.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory")
            sqlite3_close_v2(opened)
            throw error
        }
        self.file = file
        handle = opened
        sqlite3_busy_timeout(opened, Self.busyTimeoutMilliseconds)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs `sql`, which may hold several statements and returns no rows that matter.
    func execute(_ sql: String) throws(SQLiteError) {
        try check(sqlite3_exec(handle, sql, nil, nil, nil))
    }

    /// Runs one statement with `arguments` bound to its `?` parameters, to completion.
    func run(_ sql: String, _ arguments: [SQLiteValue] = []) throws(SQLiteError) {
        try forEachRow(sql, arguments) { _ in true }
    }

    /// Runs one statement and calls `row` for each result row until it returns false.
    func forEachRow(
        _ sql: String, _ arguments: [SQLiteValue] = [], _ row: (SQLiteRow) -> Bool
    ) throws(SQLiteError) {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, argument) in arguments.enumerated() {
            try check(Self.bind(argument, at: Int32(offset + 1), to: statement))
        }
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw error(status) }
            guard row(SQLiteRow(statement: statement)) else { return }
        }
    }

    /// The first column of the first row as text, or nil when there is no row or the value is NULL.
    func text(_ sql: String, _ arguments: [SQLiteValue] = []) throws(SQLiteError) -> String? {
        var result: String?
        try forEachRow(sql, arguments) { row in
            result = row.text(0)
            return false
        }
        return result
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        try check(sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil))
        guard let statement else { throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement: \(sql)") }
        statements[sql] = statement
        return statement
    }

    private static func bind(_ value: SQLiteValue, at index: Int32, to statement: OpaquePointer) -> Int32 {
        switch value {
        case .text(let text):
            // Bound with its byte count, so the text may hold NUL; "" is bound as "" (not NULL).
            return text.withCString { clinux_sqlite3_bind_text_copy(statement, index, $0, Int32(text.utf8.count)) }
        case .blob(let bytes) where bytes.isEmpty:
            return sqlite3_bind_zeroblob(statement, index, 0)
        case .blob(let bytes):
            return bytes.withUnsafeBytes {
                clinux_sqlite3_bind_blob_copy(statement, index, $0.baseAddress, Int32($0.count))
            }
        }
    }

    private func check(_ status: Int32) throws(SQLiteError) {
        guard status == SQLITE_OK else { throw error(status) }
    }

    private func error(_ status: Int32) -> SQLiteError {
        SQLiteError(
            code: status, message: String(cString: sqlite3_errmsg(handle)), systemErrno: sqlite3_system_errno(handle))
    }
}

/// The current row of a statement being stepped; valid only inside the `forEachRow` callback.
struct SQLiteRow {
    fileprivate let statement: OpaquePointer

    /// Column `index` as text (NULL → nil).
    func text(_ index: Int32) -> String? {
        guard sqlite3_column_type(statement, index) != SQLITE_NULL,
            let text = sqlite3_column_text(statement, index)
        else { return nil }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// Column `index` as bytes (NULL → nil, an empty blob → []).
    func blob(_ index: Int32) -> [UInt8]? {
        guard sqlite3_column_type(statement, index) != SQLITE_NULL else { return nil }
        let count = Int(sqlite3_column_bytes(statement, index))
        guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
