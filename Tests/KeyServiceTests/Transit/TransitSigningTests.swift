import Crypto
import CryptoExtras
import Testing

@testable import KeyService

@Suite struct TransitSigningTests {
    static let signingTypes: [TransitKeyType] = [.ed25519, .ecdsaP256, .ecdsaP384, .ecdsaP521, .rsa2048]
    let message = Array("abc".utf8)

    func key(_ type: TransitKeyType, derived: Bool = false) throws -> TransitKey {
        try TransitKey.create(name: "s", options: .init(type: type, derived: derived))
    }

    @Test(arguments: signingTypes)
    func signAndVerifyRoundTrip(type: TransitKeyType) throws {
        let key = try key(type)
        let result = try key.sign(message)
        #expect(result.keyVersion == 1 && result.signature.hasPrefix("vault:v1:"))
        #expect(try key.verify(message, signature: result.signature))
        #expect(try !key.verify(Array("abd".utf8), signature: result.signature))
        let other = try self.key(type).sign(message).signature
        #expect(try !key.verify(message, signature: other))
    }

    @Test(arguments: [TransitKeyType.ecdsaP256, .ecdsaP384, .ecdsaP521])
    func ecdsaMarshalings(type: TransitKeyType) throws {
        let key = try key(type)
        var options = TransitKey.SignOptions()
        options.marshaling = .jws
        let jws = try key.sign(message, options: options).signature
        let payload = String(jws.dropFirst(9))
        #expect(!payload.contains("=") && !payload.contains("+") && !payload.contains("/"))
        #expect(try TransitBase64.decodeRawURL(payload).count == 2 * type.ecdsaScalarByteCount)
        #expect(try key.verify(message, signature: jws, options: options))

        let asn1 = try key.sign(message).signature
        let der = try TransitBase64.decode(String(asn1.dropFirst(9)))
        #expect(der.first == 0x30)
        #expect(try key.verify(message, signature: asn1))
        // The JWS form read as ASN.1: not DER, so Vault's "supplied signature is invalid" (or bad base64).
        #expect(throws: TransitError.self) { try key.verify(message, signature: jws) }
    }

    @Test func ecdsaVerifiesWithSwiftCrypto() throws {
        let key = try key(.ecdsaP256)
        let der = try TransitBase64.decode(String(try key.sign(message).signature.dropFirst(9)))
        let publicKey = try P256.Signing.PublicKey(pemRepresentation: try key.publicKey(of: key.versions[0]))
        #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: der), for: message))
    }

    @Test func ecdsaPrehashedMatchesHashed() throws {
        let key = try key(.ecdsaP256)
        var options = TransitKey.SignOptions()
        options.prehashed = true
        let digest = Array(SHA256.hash(data: message))
        let signature = try key.sign(digest, options: options).signature
        #expect(try key.verify(message, signature: signature))
        options.hashAlgorithm = .sha2_384
        options.prehashed = false
        let sha384 = try key.sign(message, options: options).signature
        #expect(try key.verify(message, signature: sha384, options: options))
        #expect(try !key.verify(message, signature: sha384))
    }

    @Test func sha3DigestsSignAndVerifyWithEveryPadding() throws {
        // The DigestInfo of an RSA PKCS#1 v1.5 signature is checked against Python's cryptography by the hvac suite.
        #expect(TransitHashAlgorithm.sha3_256.digestInfoPrefix.count == 19)
        #expect(TransitHashAlgorithm.sha3_512.digestInfoPrefix.prefix(2) == [0x30, 0x51])
        var options = TransitKey.SignOptions()
        options.hashAlgorithm = .sha3_384
        let ecdsa = try key(.ecdsaP256)
        let signature = try ecdsa.sign(message, options: options).signature
        #expect(try ecdsa.verify(message, signature: signature, options: options))
        #expect(try !ecdsa.verify(message, signature: signature))
        let rsa = try key(.rsa2048)
        for padding in [TransitKey.SignatureAlgorithm.pss, .pkcs1v15] {
            options.signatureAlgorithm = padding
            let signed = try rsa.sign(message, options: options).signature
            #expect(try rsa.verify(message, signature: signed, options: options))
        }
    }

