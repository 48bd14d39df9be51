import Testing

@testable import KeyService

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(
            #" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d\n\"é\"\u00e9\ud83d\ude00"}} "#)
        #expect(
            value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .object(["c": .string("d\n\"é\"é😀")]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([:]))
        #expect(try parse("9223372036854775807") == .int(Int64.max))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "tru", "nul", "\"unterminated", "\"bad \\q escape\"", "01x",
        "[1] 2", "{\"a\":1,}", "\"\u{01}\"", "-", "\"\\ud800\"", "1e999",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try parse(text) }
    }

    /// Strings without escapes are validated in place, those with escapes byte by byte: both refuse invalid
    /// UTF-8 and raw control characters.
    @Test func stringsAreValidatedWithAndWithoutEscapes() throws {
        #expect(
            try parse(#"["plain", "with \"escape\"", "é"]"#)
                == .array([.string("plain"), .string("with \"escape\""), .string("é")]))
        for bytes: [UInt8] in [
            [0x22, 0xFF, 0x22], [0x22, 0x5C, 0x6E, 0xC3, 0x22], [0x22, 0x61, 0x09, 0x22],
            [0x22, 0x5C, 0x6E, 0x09, 0x22],
        ] {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(bytes) }
        }
    }

    @Test func refusesExcessiveNesting() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONParser.Failure.self) { try parse(deep) }
    }

    @Test func serialisationRoundTrips() throws {
        let value = try parse(#"{"k": ["x", 1, 2.5, true, null, {"n": "a\tb"}]}"#)
        #expect(try JSONParser.parse(value.serialized) == value)
    }
}
