import Foundation

/// The secrets engines mounted at paths below `/v1/`, found by longest prefix, as Vault routes.
actor MountTable {
    private var mounts: [String: Mount] = [:]
    /// Engine types that can be mounted, with a factory for a fresh, empty engine.
    private let factories: [String: @Sendable (_ path: String, _ options: [String: JSONValue]) -> any Backend]

    init(factories: [String: @Sendable (_ path: String, _ options: [String: JSONValue]) -> any Backend]) {
        self.factories = factories
    }

    /// The mount serving `path` and the path relative to it.
    func route(_ path: String) -> (Mount, String)? {
        let candidate = path.hasSuffix("/") ? path : path + "/"
        let match = mounts.keys.filter { candidate.hasPrefix($0) }.max { $0.count < $1.count }
        guard let match, let mount = mounts[match] else { return nil }
        var relative = String(path.dropFirst(min(match.count, path.count)))
        if relative.hasSuffix("/") { relative.removeLast() }
        return (mount, relative)
    }

    func enable(
        path rawPath: String, type: String, description: String, options: [String: JSONValue]
    )
        throws(VaultError)
    {
        let path = Self.normalise(rawPath)
        guard !path.isEmpty, path != "/" else { throw .badRequest("missing path") }
        for reserved in ["sys/", "auth/", "cubbyhole/", "identity/"] where path.hasPrefix(reserved) {
            throw .badRequest("cannot mount '\(path)': '\(reserved)' is reserved")
        }
        if let taken = mounts.keys.first(where: { path.hasPrefix($0) || $0.hasPrefix(path) }) {
            throw .badRequest("path is already in use at \(taken)")
        }
        guard let factory = factories[type] else {
            throw .badRequest("plugin not found in the catalog: \(type)")
        }
        var options = options
        if type == "kv" { options["version"] = options["version"] ?? .string("2") }
        mounts[path] = Mount(
            path: path, type: type, description: description, accessor: "\(type)_\(Self.randomHex(4))",
            uuid: UUID().uuidString.lowercased(), options: options, backend: factory(path, options))
    }

    func disable(path rawPath: String) {
        mounts[Self.normalise(rawPath)] = nil
    }

    func list() -> [String: JSONValue] {
        mounts.mapValues(\.listing)
    }

    static func normalise(_ path: String) -> String {
        var path = path
        while path.hasPrefix("/") { path.removeFirst() }
        return path.hasSuffix("/") ? path : path + "/"
    }

    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
