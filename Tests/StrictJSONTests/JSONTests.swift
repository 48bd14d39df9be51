import Testing

@testable import StrictJSON

@Suite struct StrictJSONTests {
    @Test func parsesEveryKindAndKeepsMemberOrder() throws {
        let value = try JSON.parse(
            Array(#" {"b": [1, 18446744073709551615, true, false, null], "a": "x\u00e9\ud83d\ude00\n"} "#.utf8))
        #expect(
            value
                == .object([
                    ("b", .array([.number(1), .number(UInt64.max), .bool(true), .bool(false), .null])),
                    ("a", .string("xé😀\n")),
                ]))
        #expect(value["a"] == .string("xé😀\n"))
        #expect(value["z"] == nil)
    }

    @Test(arguments: [
        "", "{", "{\"a\" 1}", "[1,]", "01", "1.", "-", "-1", "2.5", "1e3", "18446744073709551616", "\"\u{01}\"",
        "\"\\x\"", "{\"a\":1}x", "tru", "\"\\ud800\"", "\"\\ud83d\\u0041\"", "\"\\udc00\"", "{\"a\":1,\"a\":2}",
        "\"\\u0000\"",
    ])
    func refusesWhatAStrictReaderMustNotGuess(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array(text.utf8)) }
    }

    @Test func refusesDeepNesting() {
        let deep =
            String(repeating: "[", count: JSON.maximumDepth + 1) + String(repeating: "]", count: JSON.maximumDepth + 1)
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: JSON.maximumDepth) + String(repeating: "]", count: JSON.maximumDepth)
        #expect(throws: Never.self) { try JSON.parse(Array(fine.utf8)) }
    }

    @Test func renderingAndSerialisationEscapeAndReadBack() throws {
        let value = JSON.object([
            ("k", .string("a\"b\\c\u{01}\n")), ("n", .number(30000)), ("e", .array([])), ("o", .object([])),
        ])
        let text = value.rendered()
        #expect(text.contains(#""a\"b\\c\u0001\n""#))
        #expect(text.contains(#""n": 30000"#))
        #expect(try JSON.parse(Array(text.utf8)) == value)
        #expect(try JSON.parse(Array(value.serialized.utf8)) == value)
        #expect(value.serialized == #"{"k":"a\"b\\c\u0001\n","n":30000,"e":[],"o":{}}"#)
    }
}
