import FoundationEssentials
import HTTPTypes
import Synchronization

/// The transit secrets engine's HTTP paths (vault-api.md §1.4), over the `TransitKey` engine.
struct TransitBackend: Backend {
    let store: TransitStore

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        try serve(request, Self.segments(path), pinned: nil)
    }

    /// Serves on the calling thread what needs no storage write: encrypt (with an existing key), decrypt, rewrap,
    /// sign, verify, HMAC, hash, random, datakey and key reads of cached keys. nil for the rest. The key is taken
    /// from the cache once and the request is served with that key alone (`pinned`), so nothing here reads
    /// storage or waits for a lock held across a write, whatever the cache does meanwhile.
    func handleOnLoop(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply? {
        let parts = Self.segments(path)
        guard parts.count >= 2 || parts.first == "random" || parts.first == "hash" else { return nil }
        let pinned: TransitKey?
        switch (request.operation, parts.first ?? "") {
        case (.update, "encrypt"), (.update, "decrypt"), (.update, "rewrap"), (.update, "sign"), (.update, "verify"),
            (.update, "hmac"):
            // A missing key is created by encrypt (a write), or read from storage: served off the event loop.
            guard let key = store.cachedKey(parts[1]) else { return nil }
            // RSA's private-key operations take milliseconds: served off the event loop too.
            if key.type.isRSA, ["sign", "decrypt", "rewrap"].contains(parts[0]) { return nil }
            pinned = key
        case (.update, "datakey"):
            guard parts.count == 3, let key = store.cachedKey(parts[2]) else { return nil }
            pinned = key
        case (.update, "random"), (.update, "hash"): pinned = nil
        case (.read, "keys"):
            guard parts.count == 2, let key = store.cachedKey(parts[1]) else { return nil }
            pinned = key
        default: return nil
        }
        return try serve(request, parts, pinned: pinned)
    }

    /// `pinned`: on the event loop, the one key the request may use (from the cache); nil: keys come from the store.
    private func serve(
        _ request: VaultRequest, _ parts: [String], pinned: TransitKey?
    ) throws(VaultError)
        -> VaultReply
    {
        try Self.answering { try route(request, parts, pinned: pinned) }
    }

    /// Runs transit work with its errors as Vault's: a `TransitError` keeps its status and message.
    static func answering(_ work: () throws -> VaultReply) throws(VaultError) -> VaultReply {
        do {
            return try work()
        } catch let error as TransitError {
            throw VaultError(status: HTTPResponse.Status(code: error.status), messages: [error.message])
        } catch let error as VaultError {
            throw error
        } catch {
            throw .storage(error, detail: "\(error)")
        }
    }

    static func segments(_ path: String) -> [String] { path.split(separator: "/").map(String.init) }

    private func route(_ request: VaultRequest, _ parts: [String], pinned: TransitKey?) throws -> VaultReply {
        let body = request.body
        switch (request.operation, parts.first ?? "", parts.count) {
        case (.read, "cache-config", 1):
            // The size bounds the mount's cache of decoded keys (0: `TransitStore.defaultCacheLimit`).
            return .data(["size": .int(try store.settings().cacheSize)])
        case (.update, "cache-config", 1):
            guard let size = try body.int("size") else { throw VaultError.badRequest("missing size") }
            guard size == 0 || size >= 10 else {
                throw VaultError.badRequest("size must be 0 or a value greater or equal to 10")
            }
            try store.updateSettings { $0.cacheSize = size }
            return .data(["size": .int(size)])
        case (.read, "config", 2) where parts[1] == "keys":
            return .data(["disable_upsert": .bool(try store.settings().disableUpsert)])
        case (.update, "config", 2) where parts[1] == "keys":
            // With `disable_upsert`, encrypting with a missing key is refused instead of creating it.
            let disable = try body.bool("disable_upsert") ?? false
            try store.updateSettings { $0.disableUpsert = disable }
            return .data(["disable_upsert": .bool(disable)])
        case (.list, "keys", 1):
            let names = try store.names()
            guard !names.isEmpty else { throw VaultError.notFound }
            return .data(["keys": .array(names.map(JSONValue.string))])
        case (.update, "keys", 2):
            let options = try Self.createOptions(body)
            return try store.modify(parts[1]) { existing in
                if let existing { return (.keep, try Self.read(existing)) }
                let key = try TransitKey.create(name: parts[1], options: options)
                return (.put(key), try Self.read(key))
            }
        case (.read, "keys", 2):
            guard let key = try lookup(parts[1], pinned) else { throw VaultError.notFound }
            return try Self.read(key)
        case (.delete, "keys", 2):
            return try store.modify(parts[1]) { key in
                guard let key else {
                    throw TransitError.badRequest("error deleting policy \(parts[1]): could not delete key; not found")
                }
                try key.checkDeletable()
                return (.delete, .noContent)
            }
        case (.update, "keys", 3):
            return try keyAction(parts[1], action: parts[2], body: body)
        case (.update, "encrypt", 2): return try encrypt(parts[1], body: body, request: request, pinned: pinned)
        case (.update, "decrypt", 2): return try decrypt(parts[1], body: body, pinned: pinned)
        case (.update, "rewrap", 2): return try rewrap(parts[1], body: body, pinned: pinned)
        case (.update, "datakey", 3):
            let key = try existing(parts[2], pinned, missing: "encryption key not found")
            let kind = try TransitKey.DataKeyKind(pathWord: parts[1])
            let (plaintext, result) = try key.dataKey(
                kind: kind, bits: Int(try body.int("bits") ?? 256), context: try Self.bytes(body, "context"),
                associatedData: try Self.bytes(body, "associated_data"), nonce: nil,
                keyVersion: Int(try body.int("key_version") ?? 0))
            var data = try Self.object(result)
            if let plaintext { data["plaintext"] = .string(TransitBase64.encode(plaintext)) }
            return .data(data)
        case (.update, "random", _): return try Self.random(body, pathWords: parts.dropFirst())
        case (.update, "hash", _): return try Self.hash(body, pathAlgorithm: parts.count > 1 ? parts[1] : nil)
        case (.update, "hmac", 2), (.update, "hmac", 3):
            let key = try existing(parts[1], pinned, missing: "encryption key not found")
            let algorithm = try TransitHashAlgorithm(
                name: parts.count > 2 ? parts[2] : try body.string("algorithm") ?? "")
            let version = Int(try body.int("key_version") ?? 0)
            return try Self.batch(body, single: "input", failedItemsAre400: false) {
                item throws -> [String: JSONValue] in
                try Self.object(
                    key.hmac(try Self.bytes(item, "input") ?? [], algorithm: algorithm, keyVersion: version))
            }
        case (.update, "sign", 2), (.update, "sign", 3):
            let key = try existing(parts[1], pinned, missing: "signing key not found")
            let version = Int(try body.int("key_version") ?? 0)
            return try Self.batch(body, single: "input", failedItemsAre400: false) {
                item throws -> [String: JSONValue] in
                var options = try Self.signOptions(body, hashPath: parts.count > 2 ? parts[2] : nil)
                options.context = try Self.bytes(item, "context") ?? options.context
                return Self.members(
                    try key.sign(try Self.bytes(item, "input") ?? [], options: options, keyVersion: version))
            }
        case (.update, "verify", 2), (.update, "verify", 3):
            let key = try existing(parts[1], pinned, missing: "signature verification failed")
            let hashPath = parts.count > 2 ? parts[2] : nil
            // One item or `batch_input`; a failed item is reported in its result, with status 200 (as Vault).
            return try Self.batch(body, single: "input", failedItemsAre400: false) {
                item throws -> [String: JSONValue] in
                let input = try Self.bytes(item, "input") ?? []
                // With both, the signature is checked and `hmac` ignored, as OpenBao does.
                if try item.string("signature") == nil, let hmac = try item.string("hmac") {
                    // The algorithm: the path's, else `hash_algorithm`, else the older `algorithm`.
                    let algorithm = try TransitHashAlgorithm(
                        name: hashPath ?? (try body.string("hash_algorithm") ?? body.string("algorithm") ?? ""))
                    return ["valid": .bool(try key.verifyHMAC(input, hmac: hmac, algorithm: algorithm))]
                }
                guard let signature = try item.string("signature") else {
                    throw TransitError.badRequest("missing signature to validate")
                }
                var options = try Self.signOptions(body, hashPath: hashPath)
                options.context = try Self.bytes(item, "context") ?? options.context
                return ["valid": .bool(try key.verify(input, signature: signature, options: options))]
            }
        case (.read, "export", 3), (.read, "export", 4):
            guard let key = try lookup(parts[2], pinned) else { throw VaultError.notFound }
            let kind = try TransitKey.ExportKind(pathWord: parts[1])
            return .data(try Self.object(key.export(kind, version: parts.count > 3 ? parts[3] : nil)))
        case (.read, "backup", 2):
            let key = try existing(parts[1], pinned, missing: "no such key")
            return .data(["backup": .string(try key.backup())])
        case (.update, "restore", _):
            guard let backup = try body.string("backup") else {
                throw TransitError.badRequest("'backup' must be supplied")
            }
            let key = try TransitKey.restore(backup, name: parts.count > 1 ? parts[1] : nil)
            return try store.modify(key.name) { existing in
                if existing != nil, try body.bool("force") != true {
                    throw TransitError.badRequest("key \"\(key.name)\" already exists")
                }
                return (.put(key), .noContent)
            }
        case (.read, "wrapping_key", 1):
            return .data(["public_key": .string(try store.wrappingKey().publicKeyPEM)])
        default:
            // A path that exists, asked with a verb it does not take (GET on encrypt): 405, as Vault.
            if Self.updateOnly.contains(parts.first ?? ""), request.operation != .update {
                throw VaultError.unsupportedOperation(parts.joined(separator: "/"))
            }
            throw VaultError.unsupportedPath(parts.joined(separator: "/"))
        }
    }

    /// Operations served only by POST/PUT.
    static let updateOnly: Set<String> = [
        "encrypt", "decrypt", "rewrap", "datakey", "hmac", "sign", "verify", "random", "hash", "restore",
    ]

    // MARK: Keys

    /// The writes below `keys/:name/`: each reads the key, changes it and writes it back under the key's lock
    /// (`TransitStore.modify`), so no concurrent change of the same key is lost.
    private func keyAction(_ name: String, action: String, body: JSONValue) throws -> VaultReply {
        switch action {
        case "config":
            return try store.modify(name) { current in
                guard var key = current else { throw TransitError.badRequest("no such key") }
                _ = try key.updateConfig(
                    TransitKey.ConfigUpdate(
                        minDecryptionVersion: (try body.int("min_decryption_version")).map(Int.init),
                        minEncryptionVersion: (try body.int("min_encryption_version")).map(Int.init),
                        deletionAllowed: try body.bool("deletion_allowed"), exportable: try body.bool("exportable"),
                        allowPlaintextBackup: try body.bool("allow_plaintext_backup"),
                        autoRotatePeriod: (try body.duration("auto_rotate_period")).map(Int.init)))
                return (key == current ? .keep : .put(key), try Self.read(key))
            }
        case "rotate":
            return try store.modify(name) { current in
                guard var key = current else { throw TransitError.badRequest("no such key") }
                try key.rotate()
                return (.put(key), try Self.read(key))
            }
        case "trim":
            return try store.modify(name) { current in
                guard var key = current else { throw TransitError.badRequest("no such key") }
                guard let minimum = try body.int("min_available_version") else {
                    throw TransitError.badRequest("missing min_available_version")
                }
                try key.trim(minAvailableVersion: Int(minimum))
                return (key == current ? .keep : .put(key), try Self.read(key))
            }
        case "import":
            return try store.modify(name) { current in
                guard current == nil else {
                    throw TransitError.badRequest(
                        "the import path cannot be used with an existing key; use import-version to rotate an existing imported key"
                    )
                }
                guard let ciphertext = try body.string("ciphertext") else {
                    throw TransitError.badRequest("missing ciphertext")
                }
                let key = try TransitKey.importKey(
                    name: name, ciphertext: ciphertext, hashFunction: try body.string("hash_function") ?? "SHA256",
                    wrappingKey: try store.wrappingKey(),
                    options: TransitKey.ImportOptions(
                        type: try TransitKeyType(name: try body.string("type") ?? "aes256-gcm96"),
                        derived: try body.bool("derived") ?? false, exportable: try body.bool("exportable") ?? false,
                        allowPlaintextBackup: try body.bool("allow_plaintext_backup") ?? false,
                        autoRotatePeriod: Int(try body.duration("auto_rotate_period") ?? 0),
                        allowRotation: try body.bool("allow_rotation") ?? false))
                return (.put(key), .noContent)
            }
        case "import_version":
            return try store.modify(name) { current in
                guard var key = current else { throw TransitError.badRequest("no such key") }
                guard let ciphertext = try body.string("ciphertext") else {
                    throw TransitError.badRequest("missing ciphertext")
                }
                try key.importVersion(
                    ciphertext: ciphertext, hashFunction: try body.string("hash_function") ?? "SHA256",
                    wrappingKey: try store.wrappingKey())
                return (.put(key), .noContent)
            }
        default:
            throw VaultError.unsupportedPath("keys/\(name)/\(action)")
        }
    }

    /// The key named `name`: on the event loop the pinned key (`handleOnLoop` pins the key the path names), else
    /// from the store.
    private func lookup(_ name: String, _ pinned: TransitKey?) throws -> TransitKey? {
        guard let pinned else { return try store.key(name) }
        guard pinned.name == name else {
            throw VaultError.internalError("transit served '\(name)' on the event loop with the key '\(pinned.name)'")
        }
        return pinned
    }

    private func existing(_ name: String, _ pinned: TransitKey?, missing: String) throws -> TransitKey {
        guard let key = try lookup(name, pinned) else { throw TransitError.badRequest(missing) }
        return key
    }

    // MARK: Encryption

    /// A `nonce` in the body is ignored here, in rewrap and in datakey, as OpenBao ignores it: it only ever served
    /// Vault's legacy convergent keys, and vhsmd's convergent keys derive their nonce from the plaintext.
    private func encrypt(
        _ name: String, body: JSONValue, request: VaultRequest, pinned: TransitKey?
    ) throws
        -> VaultReply
    {
        let encryptionKey: TransitKey
        if let found = try lookup(name, pinned) {
            encryptionKey = found
        } else {
            // Upsert, under the key's lock: of concurrent first encryptions with a missing key, one creates it and
            // the others encrypt with the key it created.
            encryptionKey = try store.modify(name) { existing in
                if let existing { return (.keep, existing) }
                guard try !store.settings().disableUpsert else {
                    throw TransitError.badRequest("encryption key not found")
                }
                // A missing key is created, which needs `create` on this path (`update` is not enough).
                if let acl = request.acl, !acl.allows(.create, path: request.path) { throw VaultCore.aclDenied }
                let derived =
                    body["context"] != nil || Self.batchItems(body)?.contains { $0["context"] != nil } == true
                var options = TransitKey.Options(
                    type: try TransitKeyType(name: try body.string("type") ?? "aes256-gcm96"), derived: derived)
                options.convergentEncryption = try body.bool("convergent_encryption") ?? false
                let created = try TransitKey.create(name: name, options: options)
                return (.put(created), created)
            }
        }
        let version = Int(try body.int("key_version") ?? 0)
        return try Self.batch(body, single: "plaintext") { item throws -> [String: JSONValue] in
            guard let plaintext = try item.string("plaintext") else {
                throw TransitError.badRequest("missing plaintext to encrypt")
            }
            let result = try encryptionKey.encrypt(
                try TransitBase64.decode(plaintext), context: try Self.bytes(item, "context"),
                associatedData: try Self.bytes(item, "associated_data"), nonce: nil,
                keyVersion: Int(try item.int("key_version") ?? Int64(version)))
            return ["ciphertext": .string(result.ciphertext), "key_version": .int(Int64(result.keyVersion))]
        }
    }

    private func decrypt(_ name: String, body: JSONValue, pinned: TransitKey?) throws -> VaultReply {
        let key = try existing(name, pinned, missing: "encryption key not found")
        return try Self.batch(body, single: "ciphertext") { item throws -> [String: JSONValue] in
            guard let ciphertext = try item.string("ciphertext") else {
                throw TransitError.badRequest("missing ciphertext to decrypt")
            }
            let plaintext = try key.decrypt(
                ciphertext, context: try Self.bytes(item, "context"),
                associatedData: try Self.bytes(item, "associated_data"),
                nonce: try Self.bytes(item, "nonce"))
            return ["plaintext": .string(TransitBase64.encode(plaintext))]
        }
    }

    private func rewrap(_ name: String, body: JSONValue, pinned: TransitKey?) throws -> VaultReply {
        let key = try existing(name, pinned, missing: "encryption key not found")
        let version = Int(try body.int("key_version") ?? 0)
        return try Self.batch(body, single: "ciphertext") { item throws -> [String: JSONValue] in
            guard let ciphertext = try item.string("ciphertext") else {
                throw TransitError.badRequest("missing ciphertext to decrypt")
            }
            return try Self.object(
                key.rewrap(
                    ciphertext, context: try Self.bytes(item, "context"),
                    associatedData: try Self.bytes(item, "associated_data"), nonce: nil,
                    keyVersion: Int(try item.int("key_version") ?? Int64(version))))
        }
    }

    // MARK: Helpers

    /// `random[/source][/bytes][/format]`, here and in `sys/tools`: the path's words win over the body's fields.
    static func random(_ body: JSONValue, pathWords: some Sequence<String>) throws -> VaultReply {
        var count = Int(try body.int("bytes") ?? 32)
        var format = try body.string("format") ?? "base64"
        for word in pathWords {
            if let number = Int(word) { count = number } else if word == "hex" || word == "base64" { format = word }
        }
        return .data(["random_bytes": .string(try TransitUtilities.randomBytes(count: count, format: format))])
    }

    /// `hash[/algorithm]`, here and in `sys/tools`.
    static func hash(_ body: JSONValue, pathAlgorithm: String?) throws -> VaultReply {
        let algorithm = try pathAlgorithm ?? body.string("algorithm") ?? "sha2-256"
        let sum = try TransitUtilities.hash(
            try bytes(body, "input") ?? [], algorithm: algorithm, format: try body.string("format") ?? "hex")
        return .data(["sum": .string(sum)])
    }

    static func batchItems(_ body: JSONValue) -> [JSONValue]? {
        guard case .array(let items)? = body["batch_input"] else { return nil }
        return items
    }

    /// Runs `operation` on the body, or on every `batch_input` item: results keep their order and `reference`;
    /// any failed item makes the answer a 400 with every result in `data.batch_results` (Vault's partial failure).
    /// Sign, verify and HMAC answer 200 with the failed items' errors in their results (`failedItemsAre400: false`);
    /// the other batch operations answer 400. An empty `batch_input` is refused.
    static func batch(
        _ body: JSONValue, single: String, failedItemsAre400: Bool = true,
        _ operation: (JSONValue) throws -> [String: JSONValue]
    ) throws
        -> VaultReply
    {
        guard let items = batchItems(body) else { return .data(try operation(body)) }
        guard !items.isEmpty else { throw TransitError.badRequest("missing batch input to process") }
        var results: [JSONValue] = []
        var failed = false
        for item in items {
            var result: [String: JSONValue]
            do { result = try operation(item) } catch let error as TransitError {
                failed = true
                result = ["error": .string(error.message)]
            } catch let error as VaultError {
                failed = true
                result = ["error": .string(error.messages.first ?? "")]
            }
            result["reference"] = .string(try item.string("reference") ?? "")
            results.append(.object(result))
        }
        let data: JSONValue = .object(["batch_results": .array(results)])
        if failed, !failedItemsAre400 { return VaultReply(data: data) }
        if failed, try body.int("partial_failure_response_code") == nil {
            throw VaultError(status: .badRequest, messages: [], data: data)
        }
        if failed, let code = try body.int("partial_failure_response_code") {
            // Vault takes 1 to 599 and answers 400 with a warning otherwise; vhsmd takes final codes only (200-599).
            guard (200...599).contains(code) else {
                return VaultReply(
                    status: .badRequest, data: data,
                    topLevel: [
                        "warnings": .array([
                            .string(
                                "invalid HTTP response code override from partial_failure_response_code, reverting "
                                    + "to 400")
                        ])
                    ])
            }
            return VaultReply(status: HTTPResponse.Status(code: Int(code)), data: data)
        }
        return VaultReply(data: data)
    }

    static func bytes(_ body: JSONValue, _ key: String) throws -> [UInt8]? {
        guard let text = try body.string(key), !text.isEmpty else { return nil }
        return try TransitBase64.decode(text)
    }

    static func signOptions(_ body: JSONValue, hashPath: String?) throws -> TransitKey.SignOptions {
        var options = TransitKey.SignOptions()
        options.hashAlgorithm = try TransitHashAlgorithm(name: hashPath ?? (try body.string("hash_algorithm") ?? ""))
        options.prehashed = try body.bool("prehashed") ?? false
        if let algorithm = try body.string("signature_algorithm"), !algorithm.isEmpty {
            guard let parsed = TransitKey.SignatureAlgorithm(rawValue: algorithm) else {
                throw TransitError.badRequest("unsupported signature algorithm \(algorithm)")
            }
            options.signatureAlgorithm = parsed
        }
        if let marshaling = try body.string("marshaling_algorithm"), !marshaling.isEmpty {
            options.marshaling = try TransitKey.Marshaling(name: marshaling)
        }
        if let salt = try body.string("salt_length") { options.saltLength = try RSASignaturePadding.saltLength(salt) }
        options.context = try bytes(body, "context")
        return options
    }

    static func createOptions(_ body: JSONValue) throws -> TransitKey.Options {
        var options = TransitKey.Options(type: try TransitKeyType(name: try body.string("type") ?? "aes256-gcm96"))
        options.derived = try body.bool("derived") ?? false
        options.convergentEncryption = try body.bool("convergent_encryption") ?? false
        options.exportable = try body.bool("exportable") ?? false
        options.allowPlaintextBackup = try body.bool("allow_plaintext_backup") ?? false
        options.autoRotatePeriod = Int(try body.duration("auto_rotate_period") ?? 0)
        options.keySize = (try body.int("key_size")).map(Int.init)
        return options
    }

    /// A signature as `object` would give it, without the JSON round trip (sign is a hot path).
    static func members(_ result: TransitKey.SignResult) -> [String: JSONValue] {
        var members: [String: JSONValue] = [
            "signature": .string(result.signature), "key_version": .int(Int64(result.keyVersion)),
        ]
        if let publicKey = result.publicKey { members["public_key"] = .string(publicKey) }
        return members
    }

    static func read(_ key: TransitKey) throws -> VaultReply { .data(try object(key.readResponse())) }

    /// An engine result as the JSON object Vault returns.
    static func object(_ value: some Encodable) throws -> [String: JSONValue] {
        let bytes = Array(try JSONEncoder().encode(value))
        guard case .object(let members) = try JSONValue.parse(bytes) else { return [:] }
        return members
    }
}
