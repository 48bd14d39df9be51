import Crypto
import FoundationEssentials

/// The stored form of one value under the barrier:
///
///     term u32 BE ‖ nonce 12 ‖ ciphertext ‖ tag 16
///
/// AES-256-GCM with the key of `term` and the storage path's UTF-8 bytes as associated data, so a
/// value copied to another path, or altered in any bit, fails to open.
enum BarrierFrame {
    static let termSize = 4
    static let nonceSize = 12
    static let tagSize = 16
    /// Bytes added to every plaintext.
    static let overhead = termSize + nonceSize + tagSize

    /// Seals `plaintext` for `path` under `term`'s `key`, with a fresh random nonce.
    static func seal(_ plaintext: [UInt8], path: String, term: UInt32, key: SymmetricKey) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(path.utf8))
        var frame = [UInt8]()
        frame.reserveCapacity(overhead + plaintext.count)
        frame.append(contentsOf: withUnsafeBytes(of: term.bigEndian, Array.init))
        frame.append(contentsOf: box.nonce)
        frame.append(contentsOf: box.ciphertext)
        frame.append(contentsOf: box.tag)
        return frame
    }

    /// The key term a stored frame was sealed under.
    static func term(of frame: [UInt8], path: String) throws(BarrierError) -> UInt32 {
        guard frame.count >= overhead else { throw .truncated(path: path, count: frame.count) }
        return frame[0..<termSize].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Opens a frame read from `path` with the key of its term.
    static func open(_ frame: [UInt8], path: String, key: SymmetricKey) throws(BarrierError) -> [UInt8] {
        let term = try term(of: frame, path: path)
        do {
            let nonce = try AES.GCM.Nonce(data: frame[termSize..<(termSize + nonceSize)])
            let box = try AES.GCM.SealedBox(
                nonce: nonce,
                ciphertext: frame[(termSize + nonceSize)..<(frame.count - tagSize)],
                tag: frame[(frame.count - tagSize)...]
            )
            var plaintext = try AES.GCM.open(box, using: key, authenticating: Array(path.utf8))
            defer { plaintext.zeroize() }
            return Array(plaintext)
        } catch {
            throw .tampered(path: path, term: term)
        }
    }
}
