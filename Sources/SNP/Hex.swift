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
    /// Errors count characters as typed (not UTF-8 bytes), from 1, and name the character refused.
    public static func decode(_ text: String, count: Int? = nil) throws(HexError) -> [UInt8] {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        // The README (and vhsm's own output) shortens long values as `5a5a…5a`: such a value cannot be decoded.
        if digits.contains("…") || digits.contains("...") { throw .shortened }
        var out: [UInt8] = []
        out.reserveCapacity(digits.utf8.count / 2)
        var high: UInt8?
        var position = text.count - digits.count
        for character in digits {
            position += 1
            guard character.isASCII, let ascii = character.asciiValue, let nibble = value(ascii) else {
                throw .notHex(character: String(character), position: position)
            }
            if let first = high {
                out.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw .oddLength(digits.count) }
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
    /// `character` at `position` (counted in characters from 1, the `0x` prefix included) is not a hex digit.
    case notHex(character: String, position: Int)
    case wrongLength(expected: Int, actual: Int)
    /// The value holds `…` or `...`: a long value shortened for display, not the value itself.
    case shortened

    public var description: String {
        switch self {
        case .oddLength(let digits): "has an odd number of hex digits (\(digits))"
        case .notHex(let character, let position):
            "has \(Self.quoted(character)) at character \(position), which is not a hex digit (0-9, a-f)"
        case .shortened:
            "is shortened with '…' (as long values are printed for reading); give the whole value, every hex digit"
        case .wrongLength(let expected, let actual):
            "must be \(expected) bytes (\(expected * 2) hex digits), got \(actual) bytes"
        }
    }

    /// A character as it can be read in a sentence: quoted, or named when it is white space or invisible.
    static func quoted(_ character: String) -> String {
        switch character {
        case " ": "a space"
        case "\t": "a tab"
        case "\n", "\r\n", "\r": "a line break"
        default:
            character.unicodeScalars.allSatisfy({
                $0.properties.isWhitespace || $0.properties.generalCategory == .format
            })
                ? "U+"
                    + character.unicodeScalars.map { String($0.value, radix: 16, uppercase: true) }.joined(
                        separator: " U+")
                : "'\(character)'"
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
