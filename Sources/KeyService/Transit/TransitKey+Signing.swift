import Crypto

/// `sign` and `verify` for ECDSA, Ed25519 and RSA keys, with Vault's options and encodings.
///
/// ECDSA and RSA sign a digest of the input (`hash_algorithm`, or the input itself when `prehashed`);
/// Ed25519 signs the message. RSA PSS signs with Go's salt conventions (maximal salt by default) and
/// verifies with salt auto-detection, like Vault; PKCS#1 v1.5 embeds the DigestInfo (none for `none`).
extension TransitKey {
    enum SignatureAlgorithm: String, Sendable { case pss, pkcs1v15 }

    enum Marshaling: String, Sendable {
        case asn1, jws

        init(name: String) throws(TransitError) {
            guard let value = Marshaling(rawValue: name.isEmpty ? "asn1" : name) else {
                throw .badRequest("invalid marshaling type \"\(name)\"")
            }
            self = value
        }
    }

    /// The request fields of `sign/:name` and `verify/:name` other than input, signature and key version.
    struct SignOptions: Sendable {
        var hashAlgorithm: TransitHashAlgorithm = .sha2_256
        var prehashed = false
        var signatureAlgorithm: SignatureAlgorithm = .pss
        var marshaling: Marshaling = .asn1
        /// Go convention: 0 = `auto`, −1 = `hash`, n > 0 exact (see `RSASignaturePadding.saltLength(_:)`).
        var saltLength = RSASignaturePadding.saltAuto
        /// Base64-decoded `context`, for derived Ed25519 keys.
        var context: [UInt8]?
    }

    /// `{"signature", "key_version"}` plus `public_key` for derived Ed25519.
    struct SignResult: Encodable, Sendable, Equatable {
        var signature: String
        var keyVersion: Int
        var publicKey: String?

        enum CodingKeys: String, CodingKey {
            case signature
            case keyVersion = "key_version"
            case publicKey = "public_key"
        }
    }

    /// Signs `input` with version `keyVersion` (0 = latest).
    func sign(_ input: [UInt8], options: SignOptions = .init(), keyVersion: Int = 0) throws(TransitError) -> SignResult
    {
        try checkSigningOptions(options)
        let number: Int
        switch keyVersion {
        case 0: number = config.latestVersion
        case ..<0: throw .signingVersionNegative
        case (config.latestVersion + 1)...: throw .signingVersionTooHigh
        case _ where config.minEncryptionVersion > 0 && keyVersion < config.minEncryptionVersion:
            throw .signingVersionTooLow
        default: number = keyVersion
        }
        let version = try self.version(number)

        let raw: [UInt8]
        var publicKey: String?
        switch type {
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            let signature = try version.ecdsaKey(type).sign(digest: signedDigest(input, options))
            raw = options.marshaling == .jws ? signature : TransitDER.ecdsaSignature(raw: signature)
        case .ed25519:
            let key: Curve25519.Signing.PrivateKey
            if config.derived {
                key = try derivedEd25519Key(version: version, context: options.context)
                publicKey = TransitBase64.encode(key.publicKey.rawRepresentation)
            } else {
                key = try Ed25519Material.privateKey(version.key)
            }
            do { raw = Array(try key.signature(for: input)) } catch {
                throw .internalError("Ed25519 signing failed: \(error)")
            }
        default:
            let rsa = try RSAKey(der: version.key)
            let digest = try signedDigest(input, options)
            let encoded: [UInt8]
            switch options.signatureAlgorithm {
            case .pss:
                try RSASignaturePadding.validate(
                    salt: options.saltLength, bits: rsa.bitCount, hash: options.hashAlgorithm)
                encoded = try RSASignaturePadding.pssEncode(
                    digest: digest, hash: options.hashAlgorithm, salt: options.saltLength, bits: rsa.bitCount)
            case .pkcs1v15:
                encoded = try RSASignaturePadding.pkcs1v15Encode(
                    digest: digest, hash: options.hashAlgorithm, byteCount: rsa.byteCount)
            }
            raw = try rsa.rawSign(encoded)
        }
        let encoded = options.marshaling == .jws ? TransitBase64.encodeRawURL(raw) : TransitBase64.encode(raw)
        return SignResult(
            signature: TransitCiphertext.encode(version: number, encoded: encoded), keyVersion: number,
            publicKey: publicKey)
    }

