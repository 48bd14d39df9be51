import Testing

@testable import Boot

@Suite struct JSONReaderTests {
    @Test func parsesEveryKindAndKeepsMemberOrder() throws {
        let value = try JSONReader.parse(#" {"b": [1, -2.5e1, true, false, null], "a": "x\u00e9\ud83d\ude00\n"} "#)
        #expect(
            value
                == .object([
                    ("b", .array([.number(1), .number(-25), .bool(true), .bool(false), .null])),
                    ("a", .string("xé😀\n")),
                ]))
    }

    @Test(arguments: [
        "", "{", "{\"a\" 1}", "[1,]", "01", "1.", "-", "\"\u{01}\"", "\"\\x\"", "{\"a\":1}x", "tru", "\"\\ud800\"",
    ])
    func refusesMalformedDocuments(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse(text) }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse(deep) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONReader.parse(fine) }
    }

    @Test func renderingEscapesAndReadsBack() throws {
        let value = JSONValue.object([
            ("k", .string("a\"b\\c\u{01}\n")), ("n", .number(30000)), ("e", .array([])), ("o", .object([])),
        ])
        let text = value.rendered()
        #expect(text.contains(#""a\"b\\c\u0001\n""#))
        #expect(text.contains(#""n": 30000"#))
        #expect(try JSONReader.parse(text) == value)
    }
}
