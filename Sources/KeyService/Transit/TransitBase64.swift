/// Base64 as Vault's Go code speaks it: standard alphabet with padding for payloads, and unpadded URL-safe for
/// JWS signatures. Decoding errors carry Go's wording (`illegal base64 data at input byte N`), which Vault
/// passes through verbatim for bad `plaintext`, `context` or `input` fields.
enum TransitBase64 {
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Standard, padded (Go `base64.StdEncoding`).
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: standardAlphabet, pad: true)
    }

    /// URL-safe, unpadded (Go `base64.RawURLEncoding`).
    static func encodeRawURL(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: urlAlphabet, pad: false)
    }

    /// Decodes standard padded base64; CR and LF are skipped as Go does.
    static func decode(_ text: String) throws(TransitError) -> [UInt8] {
        try decode(text, alphabet: standardAlphabet, padded: true)
    }

    /// Decodes unpadded URL-safe base64.
    static func decodeRawURL(_ text: String) throws(TransitError) -> [UInt8] {
        try decode(text, alphabet: urlAlphabet, padded: false)
    }

    private static func encode(_ bytes: [UInt8], alphabet: [UInt8], pad: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            let b0 = UInt32(bytes[index])
            let b1 = count > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = count > 2 ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            for position in 0..<4 {
                if position <= count {
                    out.append(alphabet[Int(group >> (18 - 6 * UInt32(position)) & 0x3F)])
                } else if pad {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func decode(_ text: String, alphabet: [UInt8], padded: Bool) throws(TransitError) -> [UInt8] {
        var table = [Int8](repeating: -1, count: 256)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = Int8(value) }
        let input = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var quantum: [UInt32] = []
        var quantumStart = 0
        var index = 0
        func illegal(_ position: Int) -> TransitError { .badRequest("illegal base64 data at input byte \(position)") }

        while index < input.count {
            let symbol = input[index]
            if symbol == 0x0A || symbol == 0x0D { index += 1; continue }
            if quantum.isEmpty { quantumStart = index }
            if symbol == UInt8(ascii: "=") {
                guard padded, quantum.count >= 2 else { throw illegal(index) }
                let needed = 4 - quantum.count
                var seen = 0
                var position = index
                while position < input.count, seen < needed {
                    let next = input[position]
                    if next == 0x0A || next == 0x0D { position += 1; continue }
                    guard next == UInt8(ascii: "=") else { throw illegal(position) }
                    seen += 1
                    position += 1
                }
                guard seen == needed else { throw illegal(input.count) }
                while position < input.count, input[position] == 0x0A || input[position] == 0x0D { position += 1 }
                guard position == input.count else { throw illegal(position) }
                flush(quantum, into: &out)
                return out
            }
            let value = table[Int(symbol)]
            guard value >= 0 else { throw illegal(index) }
            quantum.append(UInt32(value))
            if quantum.count == 4 {
                flush(quantum, into: &out)
                quantum.removeAll(keepingCapacity: true)
            }
            index += 1
        }
        if !quantum.isEmpty {
            guard !padded, quantum.count >= 2 else { throw illegal(padded ? quantumStart : input.count) }
            flush(quantum, into: &out)
        }
        return out
    }

    private static func flush(_ quantum: [UInt32], into out: inout [UInt8]) {
        var group: UInt32 = 0
        for position in 0..<4 { group = group << 6 | (position < quantum.count ? quantum[position] : 0) }
        let produced = quantum.count - 1
        for position in 0..<produced { out.append(UInt8(truncatingIfNeeded: group >> (16 - 8 * UInt32(position)))) }
    }
}
