/// The view of a store inside `StorageBackend.transaction(_:)`: the same four operations, applied
/// atomically when the transaction's body returns.
package protocol StorageTransaction {
    func get(_ path: String) throws -> [UInt8]?
    func put(_ path: String, _ value: [UInt8]) throws
    func delete(_ path: String) throws
    func list(prefix: String) throws -> [String]
}
