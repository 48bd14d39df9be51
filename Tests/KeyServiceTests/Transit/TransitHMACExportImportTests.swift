import Crypto
import CryptoExtras
import Foundation
import Testing

@testable import KeyService

@Suite struct TransitHMACTests {
    @Test func hmacMatchesPerVersionKey() throws {
        var key = try TransitKey.create(name: "k", options: .init(exportable: true))
        let input = Array("data".utf8)
        let result = try key.hmac(input)
        let expected = HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: key.versions[0].hmacKey))
        #expect(result.hmac == TransitCiphertext.encode(version: 1, payload: Array(expected)))
        #expect(try key.verifyHMAC(input, hmac: result.hmac))
        #expect(try !key.verifyHMAC(Array("other".utf8), hmac: result.hmac))
        // The exported hmac-key is the one used.
        #expect(try key.export(.hmacKey).keys["1"] == TransitBase64.encode(key.versions[0].hmacKey))
        try key.rotate()
        #expect(try key.hmac(input).hmac != result.hmac)
        #expect(try key.verifyHMAC(input, hmac: result.hmac))
        for algorithm in [TransitHashAlgorithm.sha1, .sha2_384, .sha2_512] {
            let mac = try key.hmac(input, algorithm: algorithm).hmac
            #expect(try key.verifyHMAC(input, hmac: mac, algorithm: algorithm))
        }
        #expect(throws: TransitError.badRequest("invalid HMAC to verify: no prefix")) {
            try key.verifyHMAC(input, hmac: "x")
        }
        #expect(throws: TransitError.badRequest("invalid HMAC: version is too new")) {
            try key.verifyHMAC(input, hmac: "vault:v9:AA==")
        }
    }

    @Test func hmacKeyTypeUsesItsMaterial() throws {
        let key = try TransitKey.create(name: "h", options: .init(type: .hmac, keySize: 48))
        let mac = try key.hmac([1, 2, 3], algorithm: .sha2_512).hmac
        let expected = HMAC<SHA512>.authenticationCode(for: [1, 2, 3], using: SymmetricKey(data: key.versions[0].key))
        #expect(mac == TransitCiphertext.encode(version: 1, payload: Array(expected)))
    }

    @Test func hashAndRandom() throws {
        #expect(
            try TransitUtilities.hash(Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try TransitUtilities.hash(Array("abc".utf8), algorithm: "sha2-512", format: "base64").count == 88)
        // SHA3-256("abc"), FIPS 202 example; sha3-224 and sha2-224 are names swift-crypto cannot compute.
        #expect(
            try TransitUtilities.hash(Array("abc".utf8), algorithm: "sha3-256")
                == "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")
        #expect(throws: TransitError.self) { try TransitUtilities.hash([1], algorithm: "sha3-224") }
        #expect(throws: TransitError.self) { try TransitUtilities.hash([1], format: "binary") }
        #expect(try TransitBase64.decode(TransitUtilities.randomBytes()).count == 32)
        #expect(try TransitUtilities.randomBytes(count: 16, format: "hex").count == 32)
        #expect(throws: TransitError.badRequest("'bytes' cannot be less than 1")) {
            try TransitUtilities.randomBytes(count: 0)
        }
    }

    @Test func base64MatchesGo() throws {
        #expect(TransitBase64.encode(Array("hello".utf8)) == "aGVsbG8=")
        #expect(try TransitBase64.decode("aGVsbG8=") == Array("hello".utf8))
        #expect(throws: TransitError.badRequest("illegal base64 data at input byte 0")) {
            try TransitBase64.decode("!!")
        }
        #expect(throws: TransitError.badRequest("illegal base64 data at input byte 4")) {
            try TransitBase64.decode("aGVs*G8=")
        }
        #expect(throws: TransitError.self) { try TransitBase64.decode("aGVsbG8") }
        #expect(TransitBase64.encodeRawURL([0xFB, 0xFF]) == "-_8")
        #expect(try TransitBase64.decodeRawURL("-_8") == [0xFB, 0xFF])
        #expect(try TransitBase64.decode("aGVs\r\nbG8=\n") == Array("hello".utf8))
        #expect(throws: TransitError.badRequest("illegal base64 data at input byte 8")) {
            try TransitBase64.decode("aGVsbG8=x")
        }
        #expect(throws: TransitError.badRequest("illegal base64 data at input byte 5")) {
            try TransitBase64.decode("aGVsb===")
        }
    }

    /// Every length from 0 to 64 bytes, random contents: the same text as Foundation's encoder, and back.
    @Test func base64AgreesWithFoundation() throws {
        for length in 0...64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let foundation = Data(bytes).base64EncodedString()
            #expect(TransitBase64.encode(bytes) == foundation)
            #expect(try TransitBase64.decode(foundation) == bytes)
            let url = foundation.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(TransitBase64.encodeRawURL(bytes) == url)
            #expect(try TransitBase64.decodeRawURL(url) == bytes)
        }
    }
}

