import Crypto
import FoundationEssentials
import JWTKit
import SNP
import Synchronization

/// `identity/oidc/`: identity tokens, Vault's paths and shapes. A JWT signed with a named key states who the
/// calling token is; a relying party verifies it with the unauthenticated discovery document and JWKS alone.
///
/// - `config` (read, write): `issuer` (scheme, host, optional port; "" = vhsmd's `api_addr`). The tokens' `iss`
///   is that address + `/v1/identity/oidc`, as in Vault.
/// - `key/:name` (read, write, delete), LIST `key`, `key/:name/rotate` (write): the signing keys, in the barrier
///   at `identity/oidc/key/<name>` like transit keys; no answer ever holds private material.
/// - `role/:name` (read, write, delete), LIST `role`: a key, a `ttl` and a `client_id` (the tokens' `aud`).
/// - `token/:role` (read): a signed token for the caller.
/// - `.well-known/openid-configuration` and `.well-known/keys` (read, no token): served from serialised documents
///   cached until the published set changes (a rotation is due or a retired key expires), so that a caller
///   without a token never makes vhsmd sign, parse a key or read storage more than once per change.
///
/// Keys rotate lazily: a key whose `rotation_period` is over is rotated by the first request that uses it (a
/// token, the JWKS) and by the periodic sweep of `IdentityKeyRotation`; retired public keys are pruned the same
/// way once their `verification_ttl` is over.
final class IdentityOIDC: Backend {
    /// The paths below `/v1/` anyone may read without a token.
    static let unauthenticated: Set<String> = [
        "identity/oidc/.well-known/openid-configuration", "identity/oidc/.well-known/keys",
    ]
    /// The signing algorithms, in Vault's order (the discovery document's `id_token_signing_alg_values_supported`).
    static let algorithms = OIDCAlgorithm.allCases.map(\.rawValue)

    /// What the backend needs beyond its storage: the mounts (to tell an attested login token by its auth
    /// mount) and vhsmd's address (the default issuer).
    struct Context: Sendable {
        let mounts: MountTable
        let apiAddress: String
    }

    /// The serialised unauthenticated documents and when they stop being current.
    private struct Documents {
        var issuer: String
        var discovery: [UInt8]
        var jwks: [UInt8]
        /// Unix seconds: the first rotation or expiry that changes the JWKS.
        var validUntil: Int64
        /// The shortest rotation period or verification TTL of the keys (nil: no keys): how long a relying party
        /// may cache the JWKS at most.
        var maxAge: Int64?

        /// The JWKS answer: cacheable until it changes, at most `maxAge` (Vault's bound), not at all without keys.
        func keysReply(now: Int64) -> VaultReply {
            IdentityOIDC.raw(jwks, cacheFor: maxAge.map { max(0, min($0, validUntil - now)) })
        }

        /// The discovery document's answer: cacheable for an hour, as Vault's.
        var discoveryReply: VaultReply { IdentityOIDC.raw(discovery, cacheFor: 3600) }
    }

    private let storage: EngineStorage
    /// Held across every read-modify-write of a key, a role or the config (Vault's oidcLock).
    private let writes = Mutex(())
    private let documents = Mutex<Documents?>(nil)
    /// jwt-kit signers by `kid` of the signing keys in use; emptied at every key change.
    private let signers = Mutex<[String: JWTKeyCollection]>([:])
    /// The records as decoded from the barrier, so that a token needs no storage read. Filled and changed only
    /// under `writes`, after the storage write, so a fill never races a change; read without it.
    private let records = Mutex(Records())

    private struct Records {
        var config: Config?
        var keys: [String: OIDCNamedKey] = [:]
        var roles: [String: OIDCRole] = [:]
    }
    /// Now, in Unix seconds (tests move it).
    let clock: IdentityClock

    init(storage: EngineStorage, clock: IdentityClock = IdentityClock()) {
        self.storage = storage
        self.clock = clock
    }

