internal import FoundationEssentials
public import StrictJSON

/// The armored text every vhsm blob uses: base64 (64 columns) of one JSON object between
/// `-----BEGIN <LABEL>-----` and `-----END <LABEL>-----` lines, ending in a newline. Text around the armor lines
/// is ignored, so a console excerpt (CRLF line ends included) or a JSON answer whose `\n` escapes were turned back
/// into line breaks can be given.
public enum Armor {
    public static func begin(_ label: String) -> String { "-----BEGIN \(label)-----" }
    public static func end(_ label: String) -> String { "-----END \(label)-----" }

    /// The armored text of `json`.
    public static func wrap(_ json: JSON, label: String) -> String {
        let base64 = Data(json.serialized.utf8).base64EncodedString()
        var lines = [begin(label)]
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append(end(label))
        return lines.joined(separator: "\n") + "\n"
    }

    /// The JSON object inside the first `label` block of `text`; `what` names the blob in errors.
    public static func unwrap(_ text: String, label: String, what: String) throws(SealingError) -> ArmoredFields {
        guard let first = text.firstRange(of: begin(label)),
            let last = text[first.upperBound...].firstRange(of: end(label))
        else {
            throw SealingError("the \(what) has no \(begin(label)) … \(end(label)) block")
        }
        let base64 = text[first.upperBound..<last.lowerBound].filter { !$0.isWhitespace }
        guard let body = Data(base64Encoded: String(base64)) else {
            throw SealingError("the \(what) is not valid base64 between its armor lines")
        }
        let json: JSON
        do { json = try JSON.parse(Array(body)) } catch {
            throw SealingError("the \(what) does not hold JSON: \(error)")
        }
        guard case .object(let members) = json else { throw SealingError("the \(what) is not a JSON object") }
        return ArmoredFields(members: members, what: what)
    }
}

/// The members of an armored blob's JSON object, read with checks that name the blob and the field.
public struct ArmoredFields: Sendable {
    public let members: [(key: String, value: JSON)]
    public let what: String

    public subscript(key: String) -> JSON? { members.first { $0.key == key }?.value }

    /// Refuses any member not in `known`.
    public func only(_ known: [String]) throws(SealingError) {
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw SealingError("the \(what) has an unknown field '\(unknown.key)'")
        }
    }

    public func string(_ key: String) throws(SealingError) -> String {
        guard case .string(let value)? = self[key] else {
            throw SealingError("the \(what) has no string field '\(key)'")
        }
        return value
    }

    public func number(_ key: String) throws(SealingError) -> UInt64 {
        guard case .number(let value)? = self[key] else {
            throw SealingError("the \(what) has no number field '\(key)'")
        }
        return value
    }

    /// Standard base64 of a byte count in `counts`.
    public func bytes(_ key: String, _ counts: ClosedRange<Int>) throws(SealingError) -> [UInt8] {
        try Self.bytes(try string(key), key: key, counts, what: what)
    }

    /// A list of standard base64 strings, each of a byte count in `counts`, at most `maximum` of them.
    public func byteList(_ key: String, _ counts: ClosedRange<Int>, maximum: Int) throws(SealingError) -> [[UInt8]] {
        guard case .array(let elements)? = self[key], elements.count <= maximum else {
            throw SealingError("the \(what) has no list '\(key)' of at most \(maximum) base64 strings")
        }
        var out: [[UInt8]] = []
        for element in elements {
            guard case .string(let text) = element else {
                throw SealingError("the \(what)'s '\(key)' holds a \(element.kind), not a base64 string")
            }
            out.append(try Self.bytes(text, key: key, counts, what: what))
        }
        return out
    }

    /// 64 hex digits (a SHA-256).
    public func sha256(_ key: String) throws(SealingError) -> [UInt8] {
        guard let bytes = SealedRootToken.hexBytes(try string(key)), bytes.count == 32 else {
            throw SealingError("the \(what)'s '\(key)' is not 64 hex digits (a SHA-256)")
        }
        return bytes
    }

    public func version(_ expected: UInt64) throws(SealingError) {
        guard self["version"] == .number(expected) else {
            throw SealingError("the \(what)'s version is not \(expected)")
        }
    }

    /// An HPKE suite by the name the blobs spell.
    public func suite() throws(SealingError) -> HPKESuite {
        let name = try string("suite")
        guard let suite = HPKESuite(rawValue: name) else {
            throw SealingError(
                "the \(what)'s suite '\(name)' is not " + HPKESuite.allCases.map(\.rawValue).joined(separator: " or "))
        }
        return suite
    }

    private static func bytes(
        _ text: String, key: String, _ counts: ClosedRange<Int>, what: String
    ) throws(SealingError) -> [UInt8] {
        guard let decoded = Data(base64Encoded: text), counts.contains(decoded.count) else {
            throw SealingError(
                "the \(what)'s '\(key)' is not base64 of \(counts.lowerBound)"
                    + (counts.count > 1 ? " to \(counts.upperBound)" : "") + " bytes")
        }
        return Array(decoded)
    }
}
