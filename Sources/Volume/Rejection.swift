import StrictJSON

/// A validation finding before the device path is attached: `field` has `found`, vhsm writes `expected`.
struct Rejection: Error, Equatable {
    var field: String
    var found: String
    var expected: String

    func error(path: String) -> VolumeError {
        .headerRejected(path: path, field: field, found: found, expected: expected)
    }
}

/// Reads one JSON object of the header, member by member, and refuses any member nobody asked for.
struct Fields {
    /// Where this object is, for messages: "segment 0", "keyslot 1 kdf", "token 0 (vhsm-snp)".
    let path: String
    private let members: [(key: String, value: JSON)]
    private var used: Set<String> = []

    init(_ value: JSON, path: String) throws(Rejection) {
        guard case .object(let members) = value else {
            throw Rejection(field: path, found: "a JSON \(value.kind)", expected: "an object")
        }
        self.path = path
        self.members = members
    }

    var keys: [String] { members.map(\.key) }

    private mutating func take(_ key: String) throws(Rejection) -> JSON {
        guard let value = members.first(where: { $0.key == key })?.value else {
            throw Rejection(field: "\(path) '\(key)'", found: "missing", expected: "present")
        }
        used.insert(key)
        return value
    }

    func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    mutating func value(_ key: String) throws(Rejection) -> JSON { try take(key) }

    mutating func object(_ key: String) throws(Rejection) -> Fields {
        try Fields(try take(key), path: "\(path) \(key)")
    }

    mutating func string(_ key: String) throws(Rejection) -> String {
        let value = try take(key)
        guard case .string(let text) = value else {
            throw Rejection(field: "\(path) \(key)", found: "a JSON \(value.kind)", expected: "a string")
        }
        return text
    }

    mutating func number(_ key: String) throws(Rejection) -> UInt64 {
        let value = try take(key)
        guard case .number(let number) = value else {
            throw Rejection(field: "\(path) \(key)", found: "a JSON \(value.kind)", expected: "a number")
        }
        return number
    }

    /// LUKS2 writes 64-bit sizes and offsets as decimal strings.
    mutating func decimal(_ key: String) throws(Rejection) -> UInt64 {
        let text = try string(key)
        guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), text == "0" || !text.hasPrefix("0"),
            let number = UInt64(text)
        else { throw Rejection(field: "\(path) \(key)", found: "'\(text)'", expected: "a decimal number") }
        return number
    }

    /// A token's `keyslots`: exactly one keyslot number.
    mutating func singleKeyslot() throws(Rejection) -> Int {
        let keyslots = try stringArray("keyslots")
        guard keyslots.count == 1 else {
            throw Rejection(field: "\(path) keyslots", found: "\(keyslots.count) keyslots", expected: "exactly one")
        }
        return try objectID(keyslots[0], what: "\(path) keyslot")
    }

    mutating func stringArray(_ key: String) throws(Rejection) -> [String] {
        let value = try take(key)
        guard case .array(let elements) = value else {
            throw Rejection(field: "\(path) \(key)", found: "a JSON \(value.kind)", expected: "an array")
        }
        var strings: [String] = []
        for element in elements {
            guard case .string(let text) = element else {
                throw Rejection(field: "\(path) \(key)", found: "a JSON \(element.kind)", expected: "strings")
            }
            strings.append(text)
        }
        return strings
    }

    /// `key` must be exactly `expected`.
    mutating func expect(_ key: String, _ expected: String, name: String? = nil) throws(Rejection) {
        let found = try string(key)
        guard found == expected else {
            throw Rejection(field: name ?? "\(path) \(key)", found: "'\(found)'", expected: expected)
        }
    }

    mutating func expect(_ key: String, _ expected: UInt64, name: String? = nil) throws(Rejection) {
        let found = try number(key)
        guard found == expected else {
            throw Rejection(field: name ?? "\(path) \(key)", found: String(found), expected: String(expected))
        }
    }

    /// Base64 of exactly `count` bytes.
    mutating func base64(_ key: String, count: Int) throws(Rejection) -> [UInt8] {
        let text = try string(key)
        guard let bytes = Encoding.unbase64(text), bytes.count == count else {
            throw Rejection(field: "\(path) \(key)", found: "'\(text)'", expected: "base64 of \(count) bytes")
        }
        return bytes
    }

    /// Lowercase hex of exactly `count` bytes.
    mutating func hex(_ key: String, count: Int) throws(Rejection) -> [UInt8] {
        let text = try string(key)
        guard let bytes = Encoding.unhex(text, count: count) else {
            throw Rejection(field: "\(path) \(key)", found: "'\(text)'", expected: "\(count * 2) lowercase hex digits")
        }
        return bytes
    }

    /// Refuses members that were never read: vhsm writes no others.
    func finish() throws(Rejection) {
        if let unknown = members.first(where: { !used.contains($0.key) }) {
            throw Rejection(field: path, found: "unknown key '\(unknown.key)'", expected: "only the keys vhsm writes")
        }
    }
}

/// A LUKS2 object id ("0" … "31"): canonical decimal.
func objectID(_ text: String, what: String) throws(Rejection) -> Int {
    guard let id = Int(text), id >= 0, id < 32, String(id) == text else {
        throw Rejection(field: "\(what) id", found: "'\(text)'", expected: "0 to 31")
    }
    return id
}
