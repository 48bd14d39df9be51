import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SNP
import Sealing
import Testing

@testable import KeyService

/// `auth/sev-snp/login` with `"wrap_to_public_key": true` (issue 15 item 1): the `auth` block comes back sealed with
/// HPKE to the login's `public_key`, over the served pipeline (`app.test(.live)`).
@Suite struct SevSNPWrappedLoginTests {
    typealias Auth = SevSNPAuthTests

    /// An ephemeral key of either HPKE curve, as the workload makes it.
    enum Key {
        case x25519(Curve25519.KeyAgreement.PrivateKey)
        case p384(P384.KeyAgreement.PrivateKey)

        var pem: String {
            switch self {
            case .x25519(let key): key.publicKey.pemRepresentation
            case .p384(let key): key.publicKey.pemRepresentation
            }
        }
        var spkiSHA256: [UInt8] {
            switch self {
            case .x25519(let key): Array(SHA256.hash(data: key.publicKey.derRepresentation))
            case .p384(let key): Array(SHA256.hash(data: key.publicKey.derRepresentation))
            }
        }
        var suite: String {
            switch self {
            case .x25519: "X25519-SHA256-ChaCha20Poly1305"
            case .p384: "P384-SHA384-AES256GCM"
            }
        }

        /// Opens with swift-crypto's HPKE directly, splitting `enc ‖ ciphertext` by the suite's `Nenc` as a client
        /// written from the README would: info `vhsm/login/auth/v1`, AAD the nonce.
        func open(_ sealed: String, nonce: [UInt8], info: String = "vhsm/login/auth/v1") throws -> Data {
            let bytes = try #require(Data(base64Encoded: sealed))
            switch self {
            case .x25519(let key):
                var recipient = try HPKE.Recipient(
                    privateKey: key, ciphersuite: .Curve25519_SHA256_ChachaPoly, info: Data(info.utf8),
                    encapsulatedKey: bytes.prefix(32))
                return try recipient.open(bytes.dropFirst(32), authenticating: nonce)
            case .p384(let key):
                var recipient = try HPKE.Recipient(
                    privateKey: key, ciphersuite: .P384_SHA384_AES_GCM_256, info: Data(info.utf8),
                    encapsulatedKey: bytes.prefix(97))
                return try recipient.open(bytes.dropFirst(97), authenticating: nonce)
            }
        }
    }

    /// A login body for `key` asking for the sealed answer.
    static func wrapped(_ client: some TestClientProtocol, key: Key) async throws -> (body: [String: Any], [UInt8]) {
        let nonce = try await Auth.nonce(client)
        var body = try Auth.login(Auth.guest(), nonce: nonce, key: key.spkiSHA256)
        body["public_key"] = key.pem
        body["wrap_to_public_key"] = true
        return (body, nonce)
    }

