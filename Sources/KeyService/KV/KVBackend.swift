import FoundationEssentials
import HTTPTypes

/// KV version 2: versioned secrets with check-and-set, soft delete, undelete, destroy and metadata.
struct KVBackend: Backend {
    let store: KVStore

    /// KV v2's existence check on `data/` and `metadata/` writes: does the secret have metadata?
    var hasExistenceCheck: Bool { true }

    func existence(of path: String) async -> Bool? {
        let (section, rest) = Self.split(path)
        guard section == "data" || section == "metadata", let secret = try? Self.secretPath(rest) else { return nil }
        // A storage failure fails the request itself in the handler; here it counts as "absent" (needs create).
        do { return try store.metadata(secret) != nil } catch { return false }
    }

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        let (section, rest) = Self.split(path)
        let body = request.body
        switch (request.operation, section) {
        case (.read, "config"): return .data(try store.configuration())
        case (.update, "config"):
            try store.configure(
                maxVersions: try body.int("max_versions"), casRequired: try body.bool("cas_required"),
                deleteVersionAfter: try body.duration("delete_version_after"))
            return .noContent
        case (.update, "data"):
            // `"data": null` writes a version with no keys, as OpenBao does.
            let data: [String: JSONValue]
            switch body.objectMembers["data"] {
            case .object(let object)?: data = object
            case .null?: data = [:]
            default: throw .badRequest("no data provided")
            }
            let cas = try (body["options"] ?? .object([:])).int("cas")
            return .data(try store.write(try Self.secretPath(rest), data: data, cas: cas))
        case (.read, "data"):
            return try store.read(try Self.secretPath(rest), version: try Self.queryInteger(request, "version"))
        case (.read, "subkeys"):
            // The secret's keys without its values: nested objects down to `depth` levels (0: all), leaves null.
            let reply = try store.read(
                try Self.secretPath(rest), version: try Self.queryInteger(request, "version"))
            guard case .object(let members)? = reply.data, let data = members["data"] else { throw .notFound }
            let depth = try Self.queryInteger(request, "depth") ?? 0
            guard depth >= 0 else { throw .badRequest("depth must be a non-negative integer") }
            return .data(["subkeys": Self.subkeys(data, depth: depth), "metadata": members["metadata"] ?? .null])
        case (.delete, "data"):
            try store.softDelete(try Self.secretPath(rest), versions: nil)
            return .noContent
        case (.update, "delete"), (.update, "undelete"), (.update, "destroy"):
            guard case .array(let list)? = body["versions"] else { throw .badRequest("no version number provided") }
            let versions = list.compactMap { value -> Int64? in
                switch value {
                case .int(let number): number
                case .string(let text): Int64(text)
                default: nil
                }
            }
            let secret = try Self.secretPath(rest)
            switch section {
            case "delete": try store.softDelete(secret, versions: versions)
            case "undelete": try store.undelete(secret, versions: versions)
            default: try store.destroy(secret, versions: versions)
            }
            return .noContent
        case (.list, "metadata"):
            let keys = try store.list(prefix: rest)
            guard !keys.isEmpty else { throw .notFound }
            return .data(["keys": .array(keys.map(JSONValue.string))])
        case (.read, "metadata"):
            guard let metadata = try store.metadata(try Self.secretPath(rest)) else { throw .notFound }
            return .data(metadata)
        case (.update, "metadata"):
            var custom: [String: JSONValue]?
            if case .object(let object)? = body["custom_metadata"] {
                // Vault keeps custom metadata as strings: numbers and booleans are stored in their text form.
                var strings: [String: JSONValue] = [:]
                for (key, value) in object where value != .null {
                    guard let text = value.text else { throw .badRequest("field '\(key)' must be a string") }
                    strings[key] = .string(text)
                }
                custom = strings
            }
            try store.updateMetadata(
                try Self.secretPath(rest), maxVersions: try body.int("max_versions"),
                casRequired: try body.bool("cas_required"),
                deleteVersionAfter: try body.duration("delete_version_after"),
                customMetadata: custom)
            return .noContent
        case (.patch, "data"), (.patch, "metadata"):
            // JSON merge patch (RFC 7386) of the current version's data, or of the metadata.
            let contentType = request.contentType ?? ""
            guard contentType.hasPrefix("application/merge-patch+json") else {
                throw VaultError(
                    status: .unsupportedMediaType,
                    messages: ["PATCH requires Content-Type of application/merge-patch+json, provided \(contentType)"])
            }
            let secret = try Self.secretPath(rest)
            if section == "metadata" {
                try store.patchMetadata(
                    secret, maxVersions: try body.int("max_versions"), casRequired: try body.bool("cas_required"),
                    deleteVersionAfter: try body.duration("delete_version_after"),
                    customMetadata: body["custom_metadata"])
                return .noContent
            }
            guard case .object(let patch)? = body["data"] else { throw .badRequest("no data provided") }
            let cas = try (body["options"] ?? .object([:])).int("cas")
            return .data(try store.patch(secret, with: patch, cas: cas))
        case (.delete, "metadata"):
            try store.deleteAll(try Self.secretPath(rest))
            return .noContent
        default:
            throw .unsupportedPath(path)
        }
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.firstIndex(of: "/") else { return (path, "") }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    static func secretPath(_ path: String) throws(VaultError) -> String {
        guard !path.isEmpty else { throw .badRequest("missing secret path") }
        return path
    }
}

