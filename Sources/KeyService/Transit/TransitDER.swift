/// The few DER and PEM encodings Vault's formats need that swift-crypto does not produce itself: SEC 1
/// EC private keys, ECDSA `SEQUENCE { r, s }` signatures, and PKCS#1 `DigestInfo` prefixes.
enum TransitDER {
    static let oidP256: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    static let oidP384: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]
    static let oidP521: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23]

    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var remaining = count
        while remaining > 0 {
            bytes.insert(UInt8(truncatingIfNeeded: remaining), at: 0)
            remaining >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func tagged(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag] + length(content.count) + content }

    static func sequence(_ content: [UInt8]) -> [UInt8] { tagged(0x30, content) }

    static func octetString(_ content: [UInt8]) -> [UInt8] { tagged(0x04, content) }

    static func bitString(_ content: [UInt8]) -> [UInt8] { tagged(0x03, [0] + content) }

    /// A non-negative INTEGER from big-endian magnitude bytes (leading zeros dropped, sign byte added).
    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var bytes = Array(magnitude.drop(while: { $0 == 0 }))
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return tagged(0x02, bytes)
    }

    /// ECDSA-Sig-Value from a fixed-width `r ‖ s`.
    static func ecdsaSignature(raw: [UInt8]) -> [UInt8] {
        let half = raw.count / 2
        return sequence(integer(Array(raw[..<half])) + integer(Array(raw[half...])))
    }

    /// Parses ECDSA-Sig-Value into a fixed-width `r ‖ s`. Errors carry Vault's wording.
    static func ecdsaRaw(signature der: [UInt8], scalarByteCount: Int) throws(TransitError) -> [UInt8] {
        var reader = Reader(der)
        guard let body = reader.element(tag: 0x30) else { throw .badRequest("supplied signature is invalid") }
        guard reader.atEnd else { throw .badRequest("supplied signature contains extra data") }
        var inner = Reader(body)
        guard let r = inner.element(tag: 0x02), let s = inner.element(tag: 0x02), inner.atEnd,
            !r.isEmpty, !s.isEmpty, r[0] & 0x80 == 0, s[0] & 0x80 == 0
        else { throw .badRequest("supplied signature is invalid") }
        func fixed(_ value: [UInt8]) -> [UInt8]? {
            let trimmed = Array(value.drop(while: { $0 == 0 }))
            guard trimmed.count <= scalarByteCount else { return nil }
            return [UInt8](repeating: 0, count: scalarByteCount - trimmed.count) + trimmed
        }
        // Out-of-range r or s cannot verify; keep it well-formed so verify answers `valid: false`.
        return (fixed(r) ?? [UInt8](repeating: 0, count: scalarByteCount))
            + (fixed(s) ?? [UInt8](repeating: 0, count: scalarByteCount))
    }

    /// PEM armour with 64-column lines and a trailing newline, as Go's `pem.EncodeToMemory` writes it.
    static func pem(_ der: [UInt8], label: String) -> String {
        let body = TransitBase64.encode(der)
        var lines: [Substring] = []
        var start = body.startIndex
        while start < body.endIndex {
            let end = body.index(start, offsetBy: 64, limitedBy: body.endIndex) ?? body.endIndex
            lines.append(body[start..<end])
            start = end
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    /// A minimal DER reader: definite lengths only, which is all DER allows.
    struct Reader {
        private let bytes: [UInt8]
        private var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { offset == bytes.count }

        /// Reads one element with the given tag and returns its content, or nil when malformed.
        mutating func element(tag: UInt8) -> [UInt8]? {
            guard offset + 2 <= bytes.count, bytes[offset] == tag else { return nil }
            var position = offset + 1
            var count = Int(bytes[position])
            position += 1
            if count & 0x80 != 0 {
                let octets = count & 0x7F
                guard octets >= 1, octets <= 4, position + octets <= bytes.count, bytes[position] != 0 else {
                    return nil
                }
                count = 0
                for index in 0..<octets { count = count << 8 | Int(bytes[position + index]) }
                guard count >= 0x80 else { return nil }
                position += octets
            }
            guard count <= bytes.count - position else { return nil }
            offset = position + count
            return Array(bytes[position..<position + count])
        }
    }
}
