import FoundationEssentials
import SNP
import Synchronization

/// The secrets engines mounted at paths below `/v1/`, found by longest prefix, as Vault routes. A class behind
/// mutexes (not an actor), so that routing a request never suspends. Changes hold `table`'s lock while they commit
/// (a storage write, an fsync, a KV upgrade); readers (routing on the event loop) read `published`, whose lock is
/// never held across storage I/O: a change is published once it has committed, and a failed one not at all.
final class MountTable: Sendable {
    private let table = Mutex<[String: Mount]>([:])
    private let published = Mutex<[String: Mount]>([:])
    /// Engine types that can be mounted, with a factory for an engine over its storage.
    private let factories: [String: Engines.Factory]
    /// The sealed store: the table at `core/mounts`, each engine below `logical/<uuid>/`.
    private let storage: EngineStorage

    /// What `core/mounts` keeps of each mount.
    private struct Record: Codable, Sendable {
        var path: String
        var type: String
        var description: String
        var accessor: String
        var uuid: String
        var options: [String: JSONValue]
        var defaultLeaseTTL: Int64?
        var maxLeaseTTL: Int64?
    }

    init(storage: EngineStorage, factories: [String: Engines.Factory] = Engines.factories) {
        self.storage = storage
        self.factories = factories
    }

    /// Restores the table from sealed storage (after an unseal).
    func load() throws(VaultError) {
        try change { (mounts) throws(VaultError) in try load(into: &mounts) }
    }

    private func load(into mounts: inout [String: Mount]) throws(VaultError) {
        for record in try storage.read([Record].self, "core/mounts") ?? [] {
            guard let factory = factories[record.type] else { continue }
            mounts[record.path] = Mount(
                path: record.path, type: record.type, description: record.description, accessor: record.accessor,
                uuid: record.uuid, options: record.options,
                backend: factory(record.options, storage.scoped("logical/\(record.uuid)/")),
                defaultLeaseTTL: record.defaultLeaseTTL ?? 0, maxLeaseTTL: record.maxLeaseTTL ?? 0)
        }
    }

    /// Runs a change on a copy of the table under the writers' lock; the copy replaces the table and is published
    /// only when the change succeeds (its storage write included).
    private func change<Result>(
        _ body: (inout [String: Mount]) throws(VaultError) -> Result
    ) throws(VaultError) -> Result {
        try table.withLock { (mounts) throws(VaultError) -> Result in
            var next = mounts
            let result = try body(&next)
            mounts = next
            published.withLock { $0 = next }
            return result
        }
    }

    private func persist(_ mounts: [String: Mount]) throws(VaultError) {
        let records = mounts.values.map {
            Record(
                path: $0.path, type: $0.type, description: $0.description, accessor: $0.accessor, uuid: $0.uuid,
                options: $0.options, defaultLeaseTTL: $0.defaultLeaseTTL, maxLeaseTTL: $0.maxLeaseTTL)
        }
        try storage.write(records.sorted { $0.path < $1.path }, "core/mounts")
    }

    /// The mount serving `path` and the path relative to it.
    func route(_ path: String) -> (Mount, String)? {
        let candidate = path.hasSuffix("/") ? path : path + "/"
        let found = published.withLock { mounts -> (String, Mount)? in
            var best: (String, Mount)?
            for (prefix, mount) in mounts where candidate.hasPrefix(prefix) {
                if let current = best, current.0.count >= prefix.count { continue }
                best = (prefix, mount)
            }
            return best
        }
        guard let (match, mount) = found else { return nil }
        var relative = String(path.dropFirst(min(match.count, path.count)))
        if relative.hasSuffix("/") { relative.removeLast() }
        return (mount, relative)
    }

    /// Mounts an engine, or with `auth` an auth method (`sys/auth/<path>`, mounted at `auth/<path>/`);
    /// `defaultLeaseTTL`/`maxLeaseTTL` are `sys/mounts`' `config` (0: the system's). Everything is checked before the
    /// mount exists: a refused enable leaves nothing behind.
    func enable(
        path rawPath: String, type: String, description: String, options: [String: JSONValue],
        defaultLeaseTTL: Int64 = 0, maxLeaseTTL: Int64 = 0, auth: Bool = false
    )
        throws(VaultError)
    {
        try change { (mounts) throws(VaultError) in
            try enable(
                path: rawPath, type: type, description: description, options: options,
                defaultLeaseTTL: defaultLeaseTTL, maxLeaseTTL: maxLeaseTTL, auth: auth, in: &mounts)
        }
    }

