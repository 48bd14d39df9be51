/// The part of HCL (version 1, as Vault parses policies) that policies use: items `key ["label"...] { ... }` and
/// `key = value`, strings, numbers, booleans, lists, objects, heredocs and `#`, `//`, `/* */` comments. A document
/// that starts with `{` is read as JSON (`:` is accepted wherever `=` is).
enum HCL {
    indirect enum Value: Sendable, Equatable {
        case string(String)
        case number(String)
        case bool(Bool)
        case null
        case list([Value])
        case object([Item])
    }

    /// One `keys... = value` or `keys... { ... }` entry; `line` is that of the `=` (0 for blocks, as in HCL).
    struct Item: Sendable, Equatable {
        var keys: [String]
        var value: Value
        var line: Int
    }

    /// Parses a document into its top-level items; errors read like HCL's (`At 3:7: ...`).
    static func parse(_ text: String) throws(PolicyError) -> [Item] {
        var lexer = Lexer(Array(text.utf8))
        var parser = Parser(tokens: try lexer.tokens())
        return try parser.document()
    }

    fileprivate enum Token: Equatable {
        case identifier(String), string(String), number(String)
        case leftBrace, rightBrace, leftBracket, rightBracket, assign, comma, eof

        var name: String {
            switch self {
            case .identifier: "IDENT"
            case .string: "STRING"
            case .number: "NUMBER"
            case .leftBrace: "LBRACE"
            case .rightBrace: "RBRACE"
            case .leftBracket: "LBRACK"
            case .rightBracket: "RBRACK"
            case .assign: "ASSIGN"
            case .comma: "COMMA"
            case .eof: "EOF"
            }
        }
    }

    fileprivate struct Lexeme {
        var token: Token
        var line: Int
        var column: Int
    }

    fileprivate struct Lexer {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        var lineStart = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        private var column: Int { index - lineStart + 1 }

        private func peek(_ offset: Int = 0) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }

        private mutating func advance() {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }

        private func error(_ message: String, line: Int, column: Int) -> PolicyError {
            PolicyError("At \(line):\(column): \(message)")
        }

        mutating func tokens() throws(PolicyError) -> [Lexeme] {
            var out: [Lexeme] = []
            while true {
                try skipTrivia()
                let (startLine, startColumn) = (line, column)
                guard let byte = peek() else {
                    out.append(Lexeme(token: .eof, line: startLine, column: startColumn))
                    return out
                }
                let token: Token
                switch byte {
                case UInt8(ascii: "{"): token = .leftBrace; advance()
                case UInt8(ascii: "}"): token = .rightBrace; advance()
                case UInt8(ascii: "["): token = .leftBracket; advance()
                case UInt8(ascii: "]"): token = .rightBracket; advance()
                case UInt8(ascii: "="), UInt8(ascii: ":"): token = .assign; advance()
                case UInt8(ascii: ","): token = .comma; advance()
                case UInt8(ascii: "\""): token = .string(try quoted())
                case UInt8(ascii: "<") where peek(1) == UInt8(ascii: "<"): token = .string(try heredoc())
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    let start = index
                    while let next = peek(), Self.isNumberByte(next) { advance() }
                    token = .number(String(decoding: bytes[start..<index], as: UTF8.self))
                case _ where Self.isIdentifierStart(byte):
                    let start = index
                    while let next = peek(),
                        Self.isIdentifierStart(next) || Self.isDigit(next)
                            || next == UInt8(ascii: "-") || next == UInt8(ascii: ".")
                    {
                        advance()
                    }
                    token = .identifier(String(decoding: bytes[start..<index], as: UTF8.self))
                default:
                    throw error("illegal char", line: startLine, column: startColumn)
                }
                out.append(Lexeme(token: token, line: startLine, column: startColumn))
            }
        }

        private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        private static func isIdentifierStart(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || byte == UInt8(ascii: "_") || byte >= 0x80
        }