    @Test func ed25519IsPureAndVerifiesWithSwiftCrypto() throws {
        let key = try key(.ed25519)
        let raw = try TransitBase64.decode(String(try key.sign(message).signature.dropFirst(9)))
        #expect(raw.count == 64)
        let publicKey = try Curve25519.Signing.PublicKey(
            rawRepresentation: TransitBase64.decode(key.publicKey(of: key.versions[0])))
        #expect(publicKey.isValidSignature(raw, for: message))
    }

    @Test func derivedEd25519DependsOnContext() throws {
        let key = try key(.ed25519, derived: true)
        var options = TransitKey.SignOptions()
        options.context = Array("ctx".utf8)
        let result = try key.sign(message, options: options)
        #expect(result.publicKey != nil)
        #expect(try key.verify(message, signature: result.signature, options: options))
        #expect(
            try key.readResponse(context: Array("ctx".utf8)).keys
                == .asymmetric(
                    [
                        "1": .init(
                            name: "ed25519", publicKey: result.publicKey!,
                            creationTime: TransitTime.rfc3339(key.versions[0].creationTime))
                    ]))
        options.context = Array("other".utf8)
        #expect(try !key.verify(message, signature: result.signature, options: options))
        options.context = nil
        #expect(throws: TransitError.self) { try key.sign(message, options: options) }
    }

    @Test(arguments: [TransitHashAlgorithm.sha1, .sha2_256, .sha2_384, .sha2_512])
    func rsaPSSAndPKCS1(hash: TransitHashAlgorithm) throws {
        let key = try key(.rsa2048)
        var options = TransitKey.SignOptions()
        options.hashAlgorithm = hash
        let pss = try key.sign(message, options: options).signature
        #expect(try TransitBase64.decode(String(pss.dropFirst(9))).count == 256)
        #expect(try key.verify(message, signature: pss, options: options))
        options.signatureAlgorithm = .pkcs1v15
        let pkcs1 = try key.sign(message, options: options).signature
        #expect(try key.sign(message, options: options).signature == pkcs1)  // deterministic
        #expect(try key.verify(message, signature: pkcs1, options: options))
        #expect(try !key.verify(message, signature: pss, options: options))
    }

    @Test func rsaSaltLengths() throws {
        let key = try key(.rsa2048)
        var options = TransitKey.SignOptions()
        let maximal = try key.sign(message, options: options).signature  // auto = maximal salt
        options.saltLength = RSASignaturePadding.saltEqualsHash
        let hashSalt = try key.sign(message, options: options).signature
        #expect(try key.verify(message, signature: hashSalt, options: options))
        #expect(try !key.verify(message, signature: maximal, options: options))  // exact length required
        options.saltLength = RSASignaturePadding.saltAuto
        #expect(try key.verify(message, signature: hashSalt, options: options))  // auto detects any salt
        #expect(try key.verify(message, signature: maximal, options: options))
        options.saltLength = 300
        #expect(throws: TransitError.badRequest("requested salt length 300 is invalid")) {
            try key.sign(message, options: options)
        }
        #expect(try RSASignaturePadding.saltLength("hash") == -1)
        #expect(try RSASignaturePadding.saltLength("auto") == 0)
    }

    @Test func rsaPSSWithHashSaltVerifiesWithSwiftCrypto() throws {
        // swift-crypto's .PSS uses salt = digest length: an independent check of the padding and raw operation.
        let key = try key(.rsa2048)
        var options = TransitKey.SignOptions()
        options.saltLength = RSASignaturePadding.saltEqualsHash
        let raw = try TransitBase64.decode(String(try key.sign(message, options: options).signature.dropFirst(9)))
        let publicKey = try _RSA.Signing.PublicKey(pemRepresentation: try key.publicKey(of: key.versions[0]))
        #expect(
            publicKey.isValidSignature(.init(rawRepresentation: raw), for: SHA256.hash(data: message), padding: .PSS))
        // …and a swift-crypto signature verifies here (salt auto-detected).
        let private_ = try _RSA.Signing.PrivateKey(derRepresentation: key.versions[0].key)
        let theirs = try private_.signature(for: SHA256.hash(data: message), padding: .PSS)
        #expect(
            try key.verify(
                message, signature: TransitCiphertext.encode(version: 1, payload: Array(theirs.rawRepresentation))))
        let pkcs1 = try private_.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        options.signatureAlgorithm = .pkcs1v15
        #expect(
            try key.verify(
                message, signature: TransitCiphertext.encode(version: 1, payload: Array(pkcs1.rawRepresentation)),
                options: options))
    }

    @Test func rsaHashNoneNeedsPrehashedPKCS1() throws {
        let key = try key(.rsa2048)
        var options = TransitKey.SignOptions()
        options.hashAlgorithm = .none
        #expect(
            throws: TransitError.badRequest(
                "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
        ) {
            try key.sign(message, options: options)
        }
        options.prehashed = true
        options.signatureAlgorithm = .pkcs1v15
        let signature = try key.sign([1, 2, 3], options: options).signature
        #expect(try key.verify([1, 2, 3], signature: signature, options: options))
    }

    @Test func hashAlgorithmNames() throws {
        #expect(try TransitHashAlgorithm(name: "") == .sha2_256)
        #expect(try TransitHashAlgorithm(name: "sha2-512") == .sha2_512)
        #expect(throws: TransitError.self) { try TransitHashAlgorithm(name: "sha2-224") }
        #expect(try TransitHashAlgorithm(name: "sha3-256") == .sha3_256)
        #expect(throws: TransitError.self) { try TransitHashAlgorithm(name: "sha3-224") }
        #expect(throws: TransitError.badRequest("invalid hash algorithm \"md5\"")) {
            try TransitHashAlgorithm(name: "md5")
        }
    }

    @Test func verifyErrors() throws {
        var key = try key(.ecdsaP256)
        try key.rotate()
        try key.updateConfig(.init(minDecryptionVersion: 2))
        let cases: [(String, String)] = [
            ("sig", "invalid signature: no prefix"),
            ("vault:v2", "invalid signature: wrong number of fields"),
            ("vault:vz:AA", "invalid signature: version number could not be decoded"),
            ("vault:v3:AA", "invalid signature: version is too new"),
            ("vault:v1:AA", "ciphertext or signature version is disallowed by policy (too old)"),
            ("vault:v2:!!", "invalid base64 signature value"),
            ("vault:v2:AAAA", "supplied signature is invalid"),
        ]
        for (signature, message) in cases {
            #expect(throws: TransitError.badRequest(message)) { try key.verify(self.message, signature: signature) }
        }
        let good = try TransitBase64.decode(String(try key.sign(message).signature.dropFirst(9)))
        #expect(throws: TransitError.badRequest("supplied signature contains extra data")) {
            try key.verify(self.message, signature: TransitCiphertext.encode(version: 2, payload: good + [0]))
        }
        #expect(throws: TransitError.signingVersionTooHigh) { try key.sign(message, keyVersion: 3) }
        let aes = try TransitKey.create(name: "a", options: .init())
        #expect(throws: TransitError.badRequest("key type aes256-gcm96 does not support signing")) {
            try aes.sign(message)
        }
    }

    @Test func rsaPublicOperationMatchesKnownValue() {
        // n = 3233 (61·53), e = 17: 65^17 mod 3233 = 2790.
        let operation = RSAPublicOperation(modulus: [0x0C, 0xA1], exponent: [17])!
        #expect(operation.apply([0x00, 0x41]) == [0x0A, 0xE6])
        #expect(operation.apply([0x0C, 0xA1]) == nil)  // s ≥ n
    }

    /// The sign path builds its answer directly; it must be what the JSON round trip gives, with and without the
    /// public key.
    @Test func signResultMembersMatchTheEncodedObject() throws {
        let plain = TransitKey.SignResult(signature: "vault:v1:abc", keyVersion: 3, publicKey: nil)
        let derived = TransitKey.SignResult(signature: "vault:v2:def", keyVersion: 2, publicKey: "cHVi")
        for result in [plain, derived] {
            #expect(TransitBackend.members(result) == (try TransitBackend.object(result)))
        }
        #expect(TransitBackend.members(plain)["public_key"] == nil)
        #expect(TransitBackend.members(derived)["public_key"] == .string("cHVi"))
    }
}
