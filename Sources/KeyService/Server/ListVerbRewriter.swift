import Foundation
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

    private enum State {
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
            let text = String(decoding: line.readableBytesView.prefix(end), as: UTF8.self)
            let digits = text.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int(digits, radix: 16) else {
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

    /// How the body after a request head is framed.
    private static func framing(of head: ByteBuffer) -> State {
        let text = String(decoding: head.readableBytesView, as: UTF8.self).lowercased()
        var length = 0
        for line in text.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "transfer-encoding", value.contains("chunked") { return .chunkSize }
            if name == "content-length", let parsed = Int(value) { length = parsed }
            if name == "upgrade" { return .passthrough }
        }
        return length > 0 ? .body(remaining: length) : .head
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

/// HTTP/1.1 with the LIST rewriter in front of the parser.
struct VaultHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ListVerbRewriter()))
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 that accepts Vault's LIST verb.
    static var vaultHTTP1: HTTPServerBuilder {
        HTTPServerBuilder { responder in VaultHTTP1Channel(inner: HTTP1Channel(responder: responder)) }
    }
}
