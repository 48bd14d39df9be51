public import Crypto

/// ID_AUTH_INFO (0x1000 bytes): the ID key's signature over the ID block, the ID key, and optionally the
/// author key with its signature over the ID key structure.
///
/// | offset | size  | field                                   |
/// |--------|-------|-----------------------------------------|
/// | 0x000  | 4     | ID_KEY_ALGO (1 = ECDSA P-384 SHA-384)   |
/// | 0x004  | 4     | AUTH_KEY_ALGO                           |
/// | 0x008  | 0x38  | reserved                                |
/// | 0x040  | 0x200 | ID_BLOCK_SIG                            |
/// | 0x240  | 0x404 | ID_KEY                                  |
/// | 0x644  | 0x3C  | reserved                                |
/// | 0x680  | 0x200 | ID_KEY_SIG (by the author key)          |
/// | 0x880  | 0x404 | AUTHOR_KEY                              |
/// | 0xC84  | 0x37C | reserved                                |
///
/// An all-zero ID_KEY_SIG or AUTHOR_KEY reads as `nil`, and `nil` is written as zeros, so
/// `try IDAuthentication(bytes: b).bytes == b` for every `b` whose reserved bytes are zero.
public struct IDAuthentication: Hashable, Sendable {
    public static let byteCount = 0x1000
    /// ID_KEY_ALGO / AUTH_KEY_ALGO value for ECDSA P-384 with SHA-384, the only one defined.
    public static let ecdsaP384SHA384: UInt32 = 1

    public var idKeyAlgorithm: UInt32  // 0x000
    public var authorKeyAlgorithm: UInt32  // 0x004; reserved 0x008 (0x38)
    public var idBlockSignature: SEVSignature  // 0x040
    public var idKey: SEVPublicKey  // 0x240; reserved 0x644 (0x3C)
    public var idKeySignature: SEVSignature?  // 0x680; nil = all zero
    public var authorKey: SEVPublicKey?  // 0x880; nil = all zero; reserved 0xC84 (0x37C)

    public init(
        idKeyAlgorithm: UInt32 = IDAuthentication.ecdsaP384SHA384,
        authorKeyAlgorithm: UInt32 = IDAuthentication.ecdsaP384SHA384, idBlockSignature: SEVSignature,
        idKey: SEVPublicKey, idKeySignature: SEVSignature? = nil, authorKey: SEVPublicKey? = nil
    ) {
        self.idKeyAlgorithm = idKeyAlgorithm
        self.authorKeyAlgorithm = authorKeyAlgorithm
        self.idBlockSignature = idBlockSignature
        self.idKey = idKey
        self.idKeySignature = idKeySignature
        self.authorKey = authorKey
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "ID_AUTH_INFO", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        idKeyAlgorithm = try r.integer()
        authorKeyAlgorithm = try r.integer()
        try r.reserved(0x38)
        idBlockSignature = try SEVSignature(from: &r)
        idKey = try SEVPublicKey(from: &r)
        try r.reserved(0x3C)
        let keySignature = try SEVSignature(from: &r)
        idKeySignature = keySignature.isZero ? nil : keySignature
        let author = try SEVPublicKey(from: &r)
        authorKey = author.isZero ? nil : author
        try r.reserved(0x37C)
    }

    /// The 4096 bytes QEMU passes to SNP_LAUNCH_FINISH (base64 in `sev-snp-guest,id-auth=`).
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.integer(idKeyAlgorithm)
        w.integer(authorKeyAlgorithm)
        w.reserved(0x38)
        idBlockSignature.write(to: &w)
        idKey.write(to: &w)
        w.reserved(0x3C)
        (idKeySignature ?? SEVSignature()).write(to: &w)
        if let authorKey {
            authorKey.write(to: &w)
        } else {
            w.reserved(SEVPublicKey.byteCount)
        }
        w.reserved(0x37C)
        return w.bytes
    }

    /// What the report shows as ID_KEY_DIGEST: SHA-384 of the ID key structure.
    public var idKeyDigest: [UInt8] { idKey.digest }

    /// What the report shows as AUTHOR_KEY_DIGEST when the author key is enabled; zeros without an author key.
    public var authorKeyDigest: [UInt8] { authorKey?.digest ?? Array(repeating: 0, count: 48) }

    /// Signs `block` with the ID key, and the ID key structure with the author key when given. Both algorithm
    /// fields are 1 (ECDSA P-384 with SHA-384); ECDSA is randomized, so the signatures differ on every call.
    public static func sign(
        _ block: IDBlock, idKey: P384.Signing.PrivateKey, authorKey: P384.Signing.PrivateKey?
    ) throws -> IDAuthentication {
        try block.validateFieldSizes()
        let idKeyStructure = SEVPublicKey(idKey.publicKey)
        var auth = IDAuthentication(
            idBlockSignature: SEVSignature(try idKey.signature(for: block.bytes)), idKey: idKeyStructure)
        if let authorKey {
            auth.idKeySignature = SEVSignature(try authorKey.signature(for: idKeyStructure.bytes))
            auth.authorKey = SEVPublicKey(authorKey.publicKey)
        }
        return auth
    }

    /// Checks what the firmware checks at SNP_LAUNCH_FINISH: the ID block's VERSION is 1, the algorithms are 1,
    /// the ID block signature by the ID key, and (when an author key is present) the ID-key signature by the
    /// author key. Returns every problem (empty = valid). LD and POLICY against the launch are the caller's.
    public func problems(for block: IDBlock) -> [String] {
        var found: [String] = []
        if block.version != IDBlock.currentVersion {
            found.append("ID block VERSION is \(block.version); the firmware accepts only \(IDBlock.currentVersion)")
        }
        if idKeyAlgorithm != Self.ecdsaP384SHA384 {
            found.append("ID_KEY_ALGO is \(idKeyAlgorithm); only 1 (ECDSA P-384 with SHA-384) is defined")
        }
        found += Self.signatureProblems(
            idBlockSignature, by: idKey, over: block.bytes, signature: "ID_BLOCK_SIG", key: "ID_KEY",
            message: "the ID block")

        switch (authorKey, idKeySignature) {
        case (nil, nil):
            break
        case (nil, .some):
            found.append("ID_KEY_SIG is set but AUTHOR_KEY is all zero: nothing to check the signature with")
        case (.some(let authorKey), let signature):
            if authorKeyAlgorithm != Self.ecdsaP384SHA384 {
                found.append("AUTH_KEY_ALGO is \(authorKeyAlgorithm); only 1 (ECDSA P-384 with SHA-384) is defined")
            }
            if let signature {
                found += Self.signatureProblems(
                    signature, by: authorKey, over: idKey.bytes, signature: "ID_KEY_SIG", key: "AUTHOR_KEY",
                    message: "the ID key structure")
            } else {
                found.append("ID_KEY_SIG is all zero although AUTHOR_KEY is present: the ID key is not signed")
            }
        }
        return found
    }

    private static func signatureProblems(
        _ signature: SEVSignature, by key: SEVPublicKey, over message: [UInt8], signature name: String,
        key keyName: String, message messageName: String
    ) -> [String] {
        let publicKey: P384.Signing.PublicKey
        do { publicKey = try key.p384() } catch { return ["\(keyName) \(error)"] }
        let ecdsa: P384.Signing.ECDSASignature
        do { ecdsa = try signature.p384() } catch { return ["\(name) \(error)"] }
        guard publicKey.isValidSignature(ecdsa, for: message) else {
            return ["\(name) does not verify over \(messageName) with \(keyName)"]
        }
        return []
    }
}
