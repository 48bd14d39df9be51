import FoundationEssentials
import HTTPTypes
import HummingbirdCore
import Logging
package import NIOCore
import NIOHTTP1

/// Vault clients (hvac's kv `list_secrets`, `vault list`, curl -X LIST) send the non-standard `LIST` verb, which
/// SwiftNIO's HTTP parser (llhttp) rejects before any handler sees the request. This decoder sits in front of
/// it, follows HTTP/1.1 request framing (Content-Length and chunked bodies, keep-alive, pipelining) and rewrites
/// a request line's `LIST ` to `LINK `, a verb of the same length that llhttp knows and Vault never uses; the
/// handler treats LINK as LIST. Bytes are never inserted or removed, so framing is unchanged.
///
/// It is the first thing a client's bytes meet, so its work is bounded before anything is authenticated: it holds
/// at most `headLimit` bytes of a head or trailer section and `chunkLineLimit` of a chunk-size line (a longer one
/// is answered 431 or 400 with a sentence by `ProtocolErrorHandler`, and the connection closed), each search
/// resumes where the last one stopped (no rescans), and body bytes pass through as they come. Each request must be read within the
/// listener's timeouts from its first byte: the head within `readHeaderTimeout`, head and body within
/// `readTimeout`; else the connection is closed.
package struct ListVerbRewriter: ByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    static let rewrittenMethod = HTTPRequest.Method("LINK")!
    /// The longest head (request line and headers) or trailer section held: llhttp's default limit is 80 KiB.
    package static let headLimit = 64 * 1024
    /// The longest chunk-size line (size, extensions) held.
    package static let chunkLineLimit = 4096
    /// `ByteToMessageHandler`'s bound on what it buffers for this decoder (a backstop: the decoder never holds
    /// more than `headLimit` and one read).
    package static let maximumBufferSize = 2 * headLimit

    enum State: Equatable {
        /// Reading a head; `scanned` bytes have been searched for its end already.
        case head(scanned: Int)
        case body(remaining: Int)
        case chunkSize(scanned: Int)
        case chunkData(remaining: Int)
        case trailers(scanned: Int)
        /// An upgrade, which this decoder does not follow: bytes pass through unchanged (nothing is held).
        case passthrough
    }

    private var state = State.head(scanned: 0)
    private let limits: ListenerLimits
    /// When the request being read began (its first byte), and the timer that closes the connection if it is not
    /// read in time.
    private var requestStart: NIODeadline?
    private var deadline: Scheduled<Void>?

    init(limits: ListenerLimits = ListenerLimits()) { self.limits = limits }

    /// With the listener's default limits (the fuzz target's entry point).
    package init() { self.init(limits: ListenerLimits()) }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .passthrough:
            guard buffer.readableBytes > 0, let all = buffer.readSlice(length: buffer.readableBytes) else {
                return .needMoreData
            }
            context.fireChannelRead(wrapInboundOut(all))
            return .continue
        case .head(let scanned):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            if requestStart == nil {
                let now = NIODeadline.now()
                requestStart = now
                schedule(context: context, at: now + limits.readHeaderTimeout)
            }
            guard let end = Self.find([13, 10, 13, 10], in: buffer, from: scanned) else {
                guard buffer.readableBytes <= Self.headLimit else { throw HTTPParserError.headerOverflow }
                state = .head(scanned: buffer.readableBytes)
                return .needMoreData
            }
            guard end + 4 <= Self.headLimit else { throw HTTPParserError.headerOverflow }
            var head = buffer.readSlice(length: end + 4)!
            if head.readableBytesView.starts(with: Array("LIST ".utf8)) {
                head.setBytes(Array("LINK".utf8), at: head.readerIndex)
            }
            state = try Self.framing(of: head)
            switch state {
            case .head: finishRequest()
            case .passthrough: cancelDeadline()
            default: schedule(context: context, at: (requestStart ?? .now()) + limits.readTimeout)
            }
            context.fireChannelRead(wrapInboundOut(head))
            return .continue
        case .body(let remaining), .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let count = min(remaining, buffer.readableBytes)
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: count)!))
            let left = remaining - count
            if case .body = state {
                state = left == 0 ? .head(scanned: 0) : .body(remaining: left)
                if left == 0 { finishRequest() }
            } else {
                state = left == 0 ? .chunkSize(scanned: 0) : .chunkData(remaining: left)
            }
            return .continue
        case .chunkSize(let scanned):
            guard let end = Self.find([13, 10], in: buffer, from: scanned) else {
                guard buffer.readableBytes <= Self.chunkLineLimit else { throw HTTPParserError.invalidChunkSize }
                state = .chunkSize(scanned: buffer.readableBytes)
                return .needMoreData
            }
            guard end + 2 <= Self.chunkLineLimit else { throw HTTPParserError.invalidChunkSize }
            let line = buffer.readSlice(length: end + 2)!
            guard let size = Self.chunkSize(line.readableBytesView.prefix(end)) else {
                throw HTTPParserError.invalidChunkSize
            }
            state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size + 2)
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        case .trailers(let scanned):
            if scanned == 0, buffer.readableBytesView.starts(with: [13, 10]) {
                context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: 2)!))
                state = .head(scanned: 0)
                finishRequest()
                return .continue
            }
            guard let end = Self.find([13, 10, 13, 10], in: buffer, from: scanned) else {
                guard buffer.readableBytes <= Self.headLimit else { throw HTTPParserError.headerOverflow }
                state = .trailers(scanned: buffer.readableBytes)
                return .needMoreData
            }
            guard end + 4 <= Self.headLimit else { throw HTTPParserError.headerOverflow }
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: end + 4)!))
            state = .head(scanned: 0)
            finishRequest()
            return .continue
        }
    }

    package mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws
        -> DecodingState
    {
        cancelDeadline()
        if buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) {
            context.fireChannelRead(wrapInboundOut(rest))
        }
        return .needMoreData
    }

    package mutating func decoderRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
    }

    /// The request has been read: no deadline until the next one's first byte.
    private mutating func finishRequest() {
        requestStart = nil
        cancelDeadline()
    }

    private mutating func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    /// Closes the connection at `time` unless the request has been read by then.
    private mutating func schedule(context: ChannelHandlerContext, at time: NIODeadline) {
        deadline?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(deadline: time) { bound.value.close(promise: nil) }
    }

    /// How the body after a request head is framed: `Transfer-Encoding: chunked`, `Content-Length`, or an
    /// upgrade (passed through); a Content-Length that is not a decimal number is a parse error. Works on the
    /// bytes: this runs for every request.
    static func framing(of head: ByteBuffer) throws(HTTPParserError) -> State {
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
                if containsLowercased(value, "chunked") { return .chunkSize(scanned: 0) }
            } else if equalsLowercased(name, "content-length") {
                guard let parsed = decimal(value) else { throw .invalidContentLength }
                length = parsed
            } else if equalsLowercased(name, "upgrade") {
                return .passthrough
            }
        }
        return length > 0 ? .body(remaining: length) : .head(scanned: 0)
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

    /// Where `needle` starts in the readable bytes, searching from `from` bytes in, less the needle's length (a
    /// match may straddle the end of the last search).
    private static func find(_ needle: [UInt8], in buffer: ByteBuffer, from: Int) -> Int? {
        let view = buffer.readableBytesView
        guard view.count >= needle.count else { return nil }
        var index = view.startIndex + max(0, min(from, view.count) - (needle.count - 1))
        while index <= view.endIndex - needle.count {
            if view[index] == needle[0], view[index..<index + needle.count].elementsEqual(needle) {
                return index - view.startIndex
            }
            index += 1
        }
        return nil
    }
}