    private func enable(
        path rawPath: String, type: String, description: String, options: [String: JSONValue],
        defaultLeaseTTL: Int64, maxLeaseTTL: Int64, auth: Bool, in mounts: inout [String: Mount]
    )
        throws(VaultError)
    {
        let relative = Self.normalise(rawPath)
        guard !relative.isEmpty, relative != "/" else { throw .badRequest("missing path") }
        let path = auth ? "auth/" + relative : relative
        if auth {
            guard Self.authTypes.contains(type) else {
                throw .badRequest(
                    "vhsmd's auth methods are token (always at auth/token/) and "
                        + Self.authTypes.sorted().joined(separator: ", ") + ": cannot enable '\(type)'")
            }
            if path == "auth/token/" { throw .badRequest("path is already in use at auth/token/") }
        } else {
            for reserved in Self.reserved where path.hasPrefix(reserved) {
                throw .badRequest("cannot mount '\(path)': '\(reserved)' is reserved")
            }
            guard !Self.authTypes.contains(type) else {
                throw .badRequest("'\(type)' is an auth method, not a secrets engine: enable it at sys/auth/<path>")
            }
        }
        if let taken = mounts.keys.first(where: { path.hasPrefix($0) || $0.hasPrefix(path) }) {
            throw .badRequest("path is already in use at \(taken)")
        }
        var type = type
        var options = options
        if type == "kv-v2" {
            // Vault's catalog name for KV version 2.
            type = "kv"
            options["version"] = .string("2")
        }
        guard let factory = factories[type] else {
            throw .badRequest("plugin not found in the catalog: \(type)")
        }
        if type == "kv" {
            let version = options["version"].flatMap(Self.kvVersion)
            // Without a version, KV is version 1 and the mount has no options, as in Vault.
            guard version == nil || version == "1" || version == "2" else {
                throw .badRequest("unsupported KV version \(version ?? ""): vhsmd serves versions 1 and 2")
            }
            if let version { options["version"] = .string(version) }
        }
        let uuid = UUID().uuidString.lowercased()
        var mount = Mount(
            path: path, type: type, description: description, accessor: "\(type)_\(Self.randomHex(4))",
            uuid: uuid, options: options, backend: factory(options, storage.scoped("logical/\(uuid)/")),
            defaultLeaseTTL: defaultLeaseTTL, maxLeaseTTL: maxLeaseTTL)
        if auth { mount.accessor = "auth_\(type)_\(Self.randomHex(4))" }
        try mount.checkLeaseTTLs()
        mounts[path] = mount
        try persist(mounts)
    }

    /// Unmounts `path` and destroys its data, as Vault does; with `auth`, the auth method at `auth/<path>/` (an auth
    /// method is never disabled through `sys/mounts`).
    func disable(path rawPath: String, auth: Bool = false) throws(VaultError) {
        let path = auth ? "auth/" + Self.normalise(rawPath) : Self.normalise(rawPath)
        guard auth || !Self.isAuth(path) else { return }
        let removed = try change { (mounts) throws(VaultError) -> Mount? in
            guard let mount = mounts.removeValue(forKey: path) else { return nil }
            try persist(mounts)
            return mount
        }
        guard let mount = removed else { return }
        let data = storage.scoped("logical/\(mount.uuid)/")
        for path in try data.allPaths("") { try data.remove(path) }
    }

    /// `sys/mounts/<path>`: the mount's entry, as `sys/mounts` lists it; 400 for a path nothing is mounted at.
    func entry(path rawPath: String) throws(VaultError) -> [String: JSONValue] {
        let path = Self.normalise(rawPath)
        guard !Self.isAuth(path), let mount = published.withLock({ $0[path] }), case .object(let entry) = mount.listing
        else {
            throw .badRequest("cannot fetch sysview for path \"\(path)\"")
        }
        return entry
    }

    /// `sys/mounts/<path>/tune` (read): 400 for a path nothing is mounted at.
    func tuning(path rawPath: String) throws(VaultError) -> [String: JSONValue] {
        let path = Self.normalise(rawPath)
        guard !Self.isAuth(path), let mount = published.withLock({ $0[path] }) else {
            throw .badRequest("cannot fetch sysview for path \"\(path)\"")
        }
        return mount.tuning
    }