    // MARK: Backend

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        throw .internalError("identity/ is served with its context (VaultCore.serve)")
    }

    var hasExistenceCheck: Bool { true }

    /// Vault's existence check: writing a key or a role that does not exist needs `create`, changing one `update`.
    func existence(of path: String) async -> Bool? {
        for kind in ["key", "role"] {
            let prefix = "oidc/\(kind)/"
            guard path.hasPrefix(prefix) else { continue }
            let name = String(path.dropFirst(prefix.count))
            guard !name.contains("/") else { return nil }
            return (try? storage.children("\(kind)/").contains(name)) ?? false
        }
        return nil
    }

    /// The cached discovery document or JWKS while it is current; nil (served by the task) otherwise.
    func handleOnLoop(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply? {
        guard request.operation == .read, Self.unauthenticated.contains("identity/" + path) else { return nil }
        let now = clock.now
        guard let cached = documents.withLock({ $0 }), now < cached.validUntil else { return nil }
        return path.hasSuffix("keys") ? cached.keysReply(now: now) : cached.discoveryReply
    }

    // MARK: Requests

    func serve(_ request: VaultRequest, path: String, context: Context) async throws(VaultError) -> VaultReply {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "oidc", parts.count >= 2 else { throw .unsupportedPath(request.path) }
        let rest = Array(parts.dropFirst())
        let item = rest.count >= 2 ? rest[1] : ""
        let body = Self.fields(request.body)
        switch (request.operation, rest[0], rest.count) {
        case (.read, "config", 1):
            return .data(["issuer": .string(try config().issuer)])
        case (.update, "config", 1):
            return try writeConfig(body)
        case (.list, "key", 1):
            return try list("key/")
        case (.read, "key", 2):
            guard let key = try key(try Self.name(item)) else { throw .notFound }
            return .data(key.answer)
        case (.update, "key", 2):
            try writeKey(try Self.name(item), body)
            return .noContent
        case (.delete, "key", 2):
            try deleteKey(try Self.name(item))
            return .noContent
        case (.update, "key", 3) where rest[2] == "rotate":
            try rotateKey(try Self.name(item), body)
            return .noContent
        case (.list, "role", 1):
            return try list("role/")
        case (.read, "role", 2):
            guard let role = try role(try Self.name(item)) else { throw .notFound }
            return .data(role.answer)
        case (.update, "role", 2):
            try writeRole(try Self.name(item), body)
            return .noContent
        case (.delete, "role", 2):
            let name = try Self.name(item)
            try writes.withLock { (_) throws(VaultError) in
                try storage.remove("role/" + name)
                records.withLock { _ = $0.roles.removeValue(forKey: name) }
            }
            return .noContent
        case (.read, "token", 2):
            return try await token(role: try Self.name(item), request: request, context: context)
        case (.read, ".well-known", 2) where item == "openid-configuration":
            return try currentDocuments(context).discoveryReply
        case (.read, ".well-known", 2) where item == "keys":
            return try currentDocuments(context).keysReply(now: clock.now)
        default:
            throw .unsupportedPath(request.path)
        }
    }

    /// A key or role name: Vault's `GenericNameRegex` (letters, digits, '_', '-' and '.', not starting or ending with
    /// '-' or '.').
    static func name(_ text: String) throws(VaultError) -> String {
        let allowed = text.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0))
        }
        guard !text.isEmpty, text.count <= 128, allowed, let first = text.first, let last = text.last,
            !"-.".contains(first), !"-.".contains(last)
        else {
            throw .badRequest(
                "the name '\(text)' is not valid: use 1 to 128 letters, digits, '_', '-' and '.', starting and ending "
                    + "with a letter, digit or '_'")
        }
        return text
    }

    /// A write's fields as Vault's framework reads them: a JSON null is a field not given, and `name` is the path's
    /// (hvac sends both).
    static func fields(_ body: JSONValue) -> JSONValue {
        guard case .object(let members) = body else { return body }
        return .object(members.filter { $0.key != "name" && $0.value != .null })
    }

    private func list(_ folder: String) throws(VaultError) -> VaultReply {
        let names = try storage.children(folder).filter { !$0.hasSuffix("/") }.sorted()
        guard !names.isEmpty else { throw .notFound }
        return .data(["keys": .array(names.map(JSONValue.string))])
    }

    private static func raw(_ bytes: [UInt8], cacheFor seconds: Int64?) -> VaultReply {
        VaultReply(
            raw: VaultReply.RawBody(
                contentType: "application/json", bytes: bytes, cacheControl: seconds.map { "max-age=\($0)" }))
    }

    // MARK: Config

    struct Config: Codable, Sendable {
        static let record = "config"
        var issuer = ""
    }

    /// The config, from memory once read (never called under `writes`).
    private func config() throws(VaultError) -> Config {
        if let config = records.withLock({ $0.config }) { return config }
        return try writes.withLock { (_) throws(VaultError) -> Config in
            if let config = records.withLock({ $0.config }) { return config }
            let config = try storage.read(Config.self, Config.record) ?? Config()
            records.withLock { $0.config = config }
            return config
        }
    }

    private func writeConfig(_ body: JSONValue) throws(VaultError) -> VaultReply {
        try SevSNPAuthConfig.refuseUnknown(body, ["issuer"], what: "identity/oidc/config")
        guard let issuer = try body.string("issuer") else { return .noContent }
        if !issuer.isEmpty, !Self.isOrigin(issuer) {
            throw .badRequest(
                "invalid issuer, which must include only a scheme, host, and optional port (e.g. "
                    + "https://example.com:8200)")
        }
        try writes.withLock { (_) throws(VaultError) in
            try storage.write(Config(issuer: issuer), Config.record)
            records.withLock { $0.config = Config(issuer: issuer) }
        }
        invalidate()
        guard !issuer.isEmpty else { return .noContent }
        return .warning(
            "If \"issuer\" is set explicitly, all tokens must be validated against that address, including those "
                + "issued by secondary clusters. Setting issuer to \"\" will restore the default behavior of using "
                + "the cluster's api_addr as the issuer.")
    }

    /// `http(s)://host[:port]` and nothing more (Vault's check of `issuer`).
    static func isOrigin(_ text: String) -> Bool {
        let scheme: String
        if text.hasPrefix("https://") {
            scheme = "https://"
        } else if text.hasPrefix("http://") {
            scheme = "http://"
        } else {
            return false
        }
        let authority = text.dropFirst(scheme.count)
        guard !authority.isEmpty else { return false }
        return !authority.contains { "/?#@ \\".contains($0) || $0.isNewline || $0.asciiValue == nil }
    }

    /// The `iss` of the tokens: the configured issuer, else vhsmd's API address, + `/v1/identity/oidc`.
    private func issuer(_ context: Context) throws(VaultError) -> String {
        let configured = try config().issuer
        return (configured.isEmpty ? context.apiAddress : configured) + "/v1/identity/oidc"
    }

    // MARK: Keys

    /// Under `writes`: the stored key `name`, from memory or from the barrier (then kept in memory).
    private func storedKey(_ name: String) throws(VaultError) -> OIDCNamedKey? {
        if let key = records.withLock({ $0.keys[name] }) { return key }
        guard let key = try storage.read(OIDCNamedKey.self, "key/" + name) else { return nil }
        records.withLock { $0.keys[name] = key }
        return key
    }

    /// Under `writes`: writes key `name` to the barrier, then to memory (the copy it replaces is zeroed).
    private func store(_ key: OIDCNamedKey, _ name: String) throws(VaultError) {
        try storage.write(key, "key/" + name)
        records.withLock { records in
            records.keys[name]?.zeroize()
            records.keys[name] = key
        }
    }

    /// The key `name` (never called under `writes`).
    private func key(_ name: String) throws(VaultError) -> OIDCNamedKey? {
        if let key = records.withLock({ $0.keys[name] }) { return key }
        return try writes.withLock { (_) throws(VaultError) in try storedKey(name) }
    }

    /// Under `writes`: the stored role `name`, from memory or from the barrier (then kept in memory).
    private func storedRole(_ name: String) throws(VaultError) -> OIDCRole? {
        if let role = records.withLock({ $0.roles[name] }) { return role }
        guard let role = try storage.read(OIDCRole.self, "role/" + name) else { return nil }
        records.withLock { $0.roles[name] = role }
        return role
    }

    /// The role `name` (never called under `writes`).
    private func role(_ name: String) throws(VaultError) -> OIDCRole? {
        if let role = records.withLock({ $0.roles[name] }) { return role }
        return try writes.withLock { (_) throws(VaultError) in try storedRole(name) }
    }

    private func writeKey(_ name: String, _ body: JSONValue) throws(VaultError) {
        try writes.withLock { (_) throws(VaultError) in
            let existing = try storedKey(name)
            var key = existing ?? OIDCNamedKey()
            try key.apply(body, now: clock.now)
            if existing != nil {
                let tooLong = try roles(using: name).filter { $0.role.ttl > key.verificationTTL }
                guard tooLong.isEmpty else {
                    throw .badRequest(
                        "unable to update key \"\(name)\" because it is currently referenced by one or more roles "
                            + "with a token ttl greater than \(key.verificationTTL) seconds")
                }
            }
            try store(key, name)
        }
        invalidate()
    }

    private func deleteKey(_ name: String) throws(VaultError) {
        guard name != Self.defaultKey else { throw .badRequest("deletion of key \"\(name)\" not allowed") }
        try writes.withLock { (_) throws(VaultError) in
            let users = try roles(using: name).map(\.name)
            guard users.isEmpty else {
                throw .badRequest(
                    "unable to delete key \"\(name)\" because it is currently referenced by these roles: "
                        + users.joined(separator: ", "))
            }
            try storage.remove("key/" + name)
            records.withLock { records in
                records.keys[name]?.zeroize()
                records.keys[name] = nil
            }
        }
        invalidate()
    }

    private func rotateKey(_ name: String, _ body: JSONValue) throws(VaultError) {
        try SevSNPAuthConfig.refuseUnknown(body, ["verification_ttl"], what: "a key rotation")
        let override = try body.duration("verification_ttl")
        if let override, override < 0 { throw .badRequest("verification_ttl cannot be negative") }
        try writes.withLock { (_) throws(VaultError) in
            guard var key = try storedKey(name) else {
                throw .badRequest("no named key found at \"\(name)\"")
            }
            try key.rotate(now: clock.now, verificationTTL: override)
            try store(key, name)
        }
        invalidate()
    }

    /// Vault's built-in key, made when a role first names it and never deleted.
    static let defaultKey = "default"

    /// Makes the `default` key if there is none, with Vault's settings for it: RS256, 24 h, 24 h, every client ID
    /// (under `writes`).
    private func makeDefaultKey() throws(VaultError) {
        guard try storedKey(Self.defaultKey) == nil else { return }
        var key = OIDCNamedKey()
        try key.apply(.object(["algorithm": .string("RS256"), "allowed_client_ids": .string("*")]), now: clock.now)
        try store(key, Self.defaultKey)
        documents.withLock { $0 = nil }
    }

    /// The roles that name key `name` (under `writes`).
    private func roles(using name: String) throws(VaultError) -> [(name: String, role: OIDCRole)] {
        var found: [(String, OIDCRole)] = []
        for roleName in try storage.children("role/").filter({ !$0.hasSuffix("/") }).sorted() {
            if let role = try storedRole(roleName), role.key == name {
                found.append((roleName, role))
            }
        }
        return found
    }

    /// Rotates `key` when its rotation is due and prunes its expired retired keys; true when it changed (the
    /// caller writes it).
    private func maintain(_ key: inout OIDCNamedKey, now: Int64) throws(VaultError) -> Bool {
        var changed = key.prune(now: now)
        if now >= key.nextRotation {
            try key.rotate(now: now)
            changed = true
        }
        return changed
    }

    /// The key `name` as it signs now: rotated first (under `writes`) when its rotation is due.
    private func signingKey(_ name: String) throws(VaultError) -> OIDCNamedKey? {
        let now = clock.now
        if let key = records.withLock({ $0.keys[name] }), now < key.nextRotation,
            !key.retired.contains(where: { $0.expireAt <= now })
        {
            return key
        }
        var changed = false
        let key = try writes.withLock { (_) throws(VaultError) -> OIDCNamedKey? in
            guard var current = try storedKey(name) else { return nil }
            if try maintain(&current, now: now) {
                try store(current, name)
                changed = true
            }
            return current
        }
        if changed { invalidate() }
        return key
    }

    /// Forgets the cached documents and signers (after any change of keys or config).
    private func invalidate() {
        documents.withLock { $0 = nil }
        signers.withLock { $0.removeAll() }
    }

    // MARK: Roles

    private func writeRole(_ name: String, _ body: JSONValue) throws(VaultError) {
        try SevSNPAuthConfig.refuseUnknown(body, OIDCRole.fields, what: "an identity token role")
        if let template = try body.string("template"), !template.isEmpty {
            throw .badRequest(
                "vhsmd does not support role templates ('template'): its identity tokens carry the fixed claims iss, "
                    + "sub, aud, iat, nbf, exp, namespace and, for an attested login, snp")
        }
        let ttl = try body.duration("ttl")
        if let ttl, ttl <= 0 { throw .badRequest("ttl must be a positive duration") }
        let clientID = try body.string("client_id")
        if let clientID, clientID.isEmpty || clientID.unicodeScalars.contains(where: { !$0.isASCII || $0.value < 0x21 })
        {
            throw .badRequest("client_id must be printable ASCII without spaces")
        }
        try writes.withLock { (_) throws(VaultError) in
            var role = try storedRole(name) ?? OIDCRole()
            if let key = try body.string("key") { role.key = key }
            guard !role.key.isEmpty else { throw .badRequest("the key parameter is required") }
            if let ttl { role.ttl = ttl }
            if role.key == Self.defaultKey { try makeDefaultKey() }
            guard let key = try storedKey(role.key) else {
                throw .badRequest("cannot find key \"\(role.key)\"")
            }
            guard role.ttl <= key.verificationTTL else {
                throw .badRequest(
                    "a role's token ttl cannot be longer than the verification_ttl of the key it references")
            }
            if let clientID { role.clientID = clientID }
            if role.clientID.isEmpty { role.clientID = OIDCRole.newClientID() }
            try storage.write(role, "role/" + name)
            records.withLock { $0.roles[name] = role }
        }
    }

    // MARK: Tokens

    /// The claims of an identity token. `snp` is the attested login's metadata.
    struct Claims: JWTPayload {
        var iss: String
        var sub: String
        var aud: String
        var iat: Int64
        var nbf: Int64
        var exp: Int64
        var namespace: String
        var snp: [String: String]?

        /// A relying party's time checks (vhsmd itself only signs).
        func verify(using algorithm: some JWTAlgorithm) async throws {
            let now = Int64(Date().timeIntervalSince1970)
            guard nbf <= now + 60, now < exp else {
                throw JWTError.claimVerificationFailure(
                    failedClaim: nil, reason: "the token is valid from \(nbf) to \(exp), not at \(now)")
            }
        }
    }

    /// `sub` and `snp` for the calling token. A token from an `auth/sev-snp` login: the hex SHA-256 of
    /// "<auth mount accessor>/<role>/<chip_id hex>" (stable across logins of one VM, per mount and role; with a
    /// VLEK, which masks the chip ID, per mount and role), and its login metadata. Any other token: its accessor.
    static func subject(_ entry: TokenStore.Entry, mounts: MountTable) -> (sub: String, snp: [String: String]?) {
        if let (mount, _) = mounts.route(entry.path), mount.backend is SevSNPAuthBackend,
            case .string(let role)? = entry.meta["role"], case .string(let chip)? = entry.meta["chip_id"]
        {
            let digest = SHA256.hash(data: Array("\(mount.accessor)/\(role)/\(chip)".utf8))
            return (Hex.encode(Array(digest)), entry.meta.compactMapValues(\.text))
        }
        return (entry.accessor, nil)
    }

    private func token(
        role name: String, request: VaultRequest, context: Context
    ) async throws(VaultError)
        -> VaultReply
    {
        guard let caller = request.caller else { throw .permissionDenied }
        guard let role = try role(name) else { throw .badRequest("role \"\(name)\" not found") }
        guard let key = try signingKey(role.key) else { throw .badRequest("key \"\(role.key)\" not found") }
        guard key.allows(clientID: role.clientID) else {
            throw .badRequest(
                "the key \"\(role.key)\" does not list the client ID of the role \"\(name)\" as an allowed client ID")
        }
        guard let pair = key.current else { throw .internalError("identity key \"\(role.key)\" has no signing key") }
        let (sub, snp) = Self.subject(caller.entry, mounts: context.mounts)
        guard !sub.isEmpty else {
            throw .badRequest("the calling token has no accessor to name it by: use a service token")
        }
        let now = clock.now
        // Never beyond the key's verification horizon: a key retired after `now` stays published for at least
        // verification_ttl.
        let ttl = min(role.ttl, key.verificationTTL)
        let claims = Claims(
            iss: try issuer(context), sub: sub, aud: role.clientID, iat: now, nbf: now, exp: now + ttl,
            namespace: "root", snp: snp)
        let signer = try await signer(pair, algorithm: key.algorithm)
        let jwt: String
        do { jwt = try await signer.sign(claims, kid: JWKIdentifier(string: pair.kid)) } catch {
            throw .internalError("signing an identity token with key \"\(role.key)\" failed: \(error)")
        }
        return .data(["client_id": .string(role.clientID), "token": .string(jwt), "ttl": .int(ttl)])
    }

    /// The cached signer of `pair`, made on first use.
    private func signer(_ pair: OIDCKeyPair, algorithm: OIDCAlgorithm) async throws(VaultError) -> JWTKeyCollection {
        if let cached = signers.withLock({ $0[pair.kid] }) { return cached }
        let made = try await pair.signer(algorithm)
        signers.withLock { $0[pair.kid] = made }
        return made
    }

    // MARK: Discovery

    /// The documents, rebuilt when none are cached, the issuer changed or the published set is due to change
    /// (then rotating due keys and pruning expired ones first).
    private func currentDocuments(_ context: Context) throws(VaultError) -> Documents {
        let issuer = try issuer(context)
        let now = clock.now
        if let cached = documents.withLock({ $0 }), cached.issuer == issuer, now < cached.validUntil { return cached }
        return try writes.withLock { (_) throws(VaultError) -> Documents in
            // Another request may have rebuilt them while this one waited.
            if let cached = documents.withLock({ $0 }), cached.issuer == issuer, now < cached.validUntil {
                return cached
            }
            var published: [JSONValue] = []
            var validUntil = Int64.max
            var maxAge: Int64?
            var maintained = false
            for name in try storage.children("key/").filter({ !$0.hasSuffix("/") }).sorted() {
                guard var key = try storedKey(name) else { continue }
                if try maintain(&key, now: now) {
                    try store(key, name)
                    maintained = true
                }
                for jwk in try key.publishedJWKs(now: now) { published.append(try Self.published(jwk)) }
                validUntil = min(validUntil, key.nextChange)
                maxAge = min(maxAge ?? .max, key.rotationPeriod, key.verificationTTL)
            }
            if maintained { signers.withLock { $0.removeAll() } }
            let discovery: JSONValue = .object([
                "issuer": .string(issuer), "jwks_uri": .string(issuer + "/.well-known/keys"),
                "response_types_supported": .array([.string("id_token")]),
                "subject_types_supported": .array([.string("public")]),
                "id_token_signing_alg_values_supported": .array(Self.algorithms.map(JSONValue.string)),
            ])
            let made = Documents(
                issuer: issuer, discovery: discovery.serialized,
                jwks: JSONValue.object(["keys": .array(published)]).serialized, validUntil: validUntil,
                maxAge: maxAge)
            documents.withLock { $0 = made }
            return made
        }
    }

    /// A JWK as the JWKS publishes it: jwt-kit's encoding and `"use": "sig"`.
    private static func published(_ jwk: JWK) throws(VaultError) -> JSONValue {
        let bytes: [UInt8]
        do { bytes = Array(try JSONEncoder().encode(jwk)) } catch {
            throw .internalError("cannot encode a public JWK: \(error)")
        }
        guard case .object(var members) = try JSONValue.parse(bytes) else {
            throw .internalError("a public JWK did not encode as a JSON object")
        }
        members["use"] = .string("sig")
        return .object(members)
    }

    // MARK: Periodic maintenance

    /// Rotates every key whose rotation is due and prunes expired retired keys (`IdentityKeyRotation`); returns
    /// the names of the keys it rotated.
    @discardableResult
    func sweep() throws(VaultError) -> [String] {
        let now = clock.now
        var rotated: [String] = []
        try writes.withLock { (_) throws(VaultError) in
            for name in try storage.children("key/").filter({ !$0.hasSuffix("/") }).sorted() {
                guard var key = try storedKey(name) else { continue }
                let due = now >= key.nextRotation
                if try maintain(&key, now: now) {
                    try store(key, name)
                    if due { rotated.append(name) }
                }
            }
        }
        if !rotated.isEmpty || documents.withLock({ $0.map { now >= $0.validUntil } ?? false }) { invalidate() }
        return rotated
    }
}

/// Unix seconds for identity tokens, with an offset tests move.
final class IdentityClock: Sendable {
    private let offset = Atomic<Int64>(0)

    var now: Int64 { Int64(Date().timeIntervalSince1970) + offset.load(ordering: .relaxed) }

    /// Moves the clock forward by `seconds` (tests).
    func advance(_ seconds: Int64) { offset.wrappingAdd(seconds, ordering: .relaxed) }
}

/// vhsmd's address as clients reach it (Vault's `api_addr`): the default issuer of identity tokens. The
/// configuration's `api_addr` when given, else the listener's URL once it is bound (its real port).
final class APIAddress: Sendable {
    private let configured: String?
    private let listening = Mutex<String?>(nil)

    init(configured: String? = nil) {
        self.configured = configured.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// The listener's URL (`scheme://host:port`), recorded when the server is bound.
    func bound(_ url: String) { listening.withLock { $0 = url } }

    /// The address, "" while none is known.
    var current: String { configured ?? listening.withLock { $0 } ?? "" }
}
