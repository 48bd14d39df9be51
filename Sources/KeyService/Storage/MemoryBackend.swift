import Synchronization

/// The `--dev` store: a dictionary behind a mutex. Nothing survives the process.
///
/// Transactions hold the mutex for their whole body and work on a copy that replaces the
/// dictionary only when the body returns, so a throwing body leaves no trace. The body must use
/// the `StorageTransaction` it is given, not the backend itself (the mutex is not reentrant).
final class MemoryBackend: StorageBackend {
    private let entries = Mutex<[String: [UInt8]]>([:])

    init() {}

    func get(_ path: String) throws -> [UInt8]? {
        entries.withLock { $0[path] }
    }

    func put(_ path: String, _ value: [UInt8]) throws {
        entries.withLock { $0[path] = value }
    }

    func delete(_ path: String) throws {
        _ = entries.withLock { $0.removeValue(forKey: path) }
    }

    func list(prefix: String) throws -> [String] {
        entries.withLock { StorageListing.children(of: prefix, in: $0.keys) }
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        try entries.withLock { entries in
            let working = Working(entries)
            let result = try body(working)
            entries = working.entries
            return result
        }
    }

    /// The copy a transaction reads and writes.
    private final class Working: StorageTransaction {
        var entries: [String: [UInt8]]

        init(_ entries: [String: [UInt8]]) { self.entries = entries }

        func get(_ path: String) throws -> [UInt8]? { entries[path] }
        func put(_ path: String, _ value: [UInt8]) throws { entries[path] = value }
        func delete(_ path: String) throws { entries.removeValue(forKey: path) }
        func list(prefix: String) throws -> [String] { StorageListing.children(of: prefix, in: entries.keys) }
    }
}
