/// Base64 as Vault's Go code speaks it: standard alphabet with padding for payloads, and unpadded URL-safe for
/// JWS signatures. Decoding errors carry Go's wording (`illegal base64 data at input byte N`), which Vault
/// passes through verbatim for bad `plaintext`, `context` or `input` fields.
package enum TransitBase64 {
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Standard, padded (Go `base64.StdEncoding`).
    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: standardAlphabet, pad: true)
    }

    /// URL-safe, unpadded (Go `base64.RawURLEncoding`).
    package static func encodeRawURL(_ bytes: some Collection<UInt8>) -> String {
        encode(Array(bytes), alphabet: urlAlphabet, pad: false)
    }

    /// Decodes standard padded base64; CR and LF are skipped as Go does.
    package static func decode(_ text: String) throws(TransitError) -> [UInt8] {
        try decode(text, alphabet: standardAlphabet, padded: true)
    }

    /// Decodes unpadded URL-safe base64.
    package static func decodeRawURL(_ text: String) throws(TransitError) -> [UInt8] {
        try decode(text, alphabet: urlAlphabet, padded: false)
    }

    private static let standardTable = table(standardAlphabet)
    private static let urlTable = table(urlAlphabet)

    /// Symbol → 6-bit value, -1 for bytes outside the alphabet.
    private static func table(_ alphabet: [UInt8]) -> [Int8] {
        var table = [Int8](repeating: -1, count: 256)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = Int8(value) }
        return table
    }

    private static func encode(_ bytes: [UInt8], alphabet: [UInt8], pad: Bool) -> String {
        let rest = bytes.count % 3
        let length = bytes.count / 3 * 4 + (rest == 0 ? 0 : pad ? 4 : rest + 1)
        return String(unsafeUninitializedCapacity: length) { out in
            alphabet.withUnsafeBufferPointer { symbols in
                bytes.withUnsafeBufferPointer { input in
                    func symbol(_ group: UInt32, _ shift: UInt32) -> UInt8 { symbols[Int(group >> shift & 0x3F)] }
                    var written = 0
                    var index = 0
                    while index + 3 <= input.count {
                        let group =
                            UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                        out[written] = symbol(group, 18)
                        out[written + 1] = symbol(group, 12)
                        out[written + 2] = symbol(group, 6)
                        out[written + 3] = symbol(group, 0)
                        written += 4
                        index += 3
                    }
                    if rest > 0 {
                        let group = UInt32(input[index]) << 16 | (rest == 2 ? UInt32(input[index + 1]) << 8 : 0)
                        out[written] = symbol(group, 18)
                        out[written + 1] = symbol(group, 12)
                        written += 2
                        if rest == 2 {
                            out[written] = symbol(group, 6)
                            written += 1
                        }
                        if pad {
                            for _ in rest..<3 {
                                out[written] = UInt8(ascii: "=")
                                written += 1
                            }
                        }
                    }
                    return written
                }
            }
        }
    }

    private static func decode(_ text: String, alphabet: [UInt8], padded: Bool) throws(TransitError) -> [UInt8] {
        let table = alphabet == standardAlphabet ? standardTable : urlTable
        let input = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        // The quantum being read: up to four 6-bit values, most significant first.
        var group: UInt32 = 0
        var count = 0
        var quantumStart = 0
        var index = 0
        func illegal(_ position: Int) -> TransitError { .badRequest("illegal base64 data at input byte \(position)") }

        while index < input.count {
            let symbol = input[index]
            if symbol == 0x0A || symbol == 0x0D {
                index += 1
                continue
            }
            if count == 0 { quantumStart = index }
            if symbol == UInt8(ascii: "=") {
                guard padded, count >= 2 else { throw illegal(index) }
                let needed = 4 - count
                var seen = 0
                var position = index
                while position < input.count, seen < needed {
                    let next = input[position]
                    if next == 0x0A || next == 0x0D {
                        position += 1
                        continue
                    }
                    guard next == UInt8(ascii: "=") else { throw illegal(position) }
                    seen += 1
                    position += 1
                }
                guard seen == needed else { throw illegal(input.count) }
                while position < input.count, input[position] == 0x0A || input[position] == 0x0D { position += 1 }
                guard position == input.count else { throw illegal(position) }
                flush(group, count: count, into: &out)
                return out
            }
            let value = table[Int(symbol)]
            guard value >= 0 else { throw illegal(index) }
            group = group << 6 | UInt32(value)
            count += 1
            if count == 4 {
                flush(group, count: 4, into: &out)
                group = 0
                count = 0
            }
            index += 1
        }
        if count > 0 {
            guard !padded, count >= 2 else { throw illegal(padded ? quantumStart : input.count) }
            flush(group, count: count, into: &out)
        }
        return out
    }

    /// Appends the `count - 1` bytes a quantum of `count` symbols (2…4) carries.
    private static func flush(_ group: UInt32, count: Int, into out: inout [UInt8]) {
        let aligned = group << (6 * UInt32(4 - count))
        for position in 0..<(count - 1) {
            out.append(UInt8(truncatingIfNeeded: aligned >> (16 - 8 * UInt32(position))))
        }
    }
}
