import NIOCore
import NIOHTTP1

/// Answers a request the HTTP layer could not read (a head past `ListVerbRewriter.headLimit`, a malformed chunk
/// size or Content-Length, anything llhttp refuses) in Vault's error shape before the connection is closed:
/// 431 for a head that is too large, 400 otherwise, `Connection: close`, and `{"errors": [a sentence]}` that says
/// what was refused and the bound. NIO's own handler (which this replaces) answered a bare 400 with no body. As
/// with NIO's, nothing is written when an answer is already under way; `VaultHTTPHandler.errorCaught` closes the
/// connection after it.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var answering = false

    /// The status and sentence for a request that could not be read.
    static func refusal(_ error: HTTPParserError) -> (status: HTTPResponseStatus, message: String) {
        switch error {
        case .headerOverflow:
            return (
                .requestHeaderFieldsTooLarge,
                "request head too large: a request line and headers (or a trailer section) are at most "
                    + "\(ListVerbRewriter.headLimit) bytes"
            )
        case .invalidChunkSize:
            return (
                .badRequest,
                "malformed chunked body: a chunk-size line is hexadecimal digits (at most 15) and at most "
                    + "\(ListVerbRewriter.chunkLineLimit) bytes"
            )
        case .invalidContentLength:
            return (.badRequest, "malformed request: Content-Length is not a decimal number of at most 18 digits")
        default:
            return (.badRequest, "malformed HTTP/1.1 request: \(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !answering {
            let (status, message) = Self.refusal(parserError)
            let body = JSONValue.object(["errors": .array([.string(message)])]).serialized
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", String(body.count)),
                ("Server", "vhsmd"),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))))
                .whenFailure { _ in }
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))))
                .whenFailure { _ in }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenFailure { _ in }
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code < 200: break
        case .head: answering = true
        case .body: break
        case .end: answering = false
        }
        context.write(data, promise: promise)
    }
}