@Suite struct TransitExportImportTests {
    @Test func exportFormats() throws {
        let aes = try TransitKey.create(name: "a", options: .init(exportable: true))
        #expect(try aes.export(.encryptionKey).keys["1"] == TransitBase64.encode(aes.versions[0].key))
        #expect(try aes.export(.encryptionKey, version: "latest").keys.count == 1)
        #expect(throws: TransitError.badRequest("signing not supported for the key")) { try aes.export(.signingKey) }

        let ed = try TransitKey.create(name: "e", options: .init(type: .ed25519, exportable: true))
        #expect(try TransitBase64.decode(ed.export(.signingKey).keys["1"]!).count == 64)

        let ec = try TransitKey.create(name: "c", options: .init(type: .ecdsaP384, exportable: true))
        let pem = try ec.export(.signingKey).keys["1"]!
        #expect(pem.hasPrefix("-----BEGIN EC PRIVATE KEY-----\n") && pem.hasSuffix("-----END EC PRIVATE KEY-----\n"))
        // swift-crypto reads SEC 1 back to the same scalar.
        #expect(Array(try P384.Signing.PrivateKey(pemRepresentation: pem).rawRepresentation) == ec.versions[0].key)

        let rsa = try TransitKey.create(name: "r", options: .init(type: .rsa2048, exportable: true))
        let rsaPEM = try rsa.export(.encryptionKey).keys["1"]!
        #expect(rsaPEM.hasPrefix("-----BEGIN RSA PRIVATE KEY-----\n"))
        #expect(Array(try _RSA.Signing.PrivateKey(pemRepresentation: rsaPEM).derRepresentation) == rsa.versions[0].key)

        let locked = try TransitKey.create(name: "l", options: .init())
        #expect(throws: TransitError.badRequest("private key material is not exportable")) {
            try locked.export(.encryptionKey)
        }
        #expect(
            try TransitKey.create(name: "p", options: .init(type: .ecdsaP256)).export(.publicKey).keys["1"]?
                .hasPrefix("-----BEGIN PUBLIC KEY-----") == true)
    }

    @Test func backupAndRestore() throws {
        var key = try TransitKey.create(name: "k", options: .init(exportable: true))
        #expect(throws: TransitError.badRequest("plaintext backup is disallowed on the policy")) { try key.backup() }
        try key.updateConfig(.init(allowPlaintextBackup: true))
        let restored = try TransitKey.restore(try key.backup(), name: "copy")
        #expect(restored.name == "copy" && restored.versions == key.versions)
        let ciphertext = try key.encrypt([7]).ciphertext
        #expect(try restored.decrypt(ciphertext) == [7])
    }
}

/// One RSA-4096 wrapping key for all import tests (generation is slow in debug builds).
let sharedWrappingKey: TransitWrappingKey = try! TransitWrappingKey.generate()

@Suite struct TransitImportTests {
    let wrapping = sharedWrappingKey

    @Test func importAESKeyAndExportItBack() throws {
        let material = TransitRandom.bytes(32)
        let blob = try TransitWrappingKey.wrap(material, forPublicKeyPEM: try wrapping.publicKeyPEM)
        #expect(try TransitBase64.decode(blob).count == 512 + 40)
        let key = try TransitKey.importKey(
            name: "imp", ciphertext: blob, wrappingKey: wrapping, options: .init(type: .aes256GCM96, exportable: true))
        #expect(key.config.importedKey)
        #expect(try key.export(.encryptionKey).keys["1"] == TransitBase64.encode(material))
        #expect(try key.readResponse().importedKey)
        #expect(try key.readResponse().importedKeyAllowRotation == false)
    }

