/// Dev mode's store: the same barrier as production (AES-256-GCM, path-bound) over memory, under a random
/// root key that lives as long as the process (`DevSealProvider`).
enum DevStorage {
    static func make() throws -> EngineStorage {
        let barrier = Barrier(backend: MemoryBackend())
        try barrier.initialize(rootKey: try DevSealProvider().rootKey())
        return EngineStorage(backend: barrier, prefix: "")
    }
}