/// The versions and metadata of every secret of one KV v2 mount.
///
/// Each change of a secret (a new version and its check-and-set, a delete, undelete, destroy, a metadata write or
/// patch) reads the secret's record, changes it and writes it back holding that secret's lock, so two changes of one
/// secret never interleave; changes of different secrets, and reads, run at the same time (as Vault's per-key locks).
final class KVStore: Sendable {
    struct Version: Codable, Sendable {
        var data: [String: JSONValue]?
        var created: Date
        var deleted: Date?
        var destroyed: Bool
    }

    struct Secret: Codable, Sendable {
        var versions: [Int64: Version] = [:]
        var current: Int64 = 0
        var oldest: Int64 = 0
        var maxVersions: Int64 = 0
        var casRequired = false
        var deleteVersionAfter: Int64 = 0
        var custom: [String: JSONValue]?
        var created = Date()
        var updated = Date()
    }

    struct Configuration: Codable, Sendable {
        /// 0 = Vault's default of 10 versions (reported as 0, as Vault does).
        var maxVersions: Int64 = 0
        var casRequired = false
        var deleteVersionAfter: Int64 = 0
    }

    /// A new version's data and its check-and-set (`write`).
    struct Write: Sendable {
        var data: [String: JSONValue]
        var cas: Int64?
    }

    private let storage: EngineStorage
    private let locks = KeyedLocks()
    /// New versions of one secret that queue while another is written go in together (`KeyedBatches`).
    let writes = KeyedBatches<Write, [String: JSONValue], VaultError>()

    init(storage: EngineStorage) { self.storage = storage }

    /// The lock of the mount's configuration (a name no secret path can have: secret paths never start with "/").
    private static let configLock = "/config"

    private func load(_ path: String) throws(VaultError) -> Secret? { try storage.read(Secret.self, "secrets/" + path) }
    private func save(_ secret: Secret, _ path: String) throws(VaultError) {
        try storage.write(secret, "secrets/" + path)
    }
    private func settings() throws(VaultError) -> Configuration {
        try storage.read(Configuration.self, "config") ?? Configuration()
    }

    func configuration() throws(VaultError) -> [String: JSONValue] {
        let settings = try settings()
        return [
            "max_versions": .int(settings.maxVersions), "cas_required": .bool(settings.casRequired),
            "delete_version_after": .string(Self.goDuration(settings.deleteVersionAfter)),
            "metadata_cas_required": .bool(false),
        ]
    }

    func configure(maxVersions: Int64?, casRequired: Bool?, deleteVersionAfter: Int64?) throws(VaultError) {
        try locks.withLock(Self.configLock) { () throws(VaultError) in
            try configureLocked(
                maxVersions: maxVersions, casRequired: casRequired, deleteVersionAfter: deleteVersionAfter)
        }
    }

