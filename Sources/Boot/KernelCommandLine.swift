/// `/proc/cmdline` split into parameters the way the kernel's `next_arg()` (kernel/params.c) splits it.
///
/// - Parameters are separated by whitespace outside double quotes.
/// - A parameter that starts with `"` loses that quote and, when it ends with `"`, the closing one too:
///   `"vhsm.volume=/dev/vda"` is `vhsm.volume` = `/dev/vda`.
/// - A value that starts with `"` loses it and a trailing `"`: `vhsm.handoff.args="--dev --port 8200"` is one
///   parameter whose value is `--dev --port 8200`. Quotes inside a value are kept, as the kernel keeps them.
/// - The name ends at the first `=`; a parameter without `=` has no value (`vhsm.integrity`).
/// - `--` ends the kernel's parameters; what follows goes to init as arguments and is not read here.
/// - Whitespace is the kernel's `isspace()` (lib/ctype.c): space, HT, LF, VT, FF, CR and byte 0xA0 (Latin-1 NBSP,
///   so also the second byte of UTF-8 `à`). The split works on the bytes, before any UTF-8 decoding.
/// - The command line is a C string: it ends at its first NUL.
struct KernelCommandLine: Equatable, Sendable {
    struct Parameter: Equatable, Sendable {
        var name: String
        var value: String?
    }

    var parameters: [Parameter]

    init(parameters: [Parameter]) { self.parameters = parameters }

    init(_ text: String) { self.init(bytes: Array(text.utf8)) }

    init(bytes all: [UInt8]) {
        let bytes = Array(all.prefix { $0 != 0 })
        var parameters: [Parameter] = []
        var start = Self.skipSpaces(bytes, from: 0)
        while start < bytes.count {
            let (parameter, next) = Self.nextParameter(bytes, from: start)
            if parameter.value == nil, parameter.name == "--" { break }
            parameters.append(parameter)
            start = Self.skipSpaces(bytes, from: next)
        }
        self.parameters = parameters
    }

    /// The parameters whose name starts with `prefix` (`vhsm.`), prefix removed, in command-line order.
    func parameters(withPrefix prefix: String) -> [Parameter] {
        parameters.compactMap { parameter in
            guard parameter.name.hasPrefix(prefix) else { return nil }
            return Parameter(name: String(parameter.name.dropFirst(prefix.count)), value: parameter.value)
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte) || byte == 0xA0
    }

    private static func skipSpaces(_ bytes: [UInt8], from index: Int) -> Int {
        var index = index
        while index < bytes.count, isSpace(bytes[index]) { index += 1 }
        return index
    }

    /// One `next_arg()` step: the parameter starting at `start` and the index after it.
    private static func nextParameter(_ bytes: [UInt8], from start: Int) -> (Parameter, Int) {
        var begin = start
        var inQuote = false
        var quoted = false
        if bytes[begin] == UInt8(ascii: "\"") {
            begin += 1
            inQuote = true
            quoted = true
        }
        var end = begin
        var equals: Int?
        while end < bytes.count {
            let byte = bytes[end]
            if isSpace(byte), !inQuote { break }
            // next_arg() records the first '=' at a position above 0 only.
            if equals == nil, byte == UInt8(ascii: "="), end > begin { equals = end }
            if byte == UInt8(ascii: "\"") { inQuote.toggle() }
            end += 1
        }
        var contentEnd = end
        let endsWithQuote = end > begin && bytes[end - 1] == UInt8(ascii: "\"")
        let name: [UInt8]
        var value: [UInt8]?
        if let equals {
            name = Array(bytes[begin..<equals])
            var valueStart = equals + 1
            if valueStart < contentEnd, bytes[valueStart] == UInt8(ascii: "\"") {
                valueStart += 1
                if endsWithQuote, contentEnd - 1 >= valueStart { contentEnd -= 1 }
            } else if quoted, endsWithQuote {
                contentEnd -= 1
            }
            value = Array(bytes[valueStart..<max(valueStart, contentEnd)])
        } else {
            if quoted, endsWithQuote { contentEnd -= 1 }
            name = Array(bytes[begin..<max(begin, contentEnd)])
        }
        let parameter = Parameter(
            name: String(decoding: name, as: UTF8.self),
            value: value.map { String(decoding: $0, as: UTF8.self) })
        return (parameter, end < bytes.count ? end + 1 : end)
    }
}
