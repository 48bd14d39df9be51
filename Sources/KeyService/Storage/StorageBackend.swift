/// The physical store under the barrier: a flat map from paths (`sys/token/id/…`) to opaque bytes.
///
/// Implementations are thread-safe. A `put` that returned has been made durable as far as the
/// backend promises (`SQLiteBackend`: committed with synchronous=FULL; `MemoryBackend`: nothing).
/// `list(prefix:)` follows Vault: the immediate children of `prefix`, sorted, relative to it, with
/// sub-folders once each and ending in "/" (`list(prefix: "a/")` over `a/b`, `a/c/d` → `["b", "c/"]`).
package protocol StorageBackend: Sendable {
    /// The value at `path`, or nil when there is none.
    func get(_ path: String) throws -> [UInt8]?
    /// Stores `value` at `path`, replacing any value there.
    func put(_ path: String, _ value: [UInt8]) throws
    /// Removes the value at `path`; removing a missing path is not an error.
    func delete(_ path: String) throws
    /// The immediate children of `prefix` (see the type's documentation).
    func list(prefix: String) throws -> [String]

    /// Runs `body` as one atomic, serialised read-write transaction: every write in it is applied,
    /// or none is when `body` throws (its error is rethrown unchanged). Reads inside see the writes
    /// made before them in the same transaction. The `StorageTransaction` must not escape `body`.
    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result
}