        private static func isNumberByte(_ byte: UInt8) -> Bool {
            isDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
        }

        private mutating func skipTrivia() throws(PolicyError) {
            while let byte = peek() {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                    advance()
                case UInt8(ascii: "#"):
                    while let next = peek(), next != UInt8(ascii: "\n") { advance() }
                case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "/"):
                    while let next = peek(), next != UInt8(ascii: "\n") { advance() }
                case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "*"):
                    let (startLine, startColumn) = (line, column)
                    advance()
                    advance()
                    while !(peek() == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/")) {
                        guard peek() != nil else {
                            throw error("comment not terminated", line: startLine, column: startColumn)
                        }
                        advance()
                    }
                    advance()
                    advance()
                default:
                    return
                }
            }
        }

        /// A double-quoted string with Go-style escapes; HCL strings may not span lines.
        private mutating func quoted() throws(PolicyError) -> String {
            let (startLine, startColumn) = (line, column)
            advance()
            var out: [UInt8] = []
            while true {
                guard let byte = peek(), byte != UInt8(ascii: "\n") else {
                    throw error("literal not terminated", line: startLine, column: startColumn)
                }
                advance()
                if byte == UInt8(ascii: "\"") { break }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                guard let escaped = peek() else { continue }
                let (escapeLine, escapeColumn) = (line, column)
                advance()
                switch escaped {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "a"): out.append(0x07)
                case UInt8(ascii: "v"): out.append(0x0B)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "'"): out.append(escaped)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let digits = escaped == UInt8(ascii: "u") ? 4 : 8
                    var value: UInt32 = 0
                    for _ in 0..<digits {
                        guard let hex = peek(), let nibble = Self.hexValue(hex) else {
                            throw error("illegal char escape", line: escapeLine, column: escapeColumn)
                        }
                        value = value << 4 | UInt32(nibble)
                        advance()
                    }
                    guard let scalar = Unicode.Scalar(value) else {
                        throw error("illegal char escape", line: escapeLine, column: escapeColumn)
                    }
                    out += Array(String(Character(scalar)).utf8)
                default:
                    throw error("illegal char escape", line: escapeLine, column: escapeColumn)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        private static func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }

        /// `<<EOF` ... `EOF` (or `<<-EOF`, whose terminator may be indented); the text keeps its final newline.
        private mutating func heredoc() throws(PolicyError) -> String {
            let (startLine, startColumn) = (line, column)
            advance()
            advance()
            if peek() == UInt8(ascii: "-") { advance() }
            let start = index
            while let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") { advance() }
            let anchor = String(decoding: bytes[start..<index], as: UTF8.self)
            guard !anchor.isEmpty, peek() != nil else {
                throw error("heredoc not terminated", line: startLine, column: startColumn)
            }
            if peek() == UInt8(ascii: "\r") { advance() }
            // `<<EOF\r` at the end of the text has no newline to step over (fuzz finding: advance() read past the end).
            guard peek() == UInt8(ascii: "\n") else {
                throw error("heredoc not terminated", line: startLine, column: startColumn)
            }
            advance()
            var lines: [String] = []
            while peek() != nil {
                let lineStartIndex = index
                while let byte = peek(), byte != UInt8(ascii: "\n") { advance() }
                var text = String(decoding: bytes[lineStartIndex..<index], as: UTF8.self)
                if text.hasSuffix("\r") { text.removeLast() }
                if peek() != nil { advance() }
                if text.trimmingSpaces == anchor { return lines.map { $0 + "\n" }.joined() }
                lines.append(text)
            }
            throw error("heredoc not terminated", line: startLine, column: startColumn)
        }
    }

    /// How deeply lists and objects may nest: policies use three or four levels, and the parser recurses per level.
    static let maximumDepth = 100

    fileprivate struct Parser {
        let tokens: [Lexeme]
        var index = 0
        var depth = 0

        private var current: Lexeme { tokens[index] }

        private mutating func next() -> Lexeme {
            let lexeme = tokens[index]
            if index < tokens.count - 1 { index += 1 }
            return lexeme
        }

        private func error(_ lexeme: Lexeme, _ message: String) -> PolicyError {
            PolicyError("At \(lexeme.line):\(lexeme.column): \(message)")
        }

        /// Parses one nested list or object (opened by `lexeme`) with `body`, refusing nesting past `maximumDepth`.
        private mutating func nested<T>(
            _ lexeme: Lexeme, _ body: (inout Parser) throws(PolicyError) -> T
        ) throws(PolicyError) -> T {
            guard depth < HCL.maximumDepth else {
                throw error(lexeme, "lists and objects nested deeper than \(HCL.maximumDepth) levels")
            }
            depth += 1
            defer { depth -= 1 }
            return try body(&self)
        }

        mutating func document() throws(PolicyError) -> [Item] {
            if current.token == .leftBrace {
                _ = next()
                let items = try itemList(closedBy: .rightBrace)
                guard current.token == .eof else {
                    throw error(current, "expected EOF after the object, got: \(current.token.name)")
                }
                return items
            }
            return try itemList(closedBy: .eof)
        }

        /// Items up to (and consuming) `terminator`; commas between items are optional.
        private mutating func itemList(closedBy terminator: Token) throws(PolicyError) -> [Item] {
            var items: [Item] = []
            while true {
                if current.token == terminator {
                    _ = next()
                    return items
                }
                if current.token == .eof {
                    throw error(current, "object expected closing RBRACE got: EOF")
                }
                items.append(try item())
                if current.token == .comma { _ = next() }
            }
        }

        private mutating func item() throws(PolicyError) -> Item {
            var keys: [String] = []
            while true {
                let lexeme = next()
                switch lexeme.token {
                case .identifier(let key), .string(let key):
                    keys.append(key)
                case .assign:
                    guard !keys.isEmpty else { throw error(lexeme, "expected: IDENT | STRING got: ASSIGN") }
                    guard keys.count == 1 else { throw error(lexeme, "nested object expected: LBRACE got: ASSIGN") }
                    return Item(keys: keys, value: try value(), line: lexeme.line)
                case .leftBrace:
                    guard !keys.isEmpty else { throw error(lexeme, "expected: IDENT | STRING got: LBRACE") }
                    let items = try nested(lexeme) { parser throws(PolicyError) in
                        try parser.itemList(closedBy: .rightBrace)
                    }
                    return Item(keys: keys, value: .object(items), line: 0)
                default:
                    let expected = keys.isEmpty ? "IDENT | STRING" : "IDENT | STRING | ASSIGN | LBRACE"
                    throw error(lexeme, "expected: \(expected) got: \(lexeme.token.name)")
                }
            }
        }

        private mutating func value() throws(PolicyError) -> Value {
            let lexeme = next()
            switch lexeme.token {
            case .string(let text): return .string(text)
            case .number(let text): return .number(text)
            case .identifier("true"): return .bool(true)
            case .identifier("false"): return .bool(false)
            case .identifier("null"): return .null
            case .leftBrace:
                return .object(
                    try nested(lexeme) { parser throws(PolicyError) in try parser.itemList(closedBy: .rightBrace) })
            case .leftBracket:
                return .list(try nested(lexeme) { parser throws(PolicyError) in try parser.listElements() })
            default:
                throw error(lexeme, "Unknown token: \(lexeme.line):\(lexeme.column) \(lexeme.token.name)")
            }
        }

        /// The elements of a list after its `[`, up to (and consuming) the `]`.
        private mutating func listElements() throws(PolicyError) -> [Value] {
            var elements: [Value] = []
            while true {
                if current.token == .rightBracket {
                    _ = next()
                    return elements
                }
                elements.append(try value())
                switch current.token {
                case .comma: _ = next()
                case .rightBracket: continue
                default: throw error(current, "unexpected token while parsing list: \(current.token.name)")
                }
            }
        }
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
