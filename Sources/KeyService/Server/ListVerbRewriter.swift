import FoundationEssentials
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore

/// Vault clients (hvac's kv `list_secrets`, `vault list`, curl -X LIST) send the non-standard `LIST` verb, which
/// SwiftNIO's HTTP parser (llhttp) rejects before any handler sees the request. This decoder sits in front of
/// it, follows HTTP/1.1 request framing (Content-Length and chunked bodies, keep-alive, pipelining) and rewrites
/// a request line's `LIST ` to `LINK `, a verb of the same length that llhttp knows and Vault never uses; the
/// router treats LINK as LIST. Bytes are never inserted or removed, so framing is unchanged.
struct ListVerbRewriter: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    static let rewrittenMethod = HTTPRequest.Method("LINK")!
    private static let headLimit = 64 * 1024

    enum State: Equatable {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case trailers
        /// Something this decoder does not follow (an upgrade, an oversized head): pass bytes through unchanged.
        case passthrough
    }

    private var state = State.head

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .passthrough:
            guard buffer.readableBytes > 0, let all = buffer.readSlice(length: buffer.readableBytes) else {
                return .needMoreData
            }
            context.fireChannelRead(wrapInboundOut(all))
            return .continue
        case .head:
            guard let end = Self.find([13, 10, 13, 10], in: buffer) else {
                if buffer.readableBytes > Self.headLimit { state = .passthrough }
                return buffer.readableBytes > Self.headLimit ? .continue : .needMoreData
            }
            var head = buffer.readSlice(length: end + 4)!
            if head.readableBytesView.starts(with: Array("LIST ".utf8)) {
                head.setBytes(Array("LINK".utf8), at: head.readerIndex)
            }
            state = Self.framing(of: head)
            context.fireChannelRead(wrapInboundOut(head))
            return .continue
        case .body(let remaining), .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let count = min(remaining, buffer.readableBytes)
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: count)!))
            let left = remaining - count
            if case .body = state {
                state = left == 0 ? .head : .body(remaining: left)
            } else {
                state = left == 0 ? .chunkSize : .chunkData(remaining: left)
            }
            return .continue
        case .chunkSize:
            guard let end = Self.find([13, 10], in: buffer) else { return .needMoreData }
            let line = buffer.readSlice(length: end + 2)!
            guard let size = Self.chunkSize(line.readableBytesView.prefix(end)) else {
                state = .passthrough
                context.fireChannelRead(wrapInboundOut(line))
                return .continue
            }
            state = size == 0 ? .trailers : .chunkData(remaining: size + 2)
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        case .trailers:
            if buffer.readableBytesView.starts(with: [13, 10]) {
                context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: 2)!))
                state = .head
                return .continue
            }
            guard let end = Self.find([13, 10, 13, 10], in: buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: end + 4)!))
            state = .head
            return .continue
        }
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws
        -> DecodingState
    {
        if buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) {
            context.fireChannelRead(wrapInboundOut(rest))
        }
        return .needMoreData
    }

    /// How the body after a request head is framed: `Transfer-Encoding: chunked`, `Content-Length`, or an
    /// upgrade (passed through). Works on the bytes: this runs for every request.
    static func framing(of head: ByteBuffer) -> State {
        let bytes = head.readableBytesView
        var length = 0
        var lineStart = bytes.startIndex
        // Skip the request line.
        while lineStart < bytes.endIndex, bytes[lineStart] != 10 { lineStart += 1 }
        lineStart += 1
        while lineStart < bytes.endIndex {
            var lineEnd = lineStart
            while lineEnd < bytes.endIndex, bytes[lineEnd] != 10 { lineEnd += 1 }
            let line = bytes[lineStart..<lineEnd]
            lineStart = lineEnd + 1
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = trimmed(line[line.startIndex..<colon])
            let value = trimmed(line[(colon + 1)...])
            if equalsLowercased(name, "transfer-encoding") {
                if containsLowercased(value, "chunked") { return .chunkSize }
            } else if equalsLowercased(name, "content-length") {
                guard let parsed = decimal(value) else { return .passthrough }
                length = parsed
            } else if equalsLowercased(name, "upgrade") {
                return .passthrough
            }
        }
        return length > 0 ? .body(remaining: length) : .head
    }

    /// The size of a chunk-size line (`1a;ext=1`), nil when it is not hexadecimal.
    static func chunkSize(_ line: ByteBufferView.SubSequence) -> Int? {
        let digits = trimmed(line.prefix { $0 != UInt8(ascii: ";") })
        guard !digits.isEmpty, digits.count <= 15 else { return nil }
        var value = 0
        for byte in digits {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
            value = value * 16 + digit
        }
        return value
    }

    private static func trimmed(_ bytes: ByteBufferView.SubSequence) -> ByteBufferView.SubSequence {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, [32, 9, 13].contains(bytes[start]) { start += 1 }
        while end > start, [32, 9, 13].contains(bytes[end - 1]) { end -= 1 }
        return bytes[start..<end]
    }

    private static func lowered(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    private static func equalsLowercased(_ bytes: ByteBufferView.SubSequence, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in zip(bytes, expected).allSatisfy { lowered($0) == $1 } }
    }

    private static func containsLowercased(_ bytes: ByteBufferView.SubSequence, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { needle in
            guard bytes.count >= needle.count else { return false }
            var index = bytes.startIndex
            while index <= bytes.endIndex - needle.count {
                if zip(bytes[index..<index + needle.count], needle).allSatisfy({ lowered($0) == $1 }) { return true }
                index += 1
            }
            return false
        }
    }

    private static func decimal(_ bytes: ByteBufferView.SubSequence) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func find(_ needle: [UInt8], in buffer: ByteBuffer) -> Int? {
        let view = buffer.readableBytesView
        guard view.count >= needle.count else { return nil }
        var index = view.startIndex
        while index <= view.endIndex - needle.count {
            if view[index] == needle[0], view[index..<index + needle.count].elementsEqual(needle) {
                return index - view.startIndex
            }
            index += 1
        }
        return nil
    }
}
