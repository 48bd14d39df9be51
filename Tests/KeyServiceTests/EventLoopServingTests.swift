import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import KeyService

/// The served pipeline (`VaultHTTP1Channel`, over a real socket): requests answered on the event loop and those
/// handed to a task give the same answers, in order, with Vault's shapes.
@Suite struct EventLoopServingTests {
    let server = ServerTests()

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test func transitRoundTripsOnAndOffTheLoopWithVaultsShapes() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/sys/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.server] == "vhsmd")
                #expect(response.headers[.date]?.hasSuffix(" GMT") == true)
                let body = try json(response.body)
                #expect(body["sealed"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/sys/health", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
            }
            // Mount and key creation write storage: served by a task.
            try await client.execute(
                uri: "/v1/sys/mounts/transit", method: .post, headers: token,
                body: ByteBuffer(string: #"{"type":"transit"}"#)
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(
                uri: "/v1/transit/keys/k", method: .post, headers: token, body: ByteBuffer(string: "{}")
            ) { response in #expect(response.status == .ok) }
            // Encrypt and decrypt with the cached key: on the event loop.
            var ciphertext = ""
            try await client.execute(
                uri: "/v1/transit/encrypt/k", method: .post, headers: token,
                body: ByteBuffer(string: #"{"plaintext":"aGVsbG8="}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let body = try json(response.body)
                #expect((body["request_id"] as? String)?.count == 36)
                ciphertext = try #require((body["data"] as? [String: Any])?["ciphertext"] as? String)
            }
            try await client.execute(
                uri: "/v1/transit/decrypt/k", method: .post, headers: token,
                body: ByteBuffer(string: #"{"ciphertext":"\#(ciphertext)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let body = try json(response.body)
                #expect((body["data"] as? [String: Any])?["plaintext"] as? String == "aGVsbG8=")
            }
            // No token, an unknown token, a bad body: Vault's errors from the loop.
            try await client.execute(
                uri: "/v1/transit/encrypt/k", method: .post, body: ByteBuffer(string: #"{"plaintext":"aGk="}"#)
            ) { response in
                #expect(response.status == .forbidden)
                let body = try json(response.body)
                #expect(body["errors"] as? [String] == ["permission denied"])
            }
            try await client.execute(
                uri: "/v1/transit/encrypt/k", method: .post, headers: [HTTPField.Name("X-Vault-Token")!: "nope"],
                body: ByteBuffer(string: #"{"plaintext":"aGk="}"#)
            ) { response in #expect(response.status == .forbidden) }
            try await client.execute(
                uri: "/v1/transit/encrypt/k", method: .post, headers: token, body: ByteBuffer(string: "{")
            ) { response in
                #expect(response.status == .badRequest)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors?.first?.contains("not valid JSON") == true)
            }
            // Encrypt with a missing key creates it (a write): handed to a task, same shape.
            try await client.execute(
                uri: "/v1/transit/encrypt/fresh", method: .post, headers: token,
                body: ByteBuffer(string: #"{"plaintext":"aGk="}"#)
            ) { response in
                #expect(response.status == .ok)
                let body = try json(response.body)
                let ciphertext = (body["data"] as? [String: Any])?["ciphertext"] as? String
                #expect(ciphertext?.hasPrefix("vault:v1:") == true)
            }
            // LIST (rewritten in front of the parser) and a path outside /v1.
            try await client.execute(uri: "/v1/transit/keys", method: .init("LIST")!, headers: token) { response in
                #expect(response.status == .ok)
                let body = try json(response.body)
                let keys = (body["data"] as? [String: Any])?["keys"] as? [String]
                #expect(keys?.sorted() == ["fresh", "k"])
            }
            try await client.execute(uri: "/elsewhere", method: .get) { response in
                #expect(response.status == .notFound)
            }
            // Both paths were counted.
            try await client.execute(uri: "/v1/sys/metrics?format=prometheus", method: .get, headers: token) {
                response in
                let text = String(buffer: response.body)
                #expect(text.contains(#"vhsmd_requests_total{operation="update",area="transit",code="200"} 4"#))
                #expect(text.contains(#"vhsmd_requests_total{operation="read",area="sys",code="200"} 2"#))
            }
        }
    }

    /// Responses are flushed once per event-loop turn: requests pipelined in one packet, some answered on the loop
    /// and one by a task, still come back complete and in order, and `Connection: close` still closes after its
    /// answer.
    @Test func pipelinedRequestsAreAnsweredInOrderAndCloseStillCloses() async throws {
        let (app, root) = try await server.makeApp()
        try await app.test(.live) { client in
            let port = try #require(client.port)
            func request(_ method: String, _ path: String, body: String? = nil, close: Bool = false) -> String {
                var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: \(root)\r\n"
                if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
                if close { text += "Connection: close\r\n" }
                return text + "\r\n" + (body ?? "")
            }
            let connection = try RawConnection(port: port)
            try connection.send(
                request("GET", "/v1/sys/health")
                    + request("POST", "/v1/sys/mounts/transit", body: #"{"type":"transit"}"#)
                    + request("GET", "/v1/sys/mounts")
                    + request("GET", "/v1/sys/health", close: true))
            // The server closes after the last answer (a generous bound: the parallel test run starves the pool).
            let answer = try #require(try await connection.readUntilClose(timeout: 60))
            // A status line follows the previous body directly: find each "HTTP/1.1 " up to its CRLF.
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map {
                "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "")
            }
            #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
            // The third answer saw the mount the second (a task) made: order was kept across the two paths.
            #expect(answer.contains(#""transit/":{"#))
            #expect(answer.contains("Connection: close"))
        }
    }

    @Test func theHTTPDateIsIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }
}
