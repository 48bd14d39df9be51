import Foundation
import KeyService
import NIOCore
import NIOEmbedded

/// What vhsmd reads from any network client before (and after) authentication.
enum ServerTargets {
    /// The first code a client's bytes meet: `ListVerbRewriter` in `ByteToMessageHandler`, fed the input in reads
    /// whose sizes the input's first byte chooses. Bytes out are the bytes in, in order, never more, changed only
    /// where a request line's `LIST ` became `LINK `; what it holds between reads stays under its bound.
    static let listVerb = FuzzTarget(
        name: "list-verb",
        summary:
            "ListVerbRewriter on arbitrary byte streams in arbitrary reads; output = input with LIST→LINK, bounded",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let first = input.first else { return }
            let stream = Array(input.dropFirst())
            let readSize = 1 + Int(first) * 4
            let channel = EmbeddedChannel(
                handler: ByteToMessageHandler(
                    ListVerbRewriter(), maximumBufferSize: ListVerbRewriter.maximumBufferSize))
            var out: [UInt8] = []
            var consumed = 0
            var failed = false
            while consumed < stream.count, !failed {
                let end = min(stream.count, consumed + readSize)
                var buffer = channel.allocator.buffer(capacity: end - consumed)
                buffer.writeBytes(stream[consumed..<end])
                consumed = end
                do { try channel.writeInbound(buffer) } catch { failed = true }
                while let piece = try? channel.readInbound(as: ByteBuffer.self) {
                    out.append(contentsOf: piece.readableBytesView)
                }
                let held = consumed - out.count
                if held > ListVerbRewriter.maximumBufferSize + readSize {
                    throw FuzzFinding(
                        "list-verb", "holds \(held) bytes, past its bound \(ListVerbRewriter.maximumBufferSize)")
                }
            }
            _ = try? channel.finish()
            while let piece = try? channel.readInbound(as: ByteBuffer.self) {
                out.append(contentsOf: piece.readableBytesView)
            }
            guard out.count <= stream.count else {
                throw FuzzFinding("list-verb", "passed on \(out.count) bytes from \(stream.count)")
            }
            var index = 0
            while index < out.count {
                if out[index] == stream[index] {
                    index += 1
                    continue
                }
                // The one change allowed: "LIST " → "LINK " (bytes 2 and 3 of the verb).
                let isRewrite =
                    index >= 2 && index + 2 < stream.count
                    && stream[(index - 2)...(index + 2)].elementsEqual("LIST ".utf8)
                    && index + 1 < out.count && out[(index - 2)...(index + 1)].elementsEqual("LINK".utf8)
                guard isRewrite else {
                    throw FuzzFinding(
                        "list-verb", "changed byte \(index) (\(stream[index]) → \(out[index])) outside a LIST verb")
                }
                index += 2
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            let requests = [
                "LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: a\r\nX-Vault-Token: t\r\n\r\n",
                "POST /v1/transit/encrypt/k HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":",
                "PUT /v1/secret/data/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n0\r\nTrailer: x\r\n\r\n",
                "GET /v1/sys/health HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes after",
                "LIST /a HTTP/1.1\r\n\r\nLIST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            ]
            return requests.flatMap { request in
                [[0] + Array(request.utf8), [7] + Array(request.utf8), [255] + Array(request.utf8)]
            }
        })

    /// ACL policies (HCL or JSON) as `sys/policies/acl` receives them.
    static let policy = FuzzTarget(
        name: "policy",
        summary: "Policy.parse (HCL and JSON policies); accepted policies reparse from their own text",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let text = FuzzInput.text(input) else { return }
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            guard let policy = try? Policy.parse(text, name: "fuzz", now: now) else { return }
            guard let again = try? Policy.parse(text, name: "fuzz", now: now), again == policy else {
                throw FuzzFinding("policy", "the same text parsed twice gives different policies")
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            [
                Policy.defaultRules,
                #"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
                """
                path "transit/encrypt/+" {
                  capabilities = ["update"]
                  allowed_parameters = { "plaintext" = [] "context" = ["a", "b"] }
                  denied_parameters = { "key_version" = [] }
                  required_parameters = ["plaintext"]
                  min_wrapping_ttl = "1s"
                  max_wrapping_ttl = "90m"
                }
                # comment
                path "sys/*" { capabilities = ["deny"] } /* block */
                """,
                #"{"path":{"secret/data/*":{"capabilities":["read"],"control_group":{"max_ttl":"1h"}}}}"#,
                "path \"a\" {\n  capabilities = <<EOT\nread\nEOT\n}",
            ].map { Array($0.utf8) }
        })

    /// Transit's `vault:v<N>:<base64>` framing for ciphertexts, signatures and HMACs; a payload that decodes
    /// re-encodes to a string that decodes to the same bytes.
    static let transitCiphertext = FuzzTarget(
        name: "transit-ciphertext",
        summary: "TransitCiphertext(parsing:) for each kind, then the payload's base64",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let text = FuzzInput.text(input) else { return }
            for kind in [TransitCiphertext.Kind.ciphertext, .signature, .hmac] {
                guard
                    let parsed = try? TransitCiphertext(
                        parsing: text, kind: kind, latestVersion: 5, minDecryptionVersion: 2)
                else { continue }
                guard (2...5).contains(parsed.version) else {
                    throw FuzzFinding("transit-ciphertext", "accepted version \(parsed.version) outside 2...5")
                }
                guard let payload = try? parsed.ciphertextBytes() else { continue }
                let encoded = TransitCiphertext.encode(version: parsed.version, payload: payload)
                guard
                    let again = try? TransitCiphertext(
                        parsing: encoded, kind: kind, latestVersion: 5, minDecryptionVersion: 2),
                    (try? again.ciphertextBytes()) == payload
                else {
                    throw FuzzFinding("transit-ciphertext", "a decoded payload does not survive encode then parse")
                }
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            [
                "vault:v1:aGVsbG8gd29ybGQ=", "vault:v3:AAECAwQFBgcICQoLDA0ODxAREhM=", "vault:v0:", "vault:v2:YQ==\r\n",
                "vault:v5:eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
            ].map { Array($0.utf8) }
        })

    /// Base64 as transit speaks it, against Foundation's: encoding is byte-identical; decoding (standard, padded)
    /// accepts and yields what Foundation does, except CR and LF, which Go (so Vault) skips and Foundation refuses,
    /// and non-zero trailing bits, which Go's non-strict decoder ignores.
    static let base64 = FuzzTarget(
        name: "base64",
        summary: "TransitBase64 encode/decode (standard and raw URL) against Foundation's Data base64",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let encoded = TransitBase64.encode(input)
            guard encoded == Data(input).base64EncodedString() else {
                throw FuzzFinding("base64", "encodes \(input.count) bytes differently from Foundation")
            }
            guard (try? TransitBase64.decode(encoded)) == input else {
                throw FuzzFinding("base64", "does not decode its own encoding of \(input.count) bytes")
            }
            let url = TransitBase64.encodeRawURL(input)
            let foundationURL = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(
                of: "/", with: "_"
            )
            .replacingOccurrences(of: "=", with: "")
            guard url == foundationURL, (try? TransitBase64.decodeRawURL(url)) == input else {
                throw FuzzFinding("base64", "raw URL encoding of \(input.count) bytes differs or does not round-trip")
            }
            // The input read as base64 text.
            guard let text = FuzzInput.text(input), !text.contains("\r"), !text.contains("\n") else { return }
            let ours = try? TransitBase64.decode(text)
            let foundation = Data(base64Encoded: text).map { Array($0) }
            switch (ours, foundation) {
            case (nil, nil): return
            case (let ours?, let foundation?) where ours == foundation: return
            case (let ours?, nil):
                // Go ignores non-zero bits after the last full byte; Foundation refuses them. Nothing else may differ.
                if let canonical = Data(base64Encoded: TransitBase64.encode(ours)).map(Array.init), canonical == ours,
                    text.count == TransitBase64.encode(ours).count
                {
                    return
                }
                throw FuzzFinding("base64", "decoded text Foundation refuses")
            case (nil, let foundation?):
                // Foundation takes excess padding ("Zm8====", also after non-zero trailing bits: "1j======"), Go (so
                // Vault) refuses it: the text without its '=' run, padded as it must be, decodes in Foundation to the
                // same bytes and is shorter.
                let bare = String(text.reversed().drop { $0 == "=" }.reversed())
                let padded = bare + String(repeating: "=", count: (4 - bare.count % 4) % 4)
                if text.count > padded.count, Data(base64Encoded: padded).map(Array.init) == foundation { return }
                // Foundation also takes '=' inside the text ("zZgmm8=m"), and text that is only padding ("=====",
                // which it decodes to a zero byte); Go refuses both.
                if bare.contains("=") || bare.isEmpty { return }
                throw FuzzFinding("base64", "refuses text Foundation decodes to \(foundation)")
            default:
                throw FuzzFinding(
                    "base64",
                    "decodes text differently from Foundation (ours \(String(describing: ours)), Foundation \(String(describing: foundation)))"
                )
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            ["", "f", "fo", "foo", "Zm9vYmFy", "Zg==", "Zm8=", "+/+/", "-_-_", "YQ"].map { Array($0.utf8) }
        })

    /// Durations as Vault reads them (`ttl`, `max_ttl`, policy wrapping TTLs): plain seconds or Go's
    /// `time.ParseDuration` units plus `d`. Never outside ±`maximumDurationSeconds`; plain integers are themselves.
    static let duration = FuzzTarget(
        name: "duration",
        summary: "JSONValue.parseDuration: in range, plain seconds exact, units scale monotonically",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let text = FuzzInput.text(input) else { return }
            let seconds = JSONValue.parseDuration(text)
            if let seconds, !(-JSONValue.maximumDurationSeconds...JSONValue.maximumDurationSeconds).contains(seconds) {
                throw FuzzFinding("duration", "'\(text)' is \(seconds) s, outside the range")
            }
            if let plain = Int64(text),
                (-JSONValue.maximumDurationSeconds...JSONValue.maximumDurationSeconds).contains(plain),
                seconds != plain
            {
                throw FuzzFinding("duration", "plain '\(text)' is \(String(describing: seconds)) s")
            }
            // A number of seconds and the same number of minutes: the minutes are 60 times as long (truncated).
            if let seconds, text.hasSuffix("s"), !text.hasSuffix("ns"), !text.hasSuffix("ms"), !text.hasSuffix("us"),
                !text.hasSuffix("µs"), let minutes = JSONValue.parseDuration(String(text.dropLast()) + "m"),
                minutes < seconds
            {
                throw FuzzFinding("duration", "'\(text)' is longer in seconds than in minutes")
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            ["30", "1h", "1h30m", "1.5h", "90m", "100ms", "1d", "768h", "0", "2562047h", "9223372036s", "1µs2us"].map {
                Array($0.utf8)
            }
        })
}
