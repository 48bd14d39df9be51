/// Lower-case hexadecimal, the form reports, keys and digests are printed and typed in.
public enum Hex {
    /// Encodes bytes as lower-case hex without separators.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0x0F))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The lower-case ASCII hex digit for a value below 16.
    @inline(__always) static func digit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x57 + value }

    /// Decodes hex (upper or lower case, optional `0x` prefix). `count`, when given, is the required byte count.
    public static func decode(_ text: String, count: Int? = nil) throws(HexError) -> [UInt8] {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        let utf8 = Array(digits.utf8)
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else {
                throw .notHex(position: index)
            }
            out.append(high << 4 | low)
            index += 2
        }
        if let count, out.count != count { throw .wrongLength(expected: count, actual: out.count) }
        return out
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Why a hex string was refused.
public enum HexError: Error, Equatable, Sendable, CustomStringConvertible {
    case oddLength(Int)
    case notHex(position: Int)
    case wrongLength(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .oddLength(let digits): "has an odd number of hex digits (\(digits))"
        case .notHex(let position): "has a character that is not a hex digit at position \(position)"
        case .wrongLength(let expected, let actual):
            "must be \(expected) bytes (\(expected * 2) hex digits), got \(actual) bytes"
        }
    }
}

extension Hex {
    /// The 8-4-4-4-12 lower-case hex form of 16 bytes (a GUID or UUID in byte order).
    public static func uuid(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16, "a UUID is 16 bytes")
        return String(unsafeUninitializedCapacity: 36) { out in
            var at = 0
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[at] = UInt8(ascii: "-")
                    at += 1
                }
                out[at] = digit(byte >> 4)
                out[at + 1] = digit(byte & 0x0F)
                at += 2
            }
            return at
        }
    }

    /// A random (version 4, RFC 9562 variant) UUID made from 16 random bytes.
    public static func randomUUID(from random: [UInt8]) -> String {
        var bytes = random
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        return uuid(bytes)
    }
}
