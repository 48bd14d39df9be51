public import Crypto
public import Sealing

/// The two secrets one volume needs, derived from the SNP sealing key:
///
/// - `passphrase` = base64(HKDF-SHA256(ikm: sealingKey, salt: UTF-8 of the lowercase volume UUID,
///   info: "vhsm/luks/" + mode, 32 bytes)): 44 ASCII bytes, the machine keyslot's passphrase.
/// - `macKey` = HKDF-SHA256(same ikm and salt, info: "vhsm/luks-mac/" + mode, 32 bytes): keys the `vhsm-snp`
///   token's HMAC over the header parameters.
///
/// Both live in `SymmetricKey`s, whose storage swift-crypto zeroes when released; the intermediate buffers are
/// zeroed here. The sealing key itself belongs to the caller, who zeroes it.
public struct VolumeKeys: Sendable {
    public let volumeUUID: String
    public let mode: SealMode
    /// The keyslot passphrase (base64 text as bytes, no terminator).
    public let passphrase: SymmetricKey
    /// The token-MAC key.
    public let macKey: SymmetricKey

    /// HKDF output size before base64.
    public static let derivedByteCount = 32

    /// `volumeUUID` is used in its lowercase form (libcryptsetup may print it in upper case).
    public static func derive(sealingKey: [UInt8], volumeUUID: String, mode: SealMode) -> VolumeKeys {
        let volumeUUID = volumeUUID.lowercased()
        let ikm = SymmetricKey(data: sealingKey)
        let salt = Array(volumeUUID.utf8)
        let raw = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, salt: salt, info: Array("vhsm/luks/\(mode.rawValue)".utf8),
            outputByteCount: derivedByteCount)
        let mac = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, salt: salt, info: Array("vhsm/luks-mac/\(mode.rawValue)".utf8),
            outputByteCount: derivedByteCount)
        var rawBytes = raw.withUnsafeBytes { Array($0) }
        var text = Encoding.base64(rawBytes)
        defer {
            Encoding.zero(&rawBytes)
            Encoding.zero(&text)
        }
        return VolumeKeys(
            volumeUUID: volumeUUID, mode: mode, passphrase: SymmetricKey(data: text), macKey: mac)
    }

    /// Calls `body` with the passphrase bytes (44 ASCII characters, no terminator); do not keep them.
    public func withPassphraseBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try passphrase.withUnsafeBytes(body)
    }

    /// Keys from an already-known passphrase (the recovery key, or tests).
    init(volumeUUID: String, mode: SealMode, passphrase: SymmetricKey, macKey: SymmetricKey) {
        self.volumeUUID = volumeUUID
        self.mode = mode
        self.passphrase = passphrase
        self.macKey = macKey
    }
}

/// Random 256-bit recovery key; its keyslot passphrase is base64 of the key (44 ASCII bytes), like machine keys.
public struct RecoveryKey: Sendable {
    public static let byteCount = 32
    /// The raw key, as HPKE encrypts it.
    public let key: SymmetricKey
    /// The keyslot passphrase: base64 of `key`, as bytes.
    public let passphrase: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
        var raw = key.withUnsafeBytes { Array($0) }
        var text = Encoding.base64(raw)
        defer {
            Encoding.zero(&raw)
            Encoding.zero(&text)
        }
        passphrase = SymmetricKey(data: text)
    }

    /// Calls `body` with the keyslot passphrase bytes (44 ASCII characters, no terminator); do not keep them.
    public func withPassphraseBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try passphrase.withUnsafeBytes(body)
    }

    static func generate() -> RecoveryKey { RecoveryKey(key: SymmetricKey(size: .bits256)) }
}