    private func configureLocked(
        maxVersions: Int64?, casRequired: Bool?, deleteVersionAfter: Int64?
    ) throws(VaultError) {
        var settings = try settings()
        if let maxVersions {
            guard maxVersions >= 0 else { throw .badRequest("max_versions must not be negative") }
            settings.maxVersions = maxVersions
        }
        if let casRequired { settings.casRequired = casRequired }
        if let deleteVersionAfter { settings.deleteVersionAfter = deleteVersionAfter }
        try storage.write(settings, "config")
    }

    /// A new version. Writes of one secret that arrive while another is being written are applied together by the
    /// next one, in the order they came, with one read and one commit (`KeyedBatches`); each answers its own
    /// version, or its own check-and-set refusal.
    func write(_ path: String, data: [String: JSONValue], cas: Int64?) throws(VaultError) -> [String: JSONValue] {
        try writes.submit(path, Write(data: data, cas: cas)) { lot in
            locks.withLock(path) { writeLocked(path, lot) }
        }.get()
    }

    /// The lot's versions on one read of the secret and one write of it; nothing is written when every one is
    /// refused, and each success becomes the write's failure when that fails.
    private func writeLocked(_ path: String, _ lot: [Write]) -> [Result<[String: JSONValue], VaultError>] {
        let settings: Configuration
        var secret: Secret
        do throws(VaultError) {
            settings = try self.settings()
            secret = try load(path) ?? Secret()
        } catch {
            return lot.map { _ in .failure(error) }
        }
        var outcomes = lot.map { write in
            Result { () throws(VaultError) in
                try Self.add(write.data, cas: write.cas, to: &secret, settings: settings)
            }
        }
        guard outcomes.contains(where: { (try? $0.get()) != nil }) else { return outcomes }
        do throws(VaultError) { try save(secret, path) } catch {
            outcomes = outcomes.map { $0.flatMap { _ in .failure(error) } }
        }
        return outcomes
    }

    /// One version, written alone (a patch, which holds the secret's lock already).
    private func writeLocked(
        _ path: String, data: [String: JSONValue], cas: Int64?
    ) throws(VaultError) -> [String: JSONValue] {
        try writeLocked(path, [Write(data: data, cas: cas)])[0].get()
    }

    /// `data` as the secret's next version (refused, with `secret` unchanged, when the check-and-set does not
    /// hold); versions past the limit are dropped. Answers the new version's metadata.
    private static func add(
        _ data: [String: JSONValue], cas: Int64?, to secret: inout Secret, settings: Configuration
    ) throws(VaultError) -> [String: JSONValue] {
        if secret.casRequired || settings.casRequired, cas == nil {
            throw .badRequest("check-and-set parameter required for this call")
        }
        if let cas, cas != secret.current {
            throw .badRequest("check-and-set parameter did not match the current version")
        }
        secret.current += 1
        if secret.oldest == 0 { secret.oldest = 1 }
        let version = Version(data: data, created: Date(), deleted: nil, destroyed: false)
        secret.versions[secret.current] = version
        secret.updated = version.created
        let limit = secret.maxVersions > 0 ? secret.maxVersions : settings.maxVersions > 0 ? settings.maxVersions : 10
        while limit > 0, secret.current - secret.oldest + 1 > limit {
            secret.versions[secret.oldest] = nil
            secret.oldest += 1
        }
        return versionMetadata(version, number: secret.current, custom: secret.custom)
    }

    func read(_ path: String, version requested: Int64?) throws(VaultError) -> VaultReply {
        guard let secret = try load(path), secret.current > 0 else { throw .notFound }
        let number = (requested ?? 0) == 0 ? secret.current : requested!
        guard let version = secret.versions[number] else { throw .notFound }
        let metadata = JSONValue.object(Self.versionMetadata(version, number: number, custom: secret.custom))
        guard version.deleted == nil, !version.destroyed, let data = version.data else {
            // A deleted or destroyed version: 404 whose body still carries the metadata.
            throw VaultError(status: .notFound, messages: [], data: .object(["data": .null, "metadata": metadata]))
        }
        return .data(["data": .object(data), "metadata": metadata])
    }

