/// Key management after creation: `keys/:name/config`, `keys/:name/trim`, and the delete check.
extension TransitKey {
    /// The body of `POST keys/:name/config`; nil fields are left alone.
    struct ConfigUpdate: Sendable, Equatable {
        var minDecryptionVersion: Int?
        var minEncryptionVersion: Int?
        var deletionAllowed: Bool?
        /// false → true only; false is ignored.
        var exportable: Bool?
        /// false → true only; false is ignored.
        var allowPlaintextBackup: Bool?
        /// Seconds.
        var autoRotatePeriod: Int?
    }

    /// Applies a config update with Vault's checks and messages. On error the key is unchanged.
    /// Returns Vault's warnings (e.g. when `min_decryption_version` 0 is forced to 1).
    @discardableResult
    mutating func updateConfig(_ update: ConfigUpdate) throws(TransitError) -> [String] {
        var next = config
        var warnings: [String] = []
        if var minimum = update.minDecryptionVersion {
            guard minimum >= 0 else { throw .badRequest("min decryption version cannot be negative") }
            if minimum == 0 {
                minimum = 1
                warnings.append("since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1")
            }
            if minimum != next.minDecryptionVersion {
                guard minimum <= next.latestVersion else {
                    throw .badRequest(
                        "cannot set min decryption version of \(minimum), latest key version is \(next.latestVersion)")
                }
                next.minDecryptionVersion = minimum
            }
        }
        if let minimum = update.minEncryptionVersion {
            guard minimum >= 0 else { throw .badRequest("min encryption version cannot be negative") }
            if minimum != next.minEncryptionVersion {
                guard minimum <= next.latestVersion else {
                    throw .badRequest(
                        "cannot set min encryption version of \(minimum), latest key version is \(next.latestVersion)")
                }
                next.minEncryptionVersion = minimum
            }
        }
        if next.minEncryptionVersion > 0, next.minEncryptionVersion < next.minDecryptionVersion {
            throw .badRequest(
                "cannot set min encryption/decryption values; min encryption version of \(next.minEncryptionVersion) "
                    + "must be greater than or equal to min decryption version of \(next.minDecryptionVersion)")
        }
        if let allowed = update.deletionAllowed { next.deletionAllowed = allowed }
        if update.exportable == true { next.exportable = true }
        if update.allowPlaintextBackup == true { next.allowPlaintextBackup = true }
        if let period = update.autoRotatePeriod {
            if period != 0, period < 3600 { throw .autoRotatePeriodTooShort }
            next.autoRotatePeriod = period
        }
        if next != config {
            if next.minAvailableVersion > next.minEncryptionVersion {
                throw .badRequest("min encryption version should not be less than min available version")
            }
            if next.minAvailableVersion > next.minDecryptionVersion {
                throw .badRequest("min decryption version should not be less then min available version")
            }
        }
        config = next
        return warnings
    }

    /// `POST keys/:name/trim`: forgets every version below `minAvailableVersion`, for good.
    mutating func trim(minAvailableVersion minimum: Int) throws(TransitError) {
        switch true {
        case minimum < config.minAvailableVersion:
            throw .badRequest("minimum available version cannot be decremented")
        case config.minEncryptionVersion == 0:
            throw .badRequest("minimum available version cannot be set when minimum encryption version is not set")
        case config.minDecryptionVersion == 0:
            throw .badRequest("minimum available version cannot be set when minimum decryption version is not set")
        case minimum > config.minEncryptionVersion:
            // Vault's own spelling.
            throw .badRequest("minimum available version cannot be greater than minmum encryption version")
        case minimum > config.minDecryptionVersion:
            throw .badRequest("minimum available version cannot be greater than minimum decryption version")
        case minimum < 0:
            throw .badRequest("minimum available version cannot be negative")
        case minimum == 0:
            throw .badRequest("minimum available version should be positive")
        default:
            config.minAvailableVersion = minimum
            versions.removeAll { $0.version < minimum }
        }
    }

    /// Throws Vault's 400 when `DELETE keys/:name` is not allowed.
    func checkDeletable() throws(TransitError) {
        guard config.deletionAllowed else {
            throw .badRequest("error deleting policy \(name): deletion is not allowed for this key")
        }
    }
}
