import FoundationEssentials

/// A JSON value as Vault clients send it: `null` means absent, numbers and booleans may arrive as strings.
package enum JSONValue: Equatable, Sendable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a request body; an empty body is an empty object.
    static func parse(_ bytes: [UInt8]) throws(VaultError) -> JSONValue {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        do { return try JSONParser.parse(bytes) } catch {
            throw .badRequest("failed to parse JSON input: the request body is not valid JSON")
        }
    }

    /// Serialises compactly, keys sorted (stable output for tests and audit lines).
    package var serialized: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .double(let value):
            out.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal, byte by byte over the UTF-8 (bytes of multi-byte characters are copied as they are).
    private static func writeString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            guard bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                out.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                case UInt8(ascii: "\r"): out.append(contentsOf: "\\r".utf8)
                case UInt8(ascii: "\t"): out.append(contentsOf: "\\t".utf8)
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The members of an object (empty for anything else).
    var objectMembers: [String: JSONValue] {
        if case .object(let members) = self { return members }
        return [:]
    }

    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self, let value = members[key], value != .null else { return nil }
        return value
    }
}

/// Typed access to request fields, with Vault's leniency (strings for numbers and booleans, duration strings).
extension JSONValue {
    func string(_ key: String) throws(VaultError) -> String? {
        guard let value = self[key] else { return nil }
        guard let text = value.text else { throw .badRequest("field '\(key)' must be a string") }
        return text
    }

    /// A string, or an integer or boolean in its text form (Vault's maps of strings take those); nil otherwise.
    var text: String? {
        switch self {
        case .string(let value): value
        case .int(let value): String(value)
        case .bool(let value): String(value)
        default: nil
        }
    }

    func bool(_ key: String) throws(VaultError) -> Bool? {
        switch self[key] {
        case nil: return nil
        case .bool(let value)?: return value
        case .string(let text)?:
            guard let value = VaultRequest.parseBool(text) else {
                throw .badRequest("field '\(key)' must be a boolean")
            }
            return value
        case .int(let value)?: return value != 0
        default: throw .badRequest("field '\(key)' must be a boolean")
        }
    }

    /// An integer from a JSON integer, an integral JSON number inside Int64 (`5.0`, not `1e30`) or a decimal string.
    func int(_ key: String) throws(VaultError) -> Int64? {
        switch self[key] {
        case nil: return nil
        case .int(let value)?: return value
        case .double(let value)?:
            guard let exact = Int64(exactly: value) else {
                throw .badRequest("field '\(key)' must be an integer from \(Int64.min) to \(Int64.max), not \(value)")
            }
            return exact
        case .string(let text)?:
            guard let value = Int64(text) else {
                throw .badRequest("field '\(key)' must be an integer from \(Int64.min) to \(Int64.max)")
            }
            return value
        default: throw .badRequest("field '\(key)' must be an integer")
        }
    }

    /// The longest duration Vault takes, in seconds: Go's `time.Duration` counts nanoseconds in an Int64 (about
    /// 292 years), and OpenBao refuses anything longer with 400. Every duration a request gives (TTLs, periods,
    /// increments, wrap TTLs) is within ±this, so `seconds * 1_000_000_000` and `now + seconds` cannot overflow.
    package static let maximumDurationSeconds: Int64 = Int64.max / 1_000_000_000

    /// Seconds from an integer or a Go duration string (`90`, `"90s"`, `"10m"`, `"1h30m"`, `"24h"`), within
    /// ±`maximumDurationSeconds`.
    func duration(_ key: String) throws(VaultError) -> Int64? {
        switch self[key] {
        case nil: return nil
        case .int(let value)?:
            guard Self.isDurationInRange(value) else {
                throw .badRequest(
                    "field '\(key)': \(value) seconds is outside the durations Vault takes "
                        + "(at most \(Self.maximumDurationSeconds) seconds, about 292 years)")
            }
            return value
        case .string(let text)?:
            guard let seconds = Self.parseDuration(text) else {
                throw .badRequest(
                    "field '\(key)': invalid duration '\(text)' (expected seconds or a Go duration such as '90s', "
                        + "'1h30m', at most \(Self.maximumDurationSeconds) seconds)")
            }
            return seconds
        default: throw .badRequest("field '\(key)' must be a duration")
        }
    }

    static func isDurationInRange(_ seconds: Int64) -> Bool {
        (-maximumDurationSeconds...maximumDurationSeconds).contains(seconds)
    }

    /// Seconds (truncated) from plain seconds or a Go duration string; nil when malformed or outside
    /// ±`maximumDurationSeconds` (Go's `time.ParseDuration` overflows there too).
    package static func parseDuration(_ text: String) -> Int64? {
        if let plain = Int64(text) { return isDurationInRange(plain) ? plain : nil }
        var total: Double = 0
        var number = ""
        var unit = ""
        func flush() -> Bool {
            guard let value = Double(number), value.isFinite else { return false }
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return false
            }
            total += value * scale
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if character.isASCII, character.isNumber || character == "." {
                if !unit.isEmpty, !flush() { return nil }
                number.append(character)
            } else {
                unit.append(character)
            }
        }
        guard !number.isEmpty, flush() else { return nil }
        // Double(maximumDurationSeconds) is exact (below 2^53), and the comparison refuses NaN and infinities.
        guard total <= Double(maximumDurationSeconds) else { return nil }
        return Int64(total)
    }
}
