import Foundation
import KeyService
import StrictJSON

/// The two JSON parsers of attacker input, each against Foundation's `JSONSerialization` as the oracle.
///
/// Intentional differences from Foundation (the oracle skips exactly these, nothing else):
/// - input that is not UTF-8, or starts with a byte-order mark: Foundation guesses UTF-16/32 and skips a BOM,
///   RFC 8259 §8.1 requires UTF-8 between systems and both parsers refuse anything else;
/// - vhsmd's parser stops at `JSONParser.maximumDepth` (256) nested containers, StrictJSON at 16;
/// - numbers that are not finite doubles (`1e999`): vhsmd refuses them, Foundation may answer infinity;
/// - duplicate object keys: vhsmd keeps the last (as Go's encoding/json, which Vault uses), so values of objects
///   with a repeated key are not compared; StrictJSON refuses duplicates;
/// - trailing commas (`[1,]`): Foundation accepts them, RFC 8259 and Go refuse them;
/// - a raw NUL byte anywhere: never valid JSON (outside a string it is not whitespace, inside one an unescaped
///   control character), and vhsmd must refuse it; Foundation ends the document at the first NUL, as a C string
///   (`2\0`), or reads zero bytes as UTF-16/32 (`\02`);
/// - StrictJSON is stricter by design (no negative, fractional or exponent numbers, no integers past UInt64, no
///   U+0000 in strings): what it refuses is not checked against Foundation, what it accepts is.
enum JSONTargets {
    /// vhsmd's request-body parser (`JSONParser.parse`, under `JSONValue.parse`).
    static let vhsmdJSON = FuzzTarget(
        name: "vhsmd-json",
        summary:
            "vhsmd's JSONParser: accept/reject and values against JSONSerialization; serialise then parse is equal",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let ours = try? JSONParser.parse(input)
            if let ours {
                guard let again = try? JSONParser.parse(ours.serialized), again == ours else {
                    throw FuzzFinding("vhsmd-json", "an accepted document serialises to bytes that parse differently")
                }
            }
            guard ours == nil || !input.contains(0) else {
                throw FuzzFinding("vhsmd-json", "a document with a raw NUL byte was accepted")
            }
            guard String(validating: input, as: UTF8.self) != nil, !input.starts(with: [0xEF, 0xBB, 0xBF]) else {
                guard ours == nil else {
                    throw FuzzFinding("vhsmd-json", "a document that is not BOM-free UTF-8 was accepted")
                }
                return
            }
            let foundation = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
            switch (ours, foundation) {
            case (nil, nil): return
            case (let ours?, nil):
                throw FuzzFinding("vhsmd-json", "accepted a document Foundation refuses (parsed as \(ours))")
            case (nil, let foundation?):
                if FoundationJSON.depth(of: foundation) > JSONParser.maximumDepth { return }
                if !FoundationJSON.allNumbersFinite(foundation) { return }
                if FoundationJSON.hasTrailingComma(input) { return }
                if input.contains(0) { return }
                throw FuzzFinding("vhsmd-json", "refused a document Foundation accepts (\(foundation))")
            case (let ours?, let foundation?):
                guard FoundationJSON.matches(ours, foundation) else {
                    throw FuzzFinding("vhsmd-json", "parsed to \(ours), Foundation to \(foundation)")
                }
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let vectors = try data.read("snp/vectors.json", for: "vhsmd-json")
            return [
                vectors,
                Array(#"{"plaintext":"aGVsbG8=","context":"","key_version":1,"batch_input":[{"a":1.5e3}]}"#.utf8),
                Array(#"{"data":{"k":"v\u00e9\ud83d\ude00","n":null,"t":true,"f":false,"x":-0.25}}"#.utf8),
                Array("[1,[2,[3,{}]],\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]".utf8),
            ]
        })

    /// StrictJSON (the LUKS2 JSON area, vhsm-init's configuration): what it accepts, Foundation accepts with the
    /// same values, and serialise then parse is equal.
    static let strictJSON = FuzzTarget(
        name: "strict-json",
        summary: "StrictJSON: accepted documents equal Foundation's reading; serialise then parse is equal",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let ours = try? JSON.parse(input) else { return }
            guard let again = try? JSON.parse(Array(ours.serialized.utf8)), again == ours else {
                throw FuzzFinding("strict-json", "an accepted document serialises to text that parses differently")
            }
            guard let foundation = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
            else { throw FuzzFinding("strict-json", "accepted a document Foundation refuses (\(ours.serialized))") }
            guard FoundationJSON.matches(ours, foundation) else {
                throw FuzzFinding("strict-json", "parsed to \(ours.serialized), Foundation to \(foundation)")
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            // The shape of a LUKS2 JSON area as vhsm writes it, and of vhsm-init's configuration.
            [
                Array(
                    #"{"keyslots":{"0":{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":4000,"hash":"sha256"},"area":{"type":"raw","offset":"32768","size":"258048","encryption":"aes-xts-plain64","key_size":64},"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt":"AAAA"}}},"tokens":{"0":{"type":"vhsm-snp","keyslots":["0"],"mac":"00ff"}},"segments":{"0":{"type":"crypt","offset":"16777216","size":"dynamic","iv_tweak":"0","encryption":"aes-xts-plain64","sector_size":4096}},"digests":{},"config":{"json_size":"12288","keyslots_size":"16744448"}}"#
                        .utf8),
                Array(
                    #"{"provider":"emulator","volume":"/dev/vda","seal":"measurement","modules":["dm-mod","dm-crypt"],"network":{"address":"10.0.2.15/24","gateway":"10.0.2.2"}}"#
                        .utf8),
                Array("[true,false,null,0,18446744073709551615,\"\\u00e9\\ud83d\\ude00\"]".utf8),
            ]
        })
}

/// Comparing a parsed value with what `JSONSerialization` returned.
enum FoundationJSON {
    static func depth(of value: Any) -> Int {
        if let array = value as? [Any] { return 1 + (array.map(depth(of:)).max() ?? 0) }
        if let object = value as? [String: Any] { return 1 + (object.values.map(depth(of:)).max() ?? 0) }
        return 0
    }

    /// Foundation accepts `[1,]` and `{"a":1,}`; RFC 8259, Go and vhsmd refuse them (a comma, whitespace, then a
    /// closing bracket anywhere outside a string).
    static func hasTrailingComma(_ input: [UInt8]) -> Bool {
        var inString = false
        var escaped = false
        var afterComma = false
        for byte in input {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == 0x22 {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x22: inString = true; afterComma = false
            case UInt8(ascii: ","): afterComma = true
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "]"), UInt8(ascii: "}"): if afterComma { return true }
            default: afterComma = false
            }
        }
        return false
    }

    static func allNumbersFinite(_ value: Any) -> Bool {
        if let array = value as? [Any] { return array.allSatisfy(allNumbersFinite) }
        if let object = value as? [String: Any] { return object.values.allSatisfy(allNumbersFinite) }
        if let number = value as? NSNumber { return number.doubleValue.isFinite }
        return true
    }

    /// Same scalars (not canonical equivalence, which Swift's `==` on strings uses).
    static func sameText(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

    static func sameNumber(_ a: Double, _ b: NSNumber) -> Bool {
        let other = b.doubleValue
        if a == other { return true }
        // Foundation's and Swift's decimal-to-double conversions may round a long mantissa differently.
        return abs(a - other) <= 1e-12 * max(abs(a), abs(other))
    }

    static func matches(_ ours: JSONValue, _ foundation: Any) -> Bool {
        switch ours {
        case .null: return foundation is NSNull
        case .bool(let value): return (foundation as? Bool) == value
        case .int(let value):
            guard let number = foundation as? NSNumber else { return false }
            if let decimal = foundation as? Decimal { return decimal == Decimal(value) }
            return number.int64Value == value && sameNumber(Double(value), number)
        case .double(let value):
            if let decimal = foundation as? Decimal {
                return sameNumber(value, NSDecimalNumber(decimal: decimal))
            }
            guard let number = foundation as? NSNumber else { return false }
            return sameNumber(value, number)
        case .string(let value): return (foundation as? String).map { sameText($0, value) } ?? false
        case .array(let items):
            guard let array = foundation as? [Any], array.count == items.count else { return false }
            return zip(items, array).allSatisfy { matches($0, $1) }
        case .object(let members):
            guard let object = foundation as? [String: Any] else { return false }
            // A repeated key (see JSONTargets) makes the counts differ only through scalar-equal keys; compare
            // the keys as scalars and the values of each.
            guard object.count == members.count else { return false }
            for (key, value) in members {
                guard let match = object.first(where: { sameText($0.key, key) }) else { return false }
                if !matches(value, match.value) { return false }
            }
            return true
        }
    }

    static func matches(_ ours: JSON, _ foundation: Any) -> Bool {
        switch ours {
        case .null: return foundation is NSNull
        case .bool(let value): return (foundation as? Bool) == value
        case .number(let value):
            if let decimal = foundation as? Decimal { return decimal == Decimal(value) }
            guard let number = foundation as? NSNumber else { return false }
            if value <= UInt64(Int64.max) { return number.int64Value == Int64(value) }
            return number.uint64Value == value || sameNumber(Double(value), number)
        case .string(let value): return (foundation as? String).map { sameText($0, value) } ?? false
        case .array(let items):
            guard let array = foundation as? [Any], array.count == items.count else { return false }
            return zip(items, array).allSatisfy { matches($0, $1) }
        case .object(let members):
            guard let object = foundation as? [String: Any], object.count == members.count else { return false }
            for member in members {
                guard let match = object.first(where: { sameText($0.key, member.key) }) else { return false }
                if !matches(member.value, match.value) { return false }
            }
            return true
        }
    }
}
