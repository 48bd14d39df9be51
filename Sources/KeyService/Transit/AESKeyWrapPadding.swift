import Crypto
import CryptoExtras

/// AES Key Wrap with Padding (RFC 5649), the inner layer of Vault's BYOK import blob.
///
/// swift-crypto only ships RFC 3394 (`AES.KeyWrap`, no padding), and BoringSSL's padded variant is not
/// reachable, so this is built on the single-block AES primitive `AES.permute` / `AES.inversePermute`.
enum AESKeyWrapPadding {
    /// The 32-bit constant that opens the alternative initial value (RFC 5649 §3).
    private static let magic: [UInt8] = [0xA6, 0x59, 0x59, 0xA6]

    /// Wraps `plaintext` (1 byte to 2³² − 1 bytes) under `key` (16, 24 or 32 bytes).
    static func wrap(_ plaintext: [UInt8], key: SymmetricKey) throws(KeyWrapError) -> [UInt8] {
        try checkKey(key)
        guard !plaintext.isEmpty, plaintext.count <= Int(UInt32.max) else {
            throw .badPlaintextLength(plaintext.count)
        }
        let length = UInt32(plaintext.count)
        let initialValue =
            magic + [
                UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
            ]
        let padded = plaintext + [UInt8](repeating: 0, count: (8 - plaintext.count % 8) % 8)

        if padded.count == 8 {
            var block = initialValue + padded
            try encryptBlock(&block, key: key)
            return block
        }

        var a = initialValue
        var r = stride(from: 0, to: padded.count, by: 8).map { Array(padded[$0..<$0 + 8]) }
        let n = r.count
        for j in 0..<6 {
            for i in 0..<n {
                var block = a + r[i]
                try encryptBlock(&block, key: key)
                a = Array(block[0..<8])
                xorCounter(&a, UInt64(n * j + i + 1))
                r[i] = Array(block[8..<16])
            }
        }
        return a + r.flatMap { $0 }
    }

    /// Unwraps a blob made by `wrap`. Any integrity failure (wrong key, tampering, bad padding) throws
    /// `.integrityCheckFailed` without saying which check failed.
    static func unwrap(_ wrapped: [UInt8], key: SymmetricKey) throws(KeyWrapError) -> [UInt8] {
        try checkKey(key)
        guard wrapped.count >= 16, wrapped.count % 8 == 0 else { throw .badWrappedLength(wrapped.count) }

        var a: [UInt8]
        var plaintext: [UInt8]
        if wrapped.count == 16 {
            var block = wrapped
            try decryptBlock(&block, key: key)
            a = Array(block[0..<8])
            plaintext = Array(block[8..<16])
        } else {
            a = Array(wrapped[0..<8])
            var r = stride(from: 8, to: wrapped.count, by: 8).map { Array(wrapped[$0..<$0 + 8]) }
            let n = r.count
            for j in (0..<6).reversed() {
                for i in (0..<n).reversed() {
                    xorCounter(&a, UInt64(n * j + i + 1))
                    var block = a + r[i]
                    try decryptBlock(&block, key: key)
                    a = Array(block[0..<8])
                    r[i] = Array(block[8..<16])
                }
            }
            plaintext = r.flatMap { $0 }
        }

        guard Array(a[0..<4]) == magic else { throw .integrityCheckFailed }
        let length = a[4..<8].reduce(0) { $0 << 8 | Int($1) }
        let paddedCount = plaintext.count
        guard length > paddedCount - 8, length <= paddedCount else { throw .integrityCheckFailed }
        guard plaintext[length...].allSatisfy({ $0 == 0 }) else { throw .integrityCheckFailed }
        plaintext.removeLast(paddedCount - length)
        return plaintext
    }

    private static func checkKey(_ key: SymmetricKey) throws(KeyWrapError) {
        guard [128, 192, 256].contains(key.bitCount) else { throw .badKeySize(key.bitCount / 8) }
    }

    /// XORs the big-endian 64-bit step counter `t` into the integrity register.
    private static func xorCounter(_ a: inout [UInt8], _ t: UInt64) {
        for index in 0..<8 { a[index] ^= UInt8(truncatingIfNeeded: t >> (56 - 8 * UInt64(index))) }
    }

    private static func encryptBlock(_ block: inout [UInt8], key: SymmetricKey) throws(KeyWrapError) {
        do { try AES.permute(&block, key: key) } catch { throw .integrityCheckFailed }
    }

    private static func decryptBlock(_ block: inout [UInt8], key: SymmetricKey) throws(KeyWrapError) {
        do { try AES.inversePermute(&block, key: key) } catch { throw .integrityCheckFailed }
    }
}

/// Why an RFC 5649 wrap or unwrap was refused.
enum KeyWrapError: Error, Equatable, Sendable, CustomStringConvertible {
    case badKeySize(Int)
    case badPlaintextLength(Int)
    case badWrappedLength(Int)
    case integrityCheckFailed

    var description: String {
        switch self {
        case .badKeySize(let bytes): "the key-wrapping key must be 16, 24 or 32 bytes, not \(bytes)"
        case .badPlaintextLength(let bytes): "cannot wrap \(bytes) bytes: the input must be at least 1 byte"
        case .badWrappedLength(let bytes):
            "a wrapped key must be a multiple of 8 bytes and at least 16 bytes long, this one is \(bytes)"
        case .integrityCheckFailed: "the wrapped key failed its integrity check (wrong key or corrupted data)"
        }
    }
}