    func softDelete(_ path: String, versions: [Int64]?) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in
            guard var secret = try load(path) else { return }
            for number in versions ?? [secret.current] where secret.versions[number]?.deleted == nil {
                secret.versions[number]?.deleted = Date()
            }
            try save(secret, path)
        }
    }

    func undelete(_ path: String, versions: [Int64]) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in
            guard var secret = try load(path) else { return }
            for number in versions where secret.versions[number]?.destroyed == false {
                secret.versions[number]?.deleted = nil
            }
            try save(secret, path)
        }
    }

    func destroy(_ path: String, versions: [Int64]) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in
            guard var secret = try load(path) else { return }
            for number in versions where secret.versions[number] != nil {
                secret.versions[number]?.data = nil
                secret.versions[number]?.destroyed = true
            }
            try save(secret, path)
        }
    }

    func deleteAll(_ path: String) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in try storage.remove("secrets/" + path) }
    }

    /// Immediate children of `prefix`: leaf names and `folder/` entries.
    func list(prefix: String) throws(VaultError) -> [String] {
        let base = prefix.isEmpty ? "" : (prefix.hasSuffix("/") ? prefix : prefix + "/")
        return try storage.children("secrets/" + base)
    }

    func metadata(_ path: String) throws(VaultError) -> [String: JSONValue]? {
        guard let secret = try load(path) else { return nil }
        var versions: [String: JSONValue] = [:]
        for (number, version) in secret.versions {
            versions[String(number)] = .object([
                "created_time": .string(Self.time(version.created)),
                "deletion_time": .string(version.deleted.map(Self.time) ?? ""), "destroyed": .bool(version.destroyed),
            ])
        }
        return [
            "cas_required": .bool(secret.casRequired), "created_time": .string(Self.time(secret.created)),
            "current_version": .int(secret.current), "custom_metadata": secret.custom.map(JSONValue.object) ?? .null,
            "delete_version_after": .string(Self.goDuration(secret.deleteVersionAfter)),
            "max_versions": .int(secret.maxVersions), "oldest_version": .int(secret.oldest <= 1 ? 0 : secret.oldest),
            "updated_time": .string(Self.time(secret.updated)), "versions": .object(versions),
        ]
    }

    func updateMetadata(
        _ path: String, maxVersions: Int64?, casRequired: Bool?, deleteVersionAfter: Int64?,
        customMetadata: [String: JSONValue]?
    ) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in
            try updateMetadataLocked(
                path, maxVersions: maxVersions, casRequired: casRequired, deleteVersionAfter: deleteVersionAfter,
                customMetadata: customMetadata)
        }
    }

    private func updateMetadataLocked(
        _ path: String, maxVersions: Int64?, casRequired: Bool?, deleteVersionAfter: Int64?,
        customMetadata: [String: JSONValue]?
    ) throws(VaultError) {
        var secret = try load(path) ?? Secret()
        if let maxVersions { secret.maxVersions = maxVersions }
        if let casRequired { secret.casRequired = casRequired }
        if let deleteVersionAfter { secret.deleteVersionAfter = deleteVersionAfter }
        if let customMetadata { secret.custom = customMetadata }
        secret.updated = Date()
        try save(secret, path)
    }

    /// PATCH data: the current version's data merged with `patch` (RFC 7386), written as a new version. 404 when
    /// there is no current version, or it is deleted or destroyed (with its metadata, as a read answers).
    func patch(_ path: String, with patch: [String: JSONValue], cas: Int64?) throws(VaultError) -> [String: JSONValue] {
        try locks.withLock(path) { () throws(VaultError) in
            let current = try read(path, version: nil)
            guard case .object(let members)? = current.data, case .object(let data)? = members["data"] else {
                throw .notFound
            }
            guard case .object(let merged) = Self.mergePatch(.object(data), .object(patch)) else { throw .notFound }
            return try writeLocked(path, data: merged, cas: cas)
        }
    }

    /// PATCH metadata: like a metadata write, except that `custom_metadata` is merged (a null value removes a key).
    /// 404 for a secret with no metadata.
    func patchMetadata(
        _ path: String, maxVersions: Int64?, casRequired: Bool?, deleteVersionAfter: Int64?,
        customMetadata: JSONValue?
    ) throws(VaultError) {
        try locks.withLock(path) { () throws(VaultError) in
            guard let secret = try load(path) else { throw .notFound }
            var custom: [String: JSONValue]?
            if let customMetadata {
                guard case .object(let merged) = Self.mergePatch(.object(secret.custom ?? [:]), customMetadata) else {
                    throw .badRequest("custom_metadata must be an object")
                }
                var strings: [String: JSONValue] = [:]
                for (key, value) in merged {
                    // Kept as strings, as a metadata write keeps them.
                    guard let text = value.text else {
                        throw .badRequest("custom_metadata values must be strings")
                    }
                    strings[key] = .string(text)
                }
                custom = strings
            }
            try updateMetadataLocked(
                path, maxVersions: maxVersions, casRequired: casRequired, deleteVersionAfter: deleteVersionAfter,
                customMetadata: custom)
        }
    }

    /// RFC 7386 JSON merge patch: objects merge member by member, a null member is removed, anything else replaces.
    static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var result: [String: JSONValue] = if case .object(let members) = target { members } else { [:] }
        for (key, value) in changes {
            if value == .null { result[key] = nil } else { result[key] = mergePatch(result[key] ?? .null, value) }
        }
        return .object(result)
    }

    static func versionMetadata(_ version: Version, number: Int64, custom: [String: JSONValue]?) -> [String: JSONValue]
    {
        [
            "created_time": .string(time(version.created)), "custom_metadata": custom.map(JSONValue.object) ?? .null,
            "deletion_time": .string(version.deleted.map(time) ?? ""), "destroyed": .bool(version.destroyed),
            "version": .int(number),
        ]
    }

    static func time(_ date: Date) -> String {
        TransitTime.rfc3339(date)
    }

    /// Go's `time.Duration.String()` for whole seconds: "0s", "45s", "1m30s", "2h0m0s".
    static func goDuration(_ seconds: Int64) -> String {
        if seconds >= 3600 { return "\(seconds / 3600)h\((seconds % 3600) / 60)m\(seconds % 60)s" }
        if seconds >= 60 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(max(0, seconds))s"
    }
}

