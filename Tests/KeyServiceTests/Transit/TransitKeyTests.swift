import Foundation
import Testing

@testable import KeyService

@Suite struct TransitKeyTests {
    @Test(arguments: TransitKeyType.allCases)
    func createsEveryType(type: TransitKeyType) throws {
        let key = try TransitKey.create(name: "k", options: .init(type: type, keySize: type == .hmac ? 64 : nil))
        #expect(key.config.latestVersion == 1 && key.versions.count == 1)
        #expect(key.versions[0].hmacKey.count == (type == .hmac ? 64 : 32))
        let description = try key.readResponse()
        #expect(description.type == type.rawValue)
        switch description.keys {
        case .symmetric(let map): #expect(type.isAEAD && map.keys.sorted() == ["1"])
        case .asymmetric(let map): #expect(type.isAsymmetric && map["1"]?.publicKey.isEmpty == false)
        case nil: #expect(type == .hmac && description.keySize == 64)
        }
    }

    @Test func creationRulesAndMessages() {
        let cases: [(TransitKey.Options, TransitError)] = [
            (.init(autoRotatePeriod: 60), .badRequest("auto rotate period must be 0 to disable or at least an hour")),
            (.init(convergentEncryption: true), .badRequest("convergent encryption requires derivation to be enabled")),
            (.init(type: .aes256GCM96, keySize: 32), .badRequest("key_size is not valid for algorithm aes256-gcm96")),
            (.init(type: .hmac, keySize: 16), .badRequest("invalid key_size 16")),
            (.init(type: .hmac), .badRequest("invalid key size for HMAC key, must be between 32 and 512 bytes")),
            (
                .init(type: .ecdsaP256, derived: true),
                .badRequest("key derivation and convergent encryption not supported for keys of type ecdsa-p256")
            ),
        ]
        for (options, error) in cases {
            #expect(throws: error) { try TransitKey.create(name: "k", options: options) }
        }
        #expect(throws: TransitError.self) { try TransitKeyType(name: "aes512") }
    }

    @Test func readResponseJSONMatchesVault() throws {
        var key = try TransitKey.create(name: "s1", options: .init(type: .ecdsaP256), now: 1_795_974_558_258_698_402)
        key.config.exportable = false
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(key.readResponse())) as! [String: Any]
        #expect(json["name"] as? String == "s1")
        #expect(json["type"] as? String == "ecdsa-p256")
        #expect(json["min_decryption_version"] as? Int == 1)
        #expect(json["min_encryption_version"] as? Int == 0)
        #expect(json["supports_signing"] as? Bool == true)
        #expect(json["supports_encryption"] as? Bool == false)
        #expect(json["soft_deleted"] as? Bool == false)
        #expect(json["kdf"] == nil && json["key_size"] == nil)
        let first = (json["keys"] as! [String: Any])["1"] as! [String: Any]
        #expect(first["name"] as? String == "P-256")
        #expect(first["creation_time"] as? String == "2026-11-29T17:49:18.258698402Z")
        #expect((first["public_key"] as? String)?.hasPrefix("-----BEGIN PUBLIC KEY-----\n") == true)
        #expect(first["certificate_chain"] as? String == "")

