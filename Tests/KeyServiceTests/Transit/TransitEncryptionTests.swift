import Testing

@testable import KeyService

@Suite struct TransitEncryptionTests {
    static let aeadTypes: [TransitKeyType] = [.aes128GCM96, .aes256GCM96, .chacha20Poly1305]

    func key(
        _ type: TransitKeyType = .aes256GCM96, derived: Bool = false, convergent: Bool = false
    ) throws -> TransitKey {
        try TransitKey.create(
            name: "k", options: .init(type: type, derived: derived, convergentEncryption: convergent))
    }

    @Test(arguments: aeadTypes)
    func aeadRoundTripAndLayout(type: TransitKeyType) throws {
        let key = try key(type)
        let plaintext = Array("hello".utf8)
        let result = try key.encrypt(plaintext)
        #expect(result.keyVersion == 1)
        #expect(result.ciphertext.hasPrefix("vault:v1:"))
        let raw = try TransitBase64.decode(String(result.ciphertext.dropFirst("vault:v1:".count)))
        #expect(raw.count == 12 + plaintext.count + 16)
        #expect(try key.decrypt(result.ciphertext) == plaintext)
        #expect(try key.encrypt(plaintext).ciphertext != result.ciphertext)  // random nonce
    }

    @Test(arguments: aeadTypes)
    func associatedDataIsAuthenticated(type: TransitKeyType) throws {
        let key = try key(type)
        let ciphertext = try key.encrypt([1, 2, 3], associatedData: Array("aad".utf8)).ciphertext
        #expect(try key.decrypt(ciphertext, associatedData: Array("aad".utf8)) == [1, 2, 3])
        #expect(throws: TransitError.authenticationFailed) { try key.decrypt(ciphertext) }
        #expect(throws: TransitError.authenticationFailed) { try key.decrypt(ciphertext, associatedData: [0]) }
    }

    @Test func tamperedCiphertextFailsAuthentication() throws {
        let key = try key()
        let ciphertext = try key.encrypt(Array("hello".utf8)).ciphertext
        var raw = try TransitBase64.decode(String(ciphertext.dropFirst(9)))
        raw[raw.count - 1] ^= 1
        let tampered = TransitCiphertext.encode(version: 1, payload: raw)
        #expect(throws: TransitError.badRequest("cipher: message authentication failed")) { try key.decrypt(tampered) }
        let empty = try key.encrypt([]).ciphertext
        #expect(try key.decrypt(empty) == [])
    }

    @Test func ciphertextFramingErrorsUseVaultsWords() throws {
        var key = try key()
        try key.rotate()
        try key.updateConfig(.init(minDecryptionVersion: 2))
        let cases: [(String, String)] = [
            ("nope", "invalid ciphertext: no prefix"),
            ("vault:v1", "invalid ciphertext: wrong number of fields"),
            ("vault:vx:AAAA", "invalid ciphertext: version number could not be decoded"),
            ("vault:v3:AAAA", "invalid ciphertext: version is too new"),
            ("vault:v1:AAAA", "ciphertext or signature version is disallowed by policy (too old)"),
            ("vault:v2:!!!!", "invalid ciphertext: could not decode base64"),
            ("vault:v2:AAAA", "invalid ciphertext length"),
        ]
        for (text, message) in cases {
            #expect(throws: TransitError.badRequest(message)) { try key.decrypt(text) }
        }
        // v0 is read as v1 (too old here).
        #expect(throws: TransitError.tooOld) { try key.decrypt("vault:v0:AAAA") }
    }