    @Test func importECDSAPKCS8AndSign() throws {
        let original = P256.Signing.PrivateKey()
        let blob = try TransitWrappingKey.wrap(
            Array(original.derRepresentation), forPublicKeyPEM: try wrapping.publicKeyPEM)
        var key = try TransitKey.importKey(
            name: "ec", ciphertext: blob, wrappingKey: wrapping, options: .init(type: .ecdsaP256, exportable: true))
        #expect(key.versions[0].key == Array(original.rawRepresentation))
        let exported = try P256.Signing.PrivateKey(pemRepresentation: try key.export(.signingKey).keys["1"]!)
        #expect(exported.rawRepresentation == original.rawRepresentation)
        let der = try TransitBase64.decode(String(try key.sign([1, 2]).signature.dropFirst(9)))
        #expect(original.publicKey.isValidSignature(try .init(derRepresentation: der), for: [1, 2]))

        let second = P256.Signing.PrivateKey()
        try key.importVersion(
            ciphertext: TransitWrappingKey.wrap(
                Array(second.derRepresentation), forPublicKeyPEM: try wrapping.publicKeyPEM),
            wrappingKey: wrapping)
        #expect(key.config.latestVersion == 2 && key.versions[1].key == Array(second.rawRepresentation))
        #expect(throws: TransitError.badRequest("imported key ec does not allow rotation within Vault")) {
            try key.rotate()
        }
    }

    @Test func importEd25519AndRSAAndHMAC() throws {
        let ed = Curve25519.Signing.PrivateKey()
        let edKey = try TransitKey.importKey(
            name: "ed",
            ciphertext: TransitWrappingKey.wrap(
                Array(ed.derRepresentation), forPublicKeyPEM: try wrapping.publicKeyPEM),
            wrappingKey: wrapping, options: .init(type: .ed25519))
        #expect(try edKey.publicKey(of: edKey.versions[0]) == TransitBase64.encode(ed.publicKey.rawRepresentation))

        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let rsaKey = try TransitKey.importKey(
            name: "rsa",
            ciphertext: TransitWrappingKey.wrap(
                Array(rsa.pkcs8DERRepresentation), forPublicKeyPEM: try wrapping.publicKeyPEM),
            wrappingKey: wrapping, options: .init(type: .rsa2048))
        #expect(rsaKey.versions[0].key == Array(rsa.derRepresentation))
        #expect(throws: TransitError.self) {
            try TransitKey.importKey(
                name: "rsa",
                ciphertext: TransitWrappingKey.wrap(
                    Array(rsa.pkcs8DERRepresentation), forPublicKeyPEM: try wrapping.publicKeyPEM),
                wrappingKey: wrapping, options: .init(type: .rsa4096))
        }

        let hmacMaterial = TransitRandom.bytes(40)
        let hmacKey = try TransitKey.importKey(
            name: "h", ciphertext: TransitWrappingKey.wrap(hmacMaterial, forPublicKeyPEM: try wrapping.publicKeyPEM),
            wrappingKey: wrapping, options: .init(type: .hmac))
        #expect(hmacKey.config.keySize == 40 && hmacKey.versions[0].hmacKey == hmacMaterial)
    }

    @Test func importRefusesGarbageAndWrongSizes() throws {
        let pem = try wrapping.publicKeyPEM
        #expect(throws: TransitError.self) {
            try TransitKey.importKey(name: "x", ciphertext: "AAAA", wrappingKey: wrapping, options: .init())
        }
        var blob = try TransitBase64.decode(try TransitWrappingKey.wrap(TransitRandom.bytes(32), forPublicKeyPEM: pem))
        blob[blob.count - 1] ^= 1
        #expect(throws: TransitError.self) {
            try TransitKey.importKey(
                name: "x", ciphertext: TransitBase64.encode(blob), wrappingKey: wrapping, options: .init())
        }
        #expect(throws: TransitError.badRequest("invalid key size 16 bytes for key type aes256-gcm96")) {
            try TransitKey.importKey(
                name: "x", ciphertext: TransitWrappingKey.wrap(TransitRandom.bytes(16), forPublicKeyPEM: pem),
                wrappingKey: wrapping, options: .init())
        }
        #expect(throws: TransitError.self) {
            try TransitKey.importKey(
                name: "x", ciphertext: TransitWrappingKey.wrap(TransitRandom.bytes(32), forPublicKeyPEM: pem),
                hashFunction: "SHA384", wrappingKey: wrapping, options: .init())
        }
        var plain = try TransitKey.create(name: "p", options: .init())
        #expect(throws: TransitError.badRequest("the import_version endpoint can only be used with an imported key")) {
            try plain.importVersion(ciphertext: "AAAA", wrappingKey: wrapping)
        }
    }

    @Test func wrappingKeyRoundTripsThroughJSON() throws {
        #expect(try wrapping.publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
    }
}
