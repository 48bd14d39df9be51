import FoundationEssentials

/// `export/:type/:name[/:version]`, and `backup` / `restore` of whole key records.
extension TransitKey {
    /// The `:type` path word of `export`.
    enum ExportKind: String, Sendable {
        case encryptionKey = "encryption-key"
        case signingKey = "signing-key"
        case hmacKey = "hmac-key"
        case publicKey = "public-key"

        init(pathWord: String) throws(TransitError) {
            guard let kind = ExportKind(rawValue: pathWord) else { throw .badRequest("invalid export type") }
            self = kind
        }
    }

    /// `{"name", "type", "keys": {"<version>": material}}`.
    struct ExportResult: Encodable, Sendable, Equatable {
        var name: String
        var type: String
        var keys: [String: String]
    }

    /// Exports key material as Vault formats it: base64 raw bytes for symmetric and HMAC keys, base64 of Go's
    /// 64-byte Ed25519 private key, SEC 1 PEM for ECDSA, PKCS#1 PEM for RSA, and for `public-key` the key's
    /// read-format public key. `version` is nil (all listed versions), `latest`, or a number.
    func export(_ kind: ExportKind, version: String? = nil) throws(TransitError) -> ExportResult {
        if kind != .publicKey, !config.exportable { throw .notExportable }
        switch kind {
        case .encryptionKey where !type.supportsEncryption:
            throw .badRequest("encryption not supported for the key")
        case .signingKey where !type.supportsSigning:
            throw .badRequest("signing not supported for the key")
        case .publicKey where !type.isAsymmetric:
            throw .badRequest("public key not available for key type \(type.rawValue)")
        default: break
        }

        let selected: [TransitKeyVersion]
        switch version {
        case nil, "":
            selected = listedVersions
        case "latest":
            selected = [try self.version(config.latestVersion)]
        case let text?:
            guard let number = Int(text) else { throw .badRequest("version must be a number") }
            guard number >= config.minDecryptionVersion else {
                throw .badRequest("version for export is below minimum decryption version")
            }
            guard let found = versions.first(where: { $0.version == number }) else {
                throw .badRequest("version does not exist or cannot be found")
            }
            selected = [found]
        }

        var keys: [String: String] = [:]
        for entry in selected { keys[String(entry.version)] = try exportedMaterial(kind, entry) }
        return ExportResult(name: name, type: type.rawValue, keys: keys)
    }

    private func exportedMaterial(_ kind: ExportKind, _ entry: TransitKeyVersion) throws(TransitError) -> String {
        switch kind {
        case .hmacKey:
            return TransitBase64.encode(type == .hmac ? entry.key : entry.hmacKey)
        case .publicKey:
            return try publicKey(of: entry)
        case .encryptionKey, .signingKey:
            switch type {
            case .aes128GCM96, .aes256GCM96, .chacha20Poly1305, .hmac, .ed25519:
                return TransitBase64.encode(entry.key)
            case .ecdsaP256, .ecdsaP384, .ecdsaP521:
                return try ECDSAKey(type, raw: entry.key).sec1PEM
            case .rsa2048, .rsa3072, .rsa4096:
                return try RSAKey(der: entry.key).pkcs1PEM
            }
        }
    }

    /// `backup/:name`: base64 of this record as JSON. Needs `exportable` and `allow_plaintext_backup`
    /// (OpenBao answers 500 otherwise; a client's mistake is a 400 here). The blob is this server's format, not Vault's.
    func backup() throws(TransitError) -> String {
        guard config.exportable else { throw .badRequest("exporting is disallowed on the policy") }
        guard config.allowPlaintextBackup else { throw .badRequest("plaintext backup is disallowed on the policy") }
        do {
            return TransitBase64.encode(Array(try JSONEncoder().encode(self)))
        } catch {
            throw .internalError("failed to encode backup: \(error)")
        }
    }

    /// `restore[/:name]`: the record inside a `backup` blob, renamed to `name` when given. Whether a key of
    /// that name may be overwritten (`force`) is the caller's decision.
    static func restore(_ backup: String, name: String? = nil) throws(TransitError) -> TransitKey {
        var key: TransitKey
        do {
            key = try JSONDecoder().decode(TransitKey.self, from: Data(try TransitBase64.decode(backup)))
        } catch {
            throw .badRequest("failed to restore the policy: the backup is not base64 of a key this server backed up")
        }
        if let name, !name.isEmpty { key.name = name }
        return key
    }
}