    @Test(arguments: ["x25519", "p384"])
    func aWrappedLoginOpensWithThePrivateKeyToTheUnwrappedAuthShapeAndItsTokenWorks(_ curve: String) async throws {
        let key: Key =
            curve == "x25519" ? .x25519(Curve25519.KeyAgreement.PrivateKey()) : .p384(P384.KeyAgreement.PrivateKey())
        let other: Key =
            curve == "x25519" ? .x25519(Curve25519.KeyAgreement.PrivateKey()) : .p384(P384.KeyAgreement.PrivateKey())
        try await Auth.app().test(.live) { client in
            #expect(
                try await Auth.call(
                    client, .post, "sys/policies/acl/vm-read",
                    ["policy": "path \"secret/data/allowed\" { capabilities = [\"read\"] }"]
                ).status == .noContent)
            #expect(try await Auth.call(client, .post, "secret/data/allowed", ["data": ["v": "1"]]).status == .ok)
            try await Auth.setUp(client, role: ["token_policies": ["vm-read"], "token_ttl": "15m"])
            // The unwrapped answer, for its shape.
            let plain = try await Auth.post(
                client, try Auth.login(Auth.guest(), nonce: try await Auth.nonce(client)))
            #expect(plain.status == .ok)

            let (body, nonce) = try await Self.wrapped(client, key: key)
            let answer = try await Auth.post(client, body)
            #expect(answer.status == .ok, "\(answer.errors)")
            #expect(answer.body["auth"] is NSNull, "the auth block is not in the clear")
            #expect(Set(answer.data.keys) == ["sealed_auth", "suite", "info"])
            #expect(answer.data["suite"] as? String == key.suite)
            #expect(answer.data["info"] as? String == "vhsm/login/auth/v1")
            let sealed = try #require(answer.data["sealed_auth"] as? String)

            let opened = try key.open(sealed, nonce: nonce)
            let auth = try #require(try JSONSerialization.jsonObject(with: opened) as? [String: Any])
            #expect(Set(auth.keys) == Set(plain.auth.keys))
            #expect(auth["policies"] as? [String] == ["default", "vm-read"])
            #expect(auth["lease_duration"] as? Int == 900 && auth["renewable"] as? Bool == true)
            #expect((auth["metadata"] as? [String: String])?["role"] == "vm")
            let token = try #require(auth["client_token"] as? String)
            #expect(token != plain.auth["client_token"] as? String)
            // The same bytes through the CLI's opener (Sealing), with the private key's PEM as a file would hold it.
            let privatePEM: String =
                switch key {
                case .x25519(let k): k.pemRepresentation
                case .p384(let k): k.pemRepresentation
                }
            let viaSealing = try SealedLoginAuth.open(
                sealed, suite: key.suite, info: SealedLoginAuth.info,
                with: try #require(HPKEPrivateKey(pem: privatePEM)),
                nonce: nonce)
            #expect(viaSealing == opened)
            // The token works.
            #expect(try await Auth.call(client, .get, "secret/data/allowed", token: token).status == .ok)
            let looked = try await Auth.call(client, .get, "auth/token/lookup-self", token: token)
            #expect(looked.data["path"] as? String == "auth/sev-snp/login")
            #expect(looked.data["accessor"] as? String == auth["accessor"] as? String)

            // Another key, another nonce (the AAD) or another info: it does not open.
            #expect(throws: (any Error).self) { _ = try other.open(sealed, nonce: nonce) }
            var otherNonce = nonce
            otherNonce[0] ^= 1
            #expect(throws: (any Error).self) { _ = try key.open(sealed, nonce: otherNonce) }
            #expect(throws: (any Error).self) { _ = try key.open(sealed, nonce: nonce, info: "vhsm/login/auth/v2") }
            // One flipped byte anywhere in enc or the ciphertext: it does not open.
            var bytes = Array(try #require(Data(base64Encoded: sealed)))
            for offset in [0, bytes.count / 2, bytes.count - 1] {
                bytes[offset] ^= 0x80
                #expect(throws: (any Error).self) {
                    _ = try key.open(Data(bytes).base64EncodedString(), nonce: nonce)
                }
                bytes[offset] ^= 0x80
            }
        }
    }

    @Test func wrappingWithoutAKeyOrWithAKeyHPKECannotUseIs400AndSpendsTheNonce() async throws {
        try await Auth.app().test(.live) { client in
            try await Auth.setUp(client)
            // No public_key.
            let bare = try await Auth.nonce(client)
            var body = try Auth.login(Auth.guest(), nonce: bare)
            body["wrap_to_public_key"] = true
            let missing = try await Auth.post(client, body)
            #expect(missing.status == .badRequest)
            #expect(
                missing.errors == [
                    "'wrap_to_public_key' needs 'public_key': the PEM SubjectPublicKeyInfo of the P-384 or X25519 key to "
                        + "seal the auth block to"
                ])
            // The nonce was spent by the malformed login: the right body with it is refused for the nonce.
            body["wrap_to_public_key"] = nil
            let again = try await Auth.post(client, body)
            #expect(again.status == .forbidden)
            #expect(again.errors.first?.contains("not one vhsmd issued, or it was already spent") == true)
            // A P-256 key (bound as K, but no HPKE suite here) and an Ed25519 key.
            for pem in [
                P256.KeyAgreement.PrivateKey().publicKey.pemRepresentation,
                Curve25519.Signing.PrivateKey().publicKey.pemRepresentation,
            ] {
                let nonce = try await Auth.nonce(client)
                var other = try Auth.login(Auth.guest(), nonce: nonce)
                other["public_key"] = pem
                other["wrap_to_public_key"] = true
                let refused = try await Auth.post(client, other)
                #expect(refused.status == .badRequest)
                #expect(refused.errors.count == 1)
                #expect(refused.errors.first?.hasPrefix("'wrap_to_public_key' needs a P-384 or X25519") == true)
                #expect(refused.body["data"] == nil && refused.auth.isEmpty)
                other["wrap_to_public_key"] = nil
                #expect(try await Auth.post(client, other).status == .forbidden, "the nonce was spent")
            }
            // Not a boolean.
            var text = try Auth.login(Auth.guest(), nonce: try await Auth.nonce(client))
            text["wrap_to_public_key"] = "yes"
            let notBool = try await Auth.post(client, text)
            #expect(notBool.status == .badRequest)
            #expect(notBool.errors == ["'wrap_to_public_key' must be true or false"])
            // A refusal is not wrapped: it carries no secret, and says why in the clear.
            let key = Key.x25519(Curve25519.KeyAgreement.PrivateKey())
            var (wrongRole, _) = try await Self.wrapped(client, key: key)
            wrongRole["report"] =
                try Auth.login(
                    Auth.guest(measurement: Auth.otherMeasurement),
                    nonce: try Hex.decode(wrongRole["nonce"] as! String),
                    key: key.spkiSHA256)["report"]
            let refused = try await Auth.post(client, wrongRole)
            #expect(refused.status == .forbidden)
            #expect(refused.errors.contains { $0.hasPrefix("MEASUREMENT") }, "\(refused.errors)")
            #expect(refused.body["data"] == nil)
        }
    }

    @Test func theAuditLogHasNeitherTheTokenNorTheSealedPlaintext() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/audit.log"
        let audit = AuditBroker(devices: [try AuditDevice(filePath: path)])
        let key = Key.p384(P384.KeyAgreement.PrivateKey())
        let (auth, sealed) = try await Auth.app(audit: audit).test(.live) { client in
            try await Auth.setUp(client)
            let (body, nonce) = try await Self.wrapped(client, key: key)
            let answer = try await Auth.post(client, body)
            #expect(answer.status == .ok, "\(answer.errors)")
            let sealed = try #require(answer.data["sealed_auth"] as? String)
            let opened = try key.open(sealed, nonce: nonce)
            return (try #require(String(data: opened, encoding: .utf8)), sealed)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(auth.utf8)) as? [String: Any])
        let token = try #require(object["client_token"] as? String)
        let accessor = try #require(object["accessor"] as? String)
        let log = try String(contentsOfFile: path, encoding: .utf8)
        #expect(log.contains("auth/sev-snp/login"))
        #expect(!log.contains(token), "the issued token is never recorded")
        #expect(!log.contains(accessor), "nor its accessor")
        #expect(!log.contains(auth) && !log.contains(sealed), "nor the sealed block or its plaintext")
        // The issue is recorded, hashed: the response line's auth carries the token's HMAC.
        let lines = log.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let response = try #require(
            lines.last { ($0["type"] as? String) == "response" }?["response"] as? [String: Any])
        let logged = try #require(response["auth"] as? [String: Any])
        #expect((logged["client_token"] as? String)?.hasPrefix("hmac-sha256:") == true)
        #expect((logged["accessor"] as? String)?.hasPrefix("hmac-sha256:") == true)
        #expect(((response["data"] as? [String: Any])?["sealed_auth"] as? String)?.hasPrefix("hmac-sha256:") == true)
    }
}