    /// `sys/mounts/<path>/tune` (write): the description, the lease TTLs and options. Asking a KV version 1 mount for
    /// version 2 upgrades it in place (`KVStore.upgrade`), done before this returns, under the table's lock; the
    /// answer is then a warning. A version 2 mount cannot go back to 1.
    @discardableResult
    func tune(
        path rawPath: String, description: String?, defaultLeaseTTL: Int64?, maxLeaseTTL: Int64?,
        options: [String: JSONValue]?, auth: Bool = false
    ) throws(VaultError) -> String? {
        let path = auth ? "auth/" + Self.normalise(rawPath) : Self.normalise(rawPath)
        return try change { (mounts) throws(VaultError) -> String? in
            guard auth == Self.isAuth(path), var mount = mounts[path] else {
                throw .badRequest("tune of path \"\(path)\" failed: no mount entry found")
            }
            if let description { mount.description = description }
            if let defaultLeaseTTL { mount.defaultLeaseTTL = defaultLeaseTTL }
            if let maxLeaseTTL { mount.maxLeaseTTL = maxLeaseTTL }
            try mount.checkLeaseTTLs()
            var upgrade = false
            for (key, value) in options ?? [:] {
                if key == "version", mount.type == "kv" {
                    let current = mount.options["version"] == .string("2") ? "2" : "1"
                    let asked = Self.kvVersion(value)
                    switch (current, asked) {
                    case (_, let asked?) where asked == current: break
                    case ("1", "2"?): upgrade = true
                    case ("2", "1"?): throw .badRequest("cannot downgrade mount from version 2")
                    default:
                        let shown = asked ?? String(decoding: value.serialized, as: UTF8.self)
                        throw .badRequest("invalid version provided: \(shown)")
                    }
                    continue
                }
                mount.options[key] = value
            }
            var warning: String?
            if upgrade {
                let data = storage.scoped("logical/\(mount.uuid)/")
                let count = try KVStore.upgrade(version1: data)
                mount.options["version"] = .string("2")
                guard let factory = factories[mount.type] else { throw .internalError("no kv engine") }
                mount.backend = factory(mount.options, data)
                warning =
                    "Upgraded mount from version 1 to version 2: \(count) secret(s) are now version 1 of a "
                    + "versioned secret (vhsmd upgrades before answering)."
            }
            mounts[path] = mount
            try persist(mounts)
            return warning
        }
    }

    /// `sys/remount`: the mount keeps its engine, data and UUID under the new path.
    func move(from rawFrom: String, to rawTo: String) throws(VaultError) {
        let from = Self.normalise(rawFrom)
        let to = Self.normalise(rawTo)
        try change { (mounts) throws(VaultError) in
            guard !Self.isAuth(from), var mount = mounts[from] else {
                throw .badRequest("no matching mount at \"\(from)\"")
            }
            for reserved in Self.reserved where to.hasPrefix(reserved) {
                throw .badRequest("cannot mount '\(to)': '\(reserved)' is reserved")
            }
            if let taken = mounts.keys.first(where: { $0 != from && (to.hasPrefix($0) || $0.hasPrefix(to)) }) {
                throw .badRequest("path already in use at \"\(taken)\"")
            }
            mounts[from] = nil
            mount.path = to
            mounts[to] = mount
            try persist(mounts)
        }
    }

    /// The secrets engines (`sys/mounts`).
    func list() -> [String: JSONValue] {
        published.withLock { $0.filter { !Self.isAuth($0.key) }.mapValues(\.listing) }
    }

    /// The auth method mounted at `auth/<path>/` (`sys/auth/<path>`).
    func authMount(path rawPath: String) -> Mount? {
        let path = "auth/" + Self.normalise(rawPath)
        return published.withLock { $0[path] }
    }

    /// Auth method types `sys/auth` can enable besides the token store.
    static let authTypes: Set<String> = [SevSNPAuthBackend.type]

    /// Is `path` (normalised) an auth method's mount?
    static func isAuth(_ path: String) -> Bool { path.hasPrefix("auth/") }

    /// Every mount as published (committed), in no particular order.
    var mounted: [Mount] { published.withLock { Array($0.values) } }

    /// A KV `version` option as text ("2" or 2); nil for anything else.
    static func kvVersion(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        default: nil
        }
    }

    /// Vault's built-in paths: nothing may be mounted at or below them, and they cannot be unmounted.
    static let reserved = ["sys/", "auth/", "cubbyhole/", "identity/"]

    static func normalise(_ path: String) -> String {
        var path = path
        while path.hasPrefix("/") { path.removeFirst() }
        return path.hasSuffix("/") ? path : path + "/"
    }

    static func randomHex(_ count: Int) -> String { Hex.encode(TransitRandom.bytes(count)) }
}
