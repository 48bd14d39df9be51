/// The secrets engines `sys/mounts` can enable, by type. Each gets the sealed storage below its mount's prefix.
enum Engines {
    typealias Factory = @Sendable (_ options: [String: JSONValue], _ storage: EngineStorage) -> any Backend

    static let factories: [String: Factory] = [
        "kv": { _, storage in KVBackend(store: KVStore(storage: storage)) },
        "transit": { _, storage in TransitBackend(store: TransitStore(storage: storage)) },
    ]
}
