import FoundationEssentials

/// One engine's view of the sealed store: JSON records below a path prefix (`logical/<mount uuid>/`), every value
/// encrypted by the barrier with its full path as associated data.
struct EngineStorage: Sendable {
    let backend: any StorageBackend
    let prefix: String

    func scoped(_ sub: String) -> EngineStorage { EngineStorage(backend: backend, prefix: prefix + sub) }

    func read<T: Decodable>(_ type: T.Type, _ path: String) throws(VaultError) -> T? {
        do {
            guard let bytes = try backend.get(prefix + path) else { return nil }
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw .storage(error, detail: "cannot read '\(prefix + path)' from sealed storage: \(error)")
        }
    }

    func write(_ value: some Encodable, _ path: String) throws(VaultError) {
        do {
            try backend.put(prefix + path, Array(try JSONEncoder().encode(value)))
        } catch {
            throw .storage(error, detail: "cannot write '\(prefix + path)' to sealed storage: \(error)")
        }
    }

    func remove(_ path: String) throws(VaultError) {
        do { try backend.delete(prefix + path) } catch {
            throw .storage(error, detail: "cannot delete '\(prefix + path)' from sealed storage: \(error)")
        }
    }

    /// Immediate children below `path` (folders end in "/").
    func children(_ path: String) throws(VaultError) -> [String] {
        do { return try backend.list(prefix: prefix + path) } catch {
            throw .storage(error, detail: "cannot list '\(prefix + path)' in sealed storage: \(error)")
        }
    }

    /// Every record below `path`, recursively (paths relative to `path`).
    func allPaths(_ path: String) throws(VaultError) -> [String] {
        var found: [String] = []
        for child in try children(path) {
            if child.hasSuffix("/") {
                found += try allPaths(path + child).map { child + $0 }
            } else {
                found.append(child)
            }
        }
        return found
    }
}