    @Test func keyVersionRules() throws {
        var key = try key()
        try key.rotate()
        try key.rotate()
        #expect(try key.encrypt([1], keyVersion: 2).ciphertext.hasPrefix("vault:v2:"))
        #expect(throws: TransitError.encryptionVersionTooHigh) { try key.encrypt([1], keyVersion: 4) }
        #expect(throws: TransitError.encryptionVersionNegative) { try key.encrypt([1], keyVersion: -1) }
        try key.updateConfig(.init(minEncryptionVersion: 2))
        #expect(
            throws: TransitError.badRequest(
                "requested version for encryption is less than the minimum encryption key version")
        ) {
            try key.encrypt([1], keyVersion: 1)
        }
        let old = try key.encrypt([9], keyVersion: 2).ciphertext
        let rewrapped = try key.rewrap(old)
        #expect(rewrapped.keyVersion == 3 && rewrapped.ciphertext.hasPrefix("vault:v3:"))
        #expect(try key.decrypt(rewrapped.ciphertext) == [9])
    }

    @Test(arguments: aeadTypes)
    func derivedKeysDependOnContext(type: TransitKeyType) throws {
        let key = try key(type, derived: true)
        let ciphertext = try key.encrypt([5, 6], context: Array("ctx-a".utf8)).ciphertext
        #expect(try key.decrypt(ciphertext, context: Array("ctx-a".utf8)) == [5, 6])
        #expect(throws: TransitError.authenticationFailed) { try key.decrypt(ciphertext, context: Array("ctx-b".utf8)) }
        #expect(throws: TransitError.missingContext) { try key.encrypt([1]) }
        #expect(throws: TransitError.missingContext) { try key.decrypt(ciphertext) }
        #expect(
            TransitError.missingContext.message.hasPrefix("missing 'context' for key derivation; the key was created"))
    }

    @Test func derivedKeyIsHKDFOfVersionKey() throws {
        let key = try key(derived: true)
        let context = Array("user-7".utf8)
        let derived = TransitKey.hkdf(key.versions[0].key, info: context, byteCount: 32)
        #expect(try key.symmetricKey(version: 1, context: context, byteCount: 32) == derived)
    }

    @Test(arguments: aeadTypes)
    func convergentEncryptionIsDeterministic(type: TransitKeyType) throws {
        let key = try key(type, derived: true, convergent: true)
        let context = Array("ctx".utf8)
        let a = try key.encrypt(Array("same".utf8), context: context).ciphertext
        let b = try key.encrypt(Array("same".utf8), context: context).ciphertext
        let c = try key.encrypt(Array("same".utf8), context: Array("other".utf8)).ciphertext
        let d = try key.encrypt(Array("diff".utf8), context: context).ciphertext
        #expect(a == b)
        #expect(a != c && a != d)
        #expect(try key.decrypt(a, context: context) == Array("same".utf8))
        #expect(throws: TransitError.nonceNotAllowed) {
            try key.encrypt([1], context: context, nonce: [UInt8](repeating: 0, count: 12))
        }
    }

    @Test func convergentNonceIsHMACOfPlaintext() throws {
        // Vault scheme 3: (encKey ‖ macKey) = HKDF(key, info = context, L = 32 + 32);
        // nonce = HMAC-SHA256(macKey, pt)[:12].
        let key = try key(derived: true, convergent: true)
        let context = Array("ctx".utf8), plaintext = Array("payload".utf8)
        let stream = TransitKey.hkdf(key.versions[0].key, info: context, byteCount: 64)
        let nonce = Array(TransitHashAlgorithm.sha2_256.hmac(plaintext, key: Array(stream[32...]))!.prefix(12))
        let raw = try TransitBase64.decode(String(try key.encrypt(plaintext, context: context).ciphertext.dropFirst(9)))
        #expect(Array(raw.prefix(12)) == nonce)
    }

    @Test func nonceIsRefusedForOrdinaryKeys() throws {
        #expect(throws: TransitError.nonceNotAllowed) {
            try key().encrypt([1], nonce: [UInt8](repeating: 1, count: 12))
        }
    }

    @Test func dataKeys() throws {
        let key = try key()
        for bits in [128, 256, 512] {
            let (plaintext, result) = try key.dataKey(kind: .plaintext, bits: bits)
            #expect(plaintext?.count == bits / 8)
            #expect(try key.decrypt(result.ciphertext) == plaintext)
        }
        #expect(try key.dataKey(kind: .wrapped).plaintext == nil)
        #expect(throws: TransitError.badRequest("invalid bits")) { try key.dataKey(kind: .wrapped, bits: 64) }
        #expect(throws: TransitError.badRequest("Invalid path")) { try TransitKey.DataKeyKind(pathWord: "raw") }
    }

    @Test func rsaOAEPRoundTrip() throws {
        let key = try key(.rsa2048)
        let result = try key.encrypt(Array("secret".utf8))
        #expect(try TransitBase64.decode(String(result.ciphertext.dropFirst(9))).count == 256)
        #expect(try key.decrypt(result.ciphertext) == Array("secret".utf8))
        var raw = try TransitBase64.decode(String(result.ciphertext.dropFirst(9)))
        raw[10] ^= 1
        #expect(
            throws: TransitError.badRequest("failed to RSA decrypt the ciphertext: crypto/rsa: decryption error")
        ) {
            try key.decrypt(TransitCiphertext.encode(version: 1, payload: raw))
        }
    }

    @Test func signingKeysRefuseEncryption() throws {
        #expect(throws: TransitError.badRequest("message encryption not supported for key type ed25519")) {
            try key(.ed25519).encrypt([1])
        }
        #expect(throws: TransitError.badRequest("message decryption not supported for key type hmac")) {
            try TransitKey.create(name: "h", options: .init(type: .hmac, keySize: 32)).decrypt("vault:v1:AAAA")
        }
    }
}