    /// Verifies a `vault:v<N>:…` signature over `input`. A well-formed signature that does not match returns
    /// false; malformed input, a bad version or options Vault refuses throw.
    func verify(_ input: [UInt8], signature: String, options: SignOptions = .init()) throws(TransitError) -> Bool {
        guard type.supportsSigning else { throw .unsupported("message verification", type) }
        try checkSigningOptions(options)
        let parsed = try TransitCiphertext(
            parsing: signature, kind: .signature, latestVersion: config.latestVersion,
            minDecryptionVersion: config.minDecryptionVersion)
        let bytes: [UInt8]
        do {
            bytes =
                options.marshaling == .jws
                ? try TransitBase64.decodeRawURL(parsed.encodedPayload)
                : try TransitBase64.decode(parsed.encodedPayload)
        } catch {
            throw .badRequest("invalid base64 signature value")
        }
        let version = try self.version(parsed.version)

        switch type {
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            let width = type.ecdsaScalarByteCount
            let raw: [UInt8]
            if options.marshaling == .jws {
                guard bytes.count % 2 == 0, bytes.count <= 2 * width else { return false }
                let half = bytes.count / 2
                let pad = [UInt8](repeating: 0, count: width - half)
                raw = pad + bytes[..<half] + pad + bytes[half...]
            } else {
                raw = try TransitDER.ecdsaRaw(signature: bytes, scalarByteCount: width)
            }
            return try version.ecdsaKey(type).isValid(rawSignature: raw, digest: signedDigest(input, options))
        case .ed25519:
            let publicKey =
                config.derived
                ? try derivedEd25519Key(version: version, context: options.context).publicKey
                : try Ed25519Material.privateKey(version.key).publicKey
            return publicKey.isValidSignature(bytes, for: input)
        default:
            let rsa = try RSAKey(der: version.key)
            let digest = try signedDigest(input, options)
            if options.signatureAlgorithm == .pss {
                try RSASignaturePadding.validate(
                    salt: options.saltLength, bits: rsa.bitCount, hash: options.hashAlgorithm)
            }
            guard let encoded = rsa.rawVerify(bytes) else { return false }
            switch options.signatureAlgorithm {
            case .pss:
                return RSASignaturePadding.pssVerify(
                    encoded: encoded, digest: digest, hash: options.hashAlgorithm, salt: options.saltLength,
                    bits: rsa.bitCount)
            case .pkcs1v15:
                guard
                    let expected = try? RSASignaturePadding.pkcs1v15Encode(
                        digest: digest, hash: options.hashAlgorithm, byteCount: rsa.byteCount)
                else { return false }
                return RSASignaturePadding.constantTimeEqual(expected, encoded)
            }
        }
    }

    private func checkSigningOptions(_ options: SignOptions) throws(TransitError) {
        guard type.supportsSigning else { throw .badRequest("key type \(type.rawValue) does not support signing") }
        if options.hashAlgorithm == .none, type.hashesSignatureInput,
            !options.prehashed || options.signatureAlgorithm != .pkcs1v15 || !type.isRSA
        {
            throw .badRequest("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
        }
    }

    /// What ECDSA/RSA sign: the input hashed with the requested algorithm, or the input itself when prehashed.
    private func signedDigest(_ input: [UInt8], _ options: SignOptions) throws(TransitError) -> [UInt8] {
        if options.prehashed {
            if type.isRSA, options.hashAlgorithm != .none, input.count != options.hashAlgorithm.digestByteCount {
                throw .badRequest("crypto/rsa: input must be hashed with given hash")
            }
            return input
        }
        return options.hashAlgorithm.digest(input)
    }

    private func derivedEd25519Key(
        version: TransitKeyVersion, context: [UInt8]?
    ) throws(TransitError)
        -> Curve25519.Signing.PrivateKey
    {
        guard let context, !context.isEmpty else {
            throw .badRequest("error deriving key: \(TransitError.missingContext.message)")
        }
        return try derivedEd25519(version: version, context: context)
    }
}