        let symmetric = try TransitKey.create(
            name: "k", options: .init(derived: true, convergentEncryption: true), now: 1_700_000_000_900_000_000)
        let sjson =
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(symmetric.readResponse())) as! [String: Any]
        #expect((sjson["keys"] as? [String: Any])?["1"] as? Int == 1_700_000_000)
        #expect(sjson["kdf"] as? String == "hkdf_sha256")
        #expect(sjson["convergent_encryption"] as? Bool == true)
        #expect(sjson["convergent_encryption_version"] as? Int == -1)
    }

    @Test func rfc3339Formatting() {
        #expect(TransitTime.rfc3339(0) == "1970-01-01T00:00:00Z")
        #expect(TransitTime.rfc3339(951_782_400_500_000_000) == "2000-02-29T00:00:00.5Z")
    }

    @Test func configUpdateRules() throws {
        var key = try TransitKey.create(name: "k", options: .init())
        #expect(throws: TransitError.badRequest("cannot set min decryption version of 3, latest key version is 1")) {
            try key.updateConfig(.init(minDecryptionVersion: 3))
        }
        try key.rotate()
        try key.rotate()
        try key.updateConfig(.init(minDecryptionVersion: 2, minEncryptionVersion: 3))
        #expect(key.config.minDecryptionVersion == 2 && key.config.minEncryptionVersion == 3)
        #expect(
            throws: TransitError.badRequest(
                "cannot set min encryption/decryption values; min encryption version of 2 "
                    + "must be greater than or equal to min decryption version of 3"
            )
        ) { try key.updateConfig(.init(minDecryptionVersion: 3, minEncryptionVersion: 2)) }
        #expect(key.config.minDecryptionVersion == 2)  // unchanged after a refused update
        let warnings = try key.updateConfig(.init(minDecryptionVersion: 0))
        #expect(key.config.minDecryptionVersion == 1 && warnings.count == 1)
        try key.updateConfig(.init(exportable: true, allowPlaintextBackup: true))
        try key.updateConfig(.init(exportable: false, allowPlaintextBackup: false))
        #expect(key.config.exportable && key.config.allowPlaintextBackup)  // one-way switches
        #expect(throws: TransitError.autoRotatePeriodTooShort) { try key.updateConfig(.init(autoRotatePeriod: 10)) }
        try key.updateConfig(.init(autoRotatePeriod: 86_400))
        #expect(try key.readResponse().autoRotatePeriod == 86_400)
        #expect(throws: TransitError.badRequest("error deleting policy k: deletion is not allowed for this key")) {
            try key.checkDeletable()
        }
        try key.updateConfig(.init(deletionAllowed: true))
        try key.checkDeletable()
    }

    @Test func listedVersionsFollowMinDecryption() throws {
        var key = try TransitKey.create(name: "k", options: .init())
        try key.rotate()
        try key.rotate()
        try key.updateConfig(.init(minDecryptionVersion: 2))
        guard case .symmetric(let map) = try key.readResponse().keys else { Issue.record("not symmetric"); return }
        #expect(map.keys.sorted() == ["2", "3"])
    }

    @Test func trimRules() throws {
        var key = try TransitKey.create(name: "k", options: .init())
        for _ in 0..<3 { try key.rotate() }
        #expect(
            throws: TransitError.badRequest(
                "minimum available version cannot be set when minimum encryption version is not set")
        ) { try key.trim(minAvailableVersion: 2) }
        try key.updateConfig(.init(minDecryptionVersion: 3, minEncryptionVersion: 3))
        #expect(
            throws: TransitError.badRequest(
                "minimum available version cannot be greater than minmum encryption version")
        ) { try key.trim(minAvailableVersion: 4) }
        try key.trim(minAvailableVersion: 3)
        #expect(key.versions.map(\.version) == [3, 4])
        #expect(throws: TransitError.badRequest("minimum available version cannot be decremented")) {
            try key.trim(minAvailableVersion: 2)
        }
        #expect(throws: TransitError.badRequest("min decryption version should not be less then min available version"))
        {
            try key.updateConfig(.init(minDecryptionVersion: 2))
        }
    }

    @Test func importedKeysRotateOnlyWhenAllowed() throws {
        var key = try TransitKey.create(name: "imp", options: .init())
        key.config.importedKey = true
        #expect(throws: TransitError.badRequest("imported key imp does not allow rotation within Vault")) {
            try key.rotate()
        }
        key.config.allowImportedKeyRotation = true
        try key.rotate()
        #expect(key.config.latestVersion == 2 && !key.config.importedKey)
    }

    @Test func recordRoundTripsThroughJSON() throws {
        let key = try TransitKey.create(name: "k", options: .init(type: .ed25519, exportable: true))
        let decoded = try JSONDecoder().decode(TransitKey.self, from: JSONEncoder().encode(key))
        #expect(decoded == key)
    }

    @Test func autoRotationIsDue() throws {
        var key = try TransitKey.create(name: "k", options: .init(autoRotatePeriod: 3600), now: 0)
        #expect(!key.needsAutoRotation(now: 3_599_000_000_000))
        #expect(key.needsAutoRotation(now: 3_600_000_000_000))
        key.config.autoRotatePeriod = 0
        #expect(!key.needsAutoRotation(now: .max))
    }
}
