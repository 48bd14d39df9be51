import SNP
import StrictJSON

/// One configuration value on its way to a typed field; every conversion names the key and the source when
/// it refuses.
struct ConfigValue {
    var key: String
    var input: BootConfig.Input
    var source: String

    private func invalid(_ value: String, _ expected: String) -> ConfigError {
        .invalidValue(key: key, value: value, expected: expected, source: source)
    }

    private func wrongType(_ expected: String, _ actual: JSON) -> ConfigError {
        .wrongType(key: key, expected: expected, actual: actual.described, source: source)
    }

    /// A string from either source.
    func string() throws(ConfigError) -> String {
        switch input {
        case .json(.string(let text)): return text
        case .json(let other): throw wrongType("a string", other)
        case .text(let text?): return text
        case .text(nil): throw .missingValue(key: key, source: source)
        }
    }

    func choice<Choice: RawRepresentable & CaseIterable>(_: Choice.Type) throws(ConfigError) -> Choice
    where Choice.RawValue == String {
        let text = try string()
        guard let value = Choice(rawValue: text) else {
            throw invalid(text, "one of " + Choice.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))
        }
        return value
    }

    /// TCB_VERSION as 16 hex digits, the 8 bytes in report order (as `vhsm report show` prints them);
    /// `null` in the file: no minimum.
    func tcb() throws(ConfigError) -> TCBVersion? {
        if case .json(.null) = input { return nil }
        let text = try string()
        do throws(HexError) { return try TCBVersion(hex: text) } catch {
            throw invalid(text, "a TCB_VERSION: 16 hex digits, the 8 bytes in report order (e.g. 0300000000000873)")
        }
    }

    func boolean() throws(ConfigError) -> Bool {
        switch input {
        case .json(.bool(let value)): return value
        case .json(let other): throw wrongType("a boolean", other)
        case .text(nil): return true
        case .text(let text?):
            switch text {
            case "1", "true", "yes", "on", "y": return true
            case "0", "false", "no", "off", "n": return false
            default: throw invalid(text, "a boolean (true/false, 1/0, yes/no, on/off)")
            }
        }
    }

    func integer(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let value: Int?
        let shown: String
        switch input {
        case .json(.number(let number)):
            value = number <= UInt64(Int.max) ? Int(number) : nil
            shown = String(number)
        case .json(let other): throw wrongType("an integer", other)
        case .text(nil): throw .missingValue(key: key, source: source)
        case .text(let text?):
            value = Int(text)
            shown = text
        }
        guard let value, range.contains(value) else {
            throw invalid(shown, "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A list: a JSON array of strings, or comma-separated text.
    func list(separator: Character) throws(ConfigError) -> [String] {
        switch input {
        case .json(.array(let items)):
            var strings: [String] = []
            for item in items {
                guard case .string(let text) = item else { throw wrongType("an array of strings", item) }
                strings.append(text)
            }
            return strings
        case .json(let other): throw wrongType("an array of strings", other)
        case .text(nil): throw .missingValue(key: key, source: source)
        case .text(let text?):
            return text.split(separator: separator).map(String.init)
        }
    }

    func absolutePath() throws(ConfigError) -> String {
        let text = try string()
        guard text.hasPrefix("/"), !text.contains("\0"), !text.split(separator: "/").contains("..") else {
            throw invalid(text, "an absolute path without '..'")
        }
        return text
    }

    /// `/dev/…` or `UUID=` and a UUID.
    func volume() throws(ConfigError) -> String {
        let text = try string()
        if text.hasPrefix("UUID=") {
            guard VolumeUUID.isWellFormed(String(text.dropFirst(5))) else {
                throw invalid(text, "UUID= followed by a UUID (8-4-4-4-12 hex digits)")
            }
            return "UUID=" + text.dropFirst(5).lowercased()
        }
        guard text.hasPrefix("/dev/"), text.count > 5 else { throw invalid(text, "a /dev/… path or UUID=…") }
        return try absolutePath()
    }

    /// A device-mapper name: letters, digits, `_`, `-`, `.`; at most 127 bytes.
    func mapperName() throws(ConfigError) -> String {
        let text = try string()
        let allowed = text.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard allowed, !text.isEmpty, text.utf8.count <= 127, text != ".", text != ".." else {
            throw invalid(text, "a device-mapper name (letters, digits, '_', '-', '.')")
        }
        return text
    }

    /// A token without whitespace or '/': an interface name, a filesystem type, a module name.
    /// `uid:gid`, decimal, both from 1 to 2^32-2 (root is refused: the service never runs privileged).
    func serviceUser() throws(ConfigError) -> BootConfig.ServiceUser {
        let text = try string()
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
            let uid = UInt32(parts[0]), let gid = UInt32(parts[1]), uid > 0, gid > 0, uid < .max, gid < .max
        else { throw invalid(text, "'uid:gid', two numbers above 0 (not root), e.g. '8200:8200'") }
        return BootConfig.ServiceUser(uid: uid, gid: gid)
    }

    func word(maximumLength: Int = 64) throws(ConfigError) -> String {
        let text = try string()
        guard !text.isEmpty, text.utf8.count <= maximumLength,
            !text.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "\0" })
        else { throw invalid(text, "a name without spaces or '/' (at most \(maximumLength) bytes)") }
        return text
    }

    func interfaceName() throws(ConfigError) -> String {
        try word(maximumLength: 15)
    }

    func interfaceAddress() throws(ConfigError) -> IPv4Interface {
        let text = try string()
        guard let address = IPv4Interface(text) else { throw invalid(text, "an IPv4 address with prefix, a.b.c.d/n") }
        return address
    }

    func gateway() throws(ConfigError) -> IPv4Address? {
        if case .json(.null) = input { return nil }
        let text = try string()
        if text == "none" { return nil }
        guard let address = IPv4Address(text) else { throw invalid(text, "an IPv4 address or 'none'") }
        return address
    }

    func moduleNames() throws(ConfigError) -> [String] {
        let names = try list(separator: ",")
        for name in names {
            let bare = name.hasSuffix("?") ? String(name.dropLast()) : name
            guard !bare.isEmpty, !bare.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "?" }) else {
                throw invalid(name, "module names such as 'dm_crypt' (optional ones end in '?')")
            }
        }
        return names
    }

    /// Service arguments: a JSON array, or space-separated text (quote the whole value on the command line).
    func arguments() throws(ConfigError) -> [String] {
        try list(separator: " ")
    }

    func root() throws(ConfigError) -> String? {
        if case .json(.null) = input { return nil }
        let text = try string()
        if text == "volume" { return text }
        guard text.hasPrefix("/dev/") else { throw invalid(text, "a /dev/… path or 'volume'") }
        return try absolutePath()
    }

    /// A digest of exactly `bytes` bytes as hex (either case); `null` in the file: not set.
    func hexDigest(bytes: Int) throws(ConfigError) -> [UInt8]? {
        if case .json(.null) = input { return nil }
        let text = try string()
        do throws(HexError) { return try Hex.decode(text, count: bytes) } catch {
            throw invalid(
                text, "\(bytes * 2) hex digits (a SHA-256 root hash as veritysetup format prints it); it \(error)")
        }
    }

    /// A salt as hex of at most `maximumBytes` bytes; `-` (veritysetup's spelling) or an empty string: no salt.
    /// `null` in the file: not set.
    func salt(maximumBytes: Int) throws(ConfigError) -> [UInt8]? {
        if case .json(.null) = input { return nil }
        let text = try string()
        if text == "-" || text.isEmpty { return [] }
        let expected = "hex of at most \(maximumBytes) bytes, or '-' for no salt (as veritysetup format prints it)"
        let bytes: [UInt8]
        do throws(HexError) { bytes = try Hex.decode(text) } catch { throw invalid(text, "\(expected); it \(error)") }
        guard bytes.count <= maximumBytes else { throw invalid(text, expected) }
        return bytes
    }

    /// An integer in `range` and a multiple of `multipleOf`; `null` in the file: not set.
    func optionalInteger(in range: ClosedRange<Int>, multipleOf: Int = 1) throws(ConfigError) -> Int? {
        if case .json(.null) = input { return nil }
        let value = try integer(in: range)
        guard value % multipleOf == 0 else {
            throw invalid(String(value), "a multiple of \(multipleOf) from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A `/dev/…` path; `null` in the file: not set.
    func devicePath() throws(ConfigError) -> String? {
        if case .json(.null) = input { return nil }
        let text = try string()
        guard text.hasPrefix("/dev/"), text.count > 5 else { throw invalid(text, "a /dev/… path") }
        return try absolutePath()
    }

    func pem() throws(ConfigError) -> String? {
        if case .json(.null) = input { return nil }
        let text = try string()
        guard let begin = text.firstRange(of: "-----BEGIN "), let end = text.firstRange(of: "-----END "),
            begin.upperBound <= end.lowerBound
        else { throw invalid(String(text.prefix(24)) + "…", "a PEM public key (-----BEGIN … -----END …)") }
        return text
    }
}

extension JSON {
    /// What the value is, for messages: `a string`, `an object`.
    var described: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