extension KVBackend {
    /// An integer query parameter (`?version=`, `?depth=`).
    static func queryInteger(_ request: VaultRequest, _ name: String) throws(VaultError) -> Int64? {
        try request.query[name].map { text throws(VaultError) -> Int64 in
            guard let value = Int64(text) else { throw .badRequest("\(name) must be an integer") }
            return value
        }
    }

    /// Vault's `subkeys` view of a secret: every key kept, values replaced by null, objects followed to `depth`.
    static func subkeys(_ value: JSONValue, depth: Int64, level: Int64 = 1) -> JSONValue {
        guard case .object(let members) = value else { return .null }
        return .object(
            members.mapValues { child in
                guard depth == 0 || level < depth, case .object = child else { return .null }
                return subkeys(child, depth: depth, level: level + 1)
            })
    }
}

extension KVStore {
    /// Vault's in-place upgrade of a version 1 mount (`sys/mounts/<path>/tune` with `options.version` "2"): every
    /// secret becomes version 1 of a versioned secret, created now, in the same record. One storage transaction:
    /// all secrets are upgraded, or none. Returns how many.
    static func upgrade(version1 storage: EngineStorage) throws(VaultError) -> Int {
        let now = Date()
        do {
            return try storage.backend.transaction { transaction in
                var upgraded = 0
                var folders = [storage.prefix + "secrets/"]
                while let folder = folders.popLast() {
                    for child in try transaction.list(prefix: folder) {
                        let path = folder + child
                        if child.hasSuffix("/") {
                            folders.append(path)
                            continue
                        }
                        guard let bytes = try transaction.get(path) else { continue }
                        let data = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
                        var secret = Secret(created: now, updated: now)
                        secret.versions[1] = Version(data: data, created: now, deleted: nil, destroyed: false)
                        secret.current = 1
                        secret.oldest = 1
                        try transaction.put(path, Array(try JSONEncoder().encode(secret)))
                        upgraded += 1
                    }
                }
                return upgraded
            }
        } catch {
            throw .storage(
                error,
                detail:
                    "cannot upgrade the KV mount stored at '\(storage.prefix)' to version 2 (nothing was changed): \(error)"
            )
        }
    }
}
