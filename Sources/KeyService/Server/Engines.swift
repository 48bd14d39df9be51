/// The secrets engines `sys/mounts` can enable, by type. Each gets the sealed storage below its mount's prefix.
enum Engines {
    typealias Factory = @Sendable (_ options: [String: JSONValue], _ storage: EngineStorage) -> any Backend

    static let factories: [String: Factory] = [
        "kv": { options, storage -> any Backend in
            // Version 2 only when asked for: a kv mount without a version is version 1, as in Vault.
            if options["version"] == .string("2") { return KVBackend(store: KVStore(storage: storage)) }
            return KVV1Backend(storage: storage)
        },
        "transit": { _, storage in TransitBackend(store: TransitStore(storage: storage)) },
        // An auth method (`sys/auth`), mounted at auth/<path>/.
        SevSNPAuthBackend.type: { _, storage in SevSNPAuthBackend(storage: storage) },
    ]
}
