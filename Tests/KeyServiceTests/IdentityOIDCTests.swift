import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Logging
import NIOCore
import SNP
import SNPEmulator
import Testing

@testable import KeyService

/// Identity tokens (issue 15 item 2, `identity/oidc/`) over the served pipeline (`app.test(.live)`): keys and
/// roles with Vault's shapes and refusals, tokens for a plain and an attested caller verified with the JWKS alone,
/// rotation and pruning, the keys' allowed client IDs, policies, and no private key anywhere it could leak.
@Suite struct IdentityOIDCTests {
    static let issuerBase = "https://vhsm.example.test:8200"
    static let issuer = issuerBase + "/v1/identity/oidc"

    /// A served core over dev storage with the root token `test-root`, vhsmd's address `issuerBase`, and the
    /// services (to move the identity clock and read the barrier).
    static func app(
        audit: AuditBroker = AuditBroker(), storage: EngineStorage? = nil
    ) throws -> (
        some ApplicationProtocol, Services
    ) {
        let services = try Services.open(try storage ?? DevStorage.make())
        // A reopened store already holds the root token.
        if try services.tokens.entry(token: "test-root") == nil {
            _ = try services.tokens.create(
                id: "test-root",
                entry: .root(accessor: "root-accessor"))
        }
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), audit: audit, metrics: ServiceMetrics(),
            apiAddress: APIAddress(configured: issuerBase))
        let app = try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), limits: ServerTests.patientLimits)
        return (app, services)
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String? = "test-root",
        _ body: [String: Any]? = nil
    ) async throws -> SevSNPAuthTests.Answer {
        try await SevSNPAuthTests.call(client, method, path, token: token, body)
    }

    /// The raw body of an unauthenticated GET.
    static func document(_ client: some TestClientProtocol, _ path: String) async throws -> (HTTPResponse.Status, Data)
    {
        try await client.execute(uri: "/v1/" + path, method: .get, headers: [:], body: nil) { response in
            (response.status, Data(response.body.readableBytesView))
        }
    }

    /// The claims as signed, without the relying party's time checks (tests move the identity clock).
    struct Signed: JWTPayload {
        var iss: String
        var sub: String
        var aud: String
        var iat: Int64
        var nbf: Int64
        var exp: Int64
        var namespace: String
        var snp: [String: String]?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// The `Cache-Control` header of an unauthenticated GET.
    static func cacheControl(_ client: some TestClientProtocol, _ path: String) async throws -> String? {
        try await client.execute(uri: "/v1/" + path, method: .get, headers: [:], body: nil) { response in
            response.headers[HTTPField.Name("Cache-Control")!]
        }
    }

    /// Verifies `token` with nothing but the unauthenticated JWKS, as a relying party does.
    static func verify(_ client: some TestClientProtocol, _ token: String) async throws -> Signed {
        let (status, body) = try await document(client, "identity/oidc/.well-known/keys")
        #expect(status == .ok)
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: String(decoding: body, as: UTF8.self))
        return try await keys.verify(token, as: Signed.self)
    }

    /// The `kid` of a JWT's header.
    static func kid(_ token: String) throws -> String {
        var header = String(try #require(token.split(separator: ".").first))
        header = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while header.count % 4 != 0 { header += "=" }
        let object = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: header)))
        return try #require((object as? [String: Any])?["kid"] as? String)
    }

    /// The kids the JWKS publishes.
    static func publishedKids(_ client: some TestClientProtocol) async throws -> Set<String> {
        let (_, body) = try await document(client, "identity/oidc/.well-known/keys")
        let keys = try #require(
            (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["keys"] as? [[String: Any]])
        return Set(keys.compactMap { $0["kid"] as? String })
    }

    /// Writes key `key` (with `body`) and role `role` on it; returns the role's client ID.
    static func keyAndRole(
        _ client: some TestClientProtocol, key: String = "k", role: String = "r", _ body: [String: Any] = [:],
        ttl: String = "1h"
    ) async throws -> String {
        var keyBody: [String: Any] = ["allowed_client_ids": "*"]
        keyBody.merge(body) { $1 }
        let written = try await call(client, .post, "identity/oidc/key/\(key)", keyBody)
        #expect(written.status == .noContent, "\(written.errors)")
        let made = try await call(client, .post, "identity/oidc/role/\(role)", ["key": key, "ttl": ttl])
        #expect(made.status == .noContent, "\(made.errors)")
        let read = try await call(client, .get, "identity/oidc/role/\(role)")
        return try #require(read.data["client_id"] as? String)
    }

    // MARK: keys and roles

    @Test func keysAndRolesHaveVaultsDefaultsShapesAndRefusals() async throws {
        let (app, _) = try Self.app()
        try await app.test(.live) { client in
            #expect(try await Self.call(client, SevSNPAuthTests.list, "identity/oidc/key").status == .notFound)
            // hvac's create_named_key sends the name and nulls for what it was not given.
            let hvac = try await Self.call(
                client, .post, "identity/oidc/key/k", ["name": "k", "allowed_client_ids": NSNull()])
            #expect(hvac.status == .noContent, "\(hvac.errors)")
            let read = try await Self.call(client, .get, "identity/oidc/key/k")
            #expect(read.status == .ok)
            #expect(read.data["algorithm"] as? String == "ES256")
            #expect(read.data["rotation_period"] as? Int == 86400)
            #expect(read.data["verification_ttl"] as? Int == 86400)
            #expect(read.data["allowed_client_ids"] as? [String] == [])
            #expect(Set(read.data.keys) == ["algorithm", "rotation_period", "verification_ttl", "allowed_client_ids"])
            let listed = try await Self.call(client, SevSNPAuthTests.list, "identity/oidc/key")
            #expect(listed.data["keys"] as? [String] == ["k"])
            // Each malformed key write is a 400 that says why, and changes nothing.
            for (body, text) in [
                (["algorithm": "HS256"], "unknown signing algorithm \"HS256\""),
                (["rotation_period": "30s"], "rotation_period must be at least one minute"),
                (["verification_ttl": "11h", "rotation_period": "1h"], "verification_ttl cannot be longer than 10x"),
                (["rotation_perod": "1h"], "'rotation_perod'"),
            ] as [([String: Any], String)] {
                let refused = try await Self.call(client, .post, "identity/oidc/key/k", body)
                #expect(refused.status == .badRequest, "\(body)")
                #expect(refused.errors.first?.contains(text) == true, "\(refused.errors)")
            }
            #expect(try await Self.call(client, .get, "identity/oidc/key/k").data["algorithm"] as? String == "ES256")
            // An update changes only what it names.
            let updated = try await Self.call(
                client, .post, "identity/oidc/key/k",
                ["algorithm": "EdDSA", "rotation_period": "3h", "allowed_client_ids": ["a", "b"]])
            #expect(updated.status == .noContent, "\(updated.errors)")
            let after = try await Self.call(client, .get, "identity/oidc/key/k")
            #expect(after.data["algorithm"] as? String == "EdDSA")
            #expect(after.data["rotation_period"] as? Int == 10800)
            #expect(after.data["verification_ttl"] as? Int == 86400)
            #expect(after.data["allowed_client_ids"] as? [String] == ["a", "b"])

            // Roles: the key is required and must exist; the ttl cannot outlive the key's verification.
            let noKey = try await Self.call(client, .post, "identity/oidc/role/r", ["ttl": "1h"])
            #expect(noKey.status == .badRequest && noKey.errors == ["the key parameter is required"])
            let missing = try await Self.call(client, .post, "identity/oidc/role/r", ["key": "nope"])
            #expect(missing.status == .badRequest && missing.errors == ["cannot find key \"nope\""])
            let tooLong = try await Self.call(client, .post, "identity/oidc/role/r", ["key": "k", "ttl": "25h"])
            #expect(tooLong.status == .badRequest)
            #expect(tooLong.errors.first?.contains("cannot be longer than the verification_ttl") == true)
            let template = try await Self.call(
                client, .post, "identity/oidc/role/r", ["key": "k", "template": "{\"a\": 1}"])
            #expect(template.status == .badRequest)
            #expect(template.errors.first?.contains("does not support role templates") == true)
            #expect(try await Self.call(client, .get, "identity/oidc/role/r").status == .notFound)
            #expect(try await Self.call(client, .post, "identity/oidc/role/r", ["key": "k"]).status == .noContent)
            let role = try await Self.call(client, .get, "identity/oidc/role/r")
            #expect(role.status == .ok)
            #expect(role.data["key"] as? String == "k")
            #expect(role.data["ttl"] as? Int == 86400)
            #expect(role.data["template"] as? String == "")
            // Vault generates the client ID at creation: 26 base62 characters, kept by later writes.
            let clientID = try #require(role.data["client_id"] as? String)
            #expect(clientID.count == 26 && clientID.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(try await Self.call(client, .post, "identity/oidc/role/r", ["ttl": "2h"]).status == .noContent)
            let rewritten = try await Self.call(client, .get, "identity/oidc/role/r")
            #expect(rewritten.data["client_id"] as? String == clientID && rewritten.data["ttl"] as? Int == 7200)
            #expect(
                try await Self.call(
                    client, .post, "identity/oidc/role/aws", ["key": "k", "client_id": "sts.amazonaws.com"]
                )
                .status == .noContent)
            #expect(
                try await Self.call(client, .get, "identity/oidc/role/aws").data["client_id"] as? String
                    == "sts.amazonaws.com")
            #expect(
                try await Self.call(client, SevSNPAuthTests.list, "identity/oidc/role").data["keys"] as? [String]
                    == ["aws", "r"])
            // A key in use cannot go, nor lose verification time its roles' tokens need.
            let inUse = try await Self.call(client, .delete, "identity/oidc/key/k")
            #expect(inUse.status == .badRequest)
            #expect(
                inUse.errors == ["unable to delete key \"k\" because it is currently referenced by these roles: aws, r"]
            )
            let shorter = try await Self.call(client, .post, "identity/oidc/key/k", ["verification_ttl": "1h"])
            #expect(shorter.status == .badRequest)
            #expect(shorter.errors.first?.contains("referenced by one or more roles with a token ttl greater") == true)
            #expect(try await Self.call(client, .delete, "identity/oidc/role/r").status == .noContent)
            #expect(try await Self.call(client, .delete, "identity/oidc/role/aws").status == .noContent)
            #expect(try await Self.call(client, .delete, "identity/oidc/key/k").status == .noContent)
            #expect(try await Self.call(client, .get, "identity/oidc/key/k").status == .notFound)
            let rotateMissing = try await Self.call(client, .post, "identity/oidc/key/k/rotate", [:])
            #expect(rotateMissing.status == .badRequest && rotateMissing.errors == ["no named key found at \"k\""])
            // Vault's built-in "default" key: made (RS256, every client ID) when a role first names it; never deleted.
            #expect(try await Self.call(client, .post, "identity/oidc/role/d", ["key": "default"]).status == .noContent)
            let builtIn = try await Self.call(client, .get, "identity/oidc/key/default")
            #expect(builtIn.data["algorithm"] as? String == "RS256")
            #expect(builtIn.data["allowed_client_ids"] as? [String] == ["*"])
            #expect(try await Self.call(client, .get, "identity/oidc/token/d").status == .ok)
            #expect(try await Self.call(client, .delete, "identity/oidc/role/d").status == .noContent)
            let kept = try await Self.call(client, .delete, "identity/oidc/key/default")
            #expect(kept.status == .badRequest && kept.errors == ["deletion of key \"default\" not allowed"])
            // Names follow Vault's pattern.
            #expect(try await Self.call(client, .post, "identity/oidc/key/-bad", [:]).status == .badRequest)
            // The issuer: scheme, host and port only.
            let badIssuer = try await Self.call(
                client, .post, "identity/oidc/config", ["issuer": "https://example.com/path"])
            #expect(badIssuer.status == .badRequest)
            #expect(try await Self.call(client, .get, "identity/oidc/config").data["issuer"] as? String == "")
        }
    }

    // MARK: tokens

    @Test func aPlainTokenGetsATokenNamedByItsAccessorThatTheJWKSAloneVerifies() async throws {
        let (app, _) = try Self.app()
        try await app.test(.live) { client in
            let clientID = try await Self.keyAndRole(client)
            let policy = "path \"identity/oidc/token/r\" { capabilities = [\"read\"] }"
            #expect(
                try await Self.call(client, .post, "sys/policies/acl/oidc", ["policy": policy]).status == .noContent)
            let created = try await Self.call(client, .post, "auth/token/create", ["policies": ["oidc"]])
            let token = try #require(created.auth["client_token"] as? String)
            let accessor = try #require(created.auth["accessor"] as? String)
            let answer = try await Self.call(client, .get, "identity/oidc/token/r", token: token)
            #expect(answer.status == .ok, "\(answer.errors)")
            #expect(Set(answer.data.keys) == ["client_id", "token", "ttl"])
            #expect(answer.data["client_id"] as? String == clientID)
            #expect(answer.data["ttl"] as? Int == 3600)
            let jwt = try #require(answer.data["token"] as? String)
            let claims = try await Self.verify(client, jwt)
            #expect(claims.iss == Self.issuer)
            #expect(claims.sub == accessor)
            #expect(claims.aud == clientID)
            #expect(claims.nbf == claims.iat && claims.exp == claims.iat + 3600)
            #expect(abs(claims.iat - Int64(Date().timeIntervalSince1970)) < 60)
            #expect(claims.snp == nil)
            // A token made through auth/token/create with metadata that reads like an attested login's is still a
            // plain token: named by its accessor, no snp claim (only the sev-snp method's logins carry one).
            let forged = try await Self.call(
                client, .post, "auth/token/create",
                ["policies": ["oidc"], "meta": ["role": "vm", "chip_id": String(repeating: "ab", count: 64)]])
            let forgedToken = try #require(forged.auth["client_token"] as? String)
            let forgedAnswer = try await Self.call(client, .get, "identity/oidc/token/r", token: forgedToken)
            let forgedClaims = try await Self.verify(client, try #require(forgedAnswer.data["token"] as? String))
            #expect(forgedClaims.snp == nil && forgedClaims.sub == forged.auth["accessor"] as? String)
            // A tampered token does not verify.
            var parts = jwt.split(separator: ".").map(String.init)
            parts[1] = Data(#"{"sub":"someone else"}"#.utf8).base64EncodedString()
                .replacingOccurrences(of: "=", with: "")
            await #expect(throws: (any Error).self) {
                _ = try await Self.verify(client, parts.joined(separator: "."))
            }
            // The discovery document points at the JWKS; the configured issuer replaces vhsmd's address.
            let (status, body) = try await Self.document(client, "identity/oidc/.well-known/openid-configuration")
            #expect(status == .ok)
            let discovery = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            #expect(discovery["issuer"] as? String == Self.issuer)
            #expect(discovery["jwks_uri"] as? String == Self.issuer + "/.well-known/keys")
            #expect(discovery["response_types_supported"] as? [String] == ["id_token"])
            #expect(discovery["subject_types_supported"] as? [String] == ["public"])
            #expect(
                discovery["id_token_signing_alg_values_supported"] as? [String]
                    == ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"])
            // Relying parties may cache the discovery document for an hour (Vault's header) and the JWKS until it
            // changes, at most the shortest rotation period or verification TTL (the key's: 24 h, 24 h).
            #expect(
                try await Self.cacheControl(client, "identity/oidc/.well-known/openid-configuration") == "max-age=3600")
            let keysAge = try #require(try await Self.cacheControl(client, "identity/oidc/.well-known/keys"))
            let seconds = try #require(Int(keysAge.dropFirst("max-age=".count)))
            #expect(keysAge.hasPrefix("max-age=") && (86000...86400).contains(seconds), "\(keysAge)")
            let configured = try await Self.call(
                client, .post, "identity/oidc/config", ["issuer": "https://id.example.test"])
            #expect(configured.status == .ok && (configured.body["warnings"] as? [String])?.count == 1)
            let (_, again) = try await Self.document(client, "identity/oidc/.well-known/openid-configuration")
            let reissued = try #require(try JSONSerialization.jsonObject(with: again) as? [String: Any])
            #expect(reissued["issuer"] as? String == "https://id.example.test/v1/identity/oidc")
            let next = try await Self.call(client, .get, "identity/oidc/token/r", token: token)
            let nextClaims = try await Self.verify(client, try #require(next.data["token"] as? String))
            #expect(nextClaims.iss == "https://id.example.test/v1/identity/oidc")
        }
    }

    @Test(arguments: OIDCAlgorithm.allCases)
    func everyAlgorithmSignsTokensTheJWKSVerifies(_ algorithm: OIDCAlgorithm) async throws {
        let (app, _) = try Self.app()
        try await app.test(.live) { client in
            _ = try await Self.keyAndRole(client, ["algorithm": algorithm.rawValue])
            let answer = try await Self.call(client, .get, "identity/oidc/token/r")
            #expect(answer.status == .ok, "\(answer.errors)")
            let jwt = try #require(answer.data["token"] as? String)
            let claims = try await Self.verify(client, jwt)
            #expect(claims.sub == "root-accessor")
            let (_, body) = try await Self.document(client, "identity/oidc/.well-known/keys")
            let keys = try #require(
                (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["keys"] as? [[String: Any]])
            // The signing key and the next one, each with kid, kty, alg and use.
            #expect(keys.count == 2)
            for key in keys {
                #expect(key["alg"] as? String == algorithm.rawValue)
                #expect(key["use"] as? String == "sig")
                #expect(key["kid"] is String && key["kty"] is String)
                #expect(key["d"] == nil && key["p"] == nil && key["q"] == nil)
            }
            #expect(keys.contains { $0["kid"] as? String == (try? Self.kid(jwt)) })
        }
    }

    @Test func anAttestedLoginTokenCarriesItsSNPFactsAndAStableSubject() async throws {
        let (app, services) = try Self.app()
        try await app.test(.live) { client in
            let clientID = try await Self.keyAndRole(client, role: "workload")
            let policy = "path \"identity/oidc/token/workload\" { capabilities = [\"read\"] }"
            #expect(
                try await Self.call(client, .post, "sys/policies/acl/oidc", ["policy": policy]).status == .noContent)
            try await SevSNPAuthTests.setUp(client, role: ["token_policies": ["oidc"]])
            let accessor = try #require(services.mounts.authMount(path: "sev-snp")?.accessor)
            func identityToken(_ guest: EmulatedGuest) async throws -> Signed {
                let nonce = try await SevSNPAuthTests.nonce(client)
                let login = try await SevSNPAuthTests.post(client, try SevSNPAuthTests.login(guest, nonce: nonce))
                #expect(login.status == .ok, "\(login.errors)")
                let token = try #require(login.auth["client_token"] as? String)
                let answer = try await Self.call(client, .get, "identity/oidc/token/workload", token: token)
                #expect(answer.status == .ok, "\(answer.errors)")
                return try await Self.verify(client, try #require(answer.data["token"] as? String))
            }
            let first = try await identityToken(SevSNPAuthTests.guest())
            let second = try await identityToken(SevSNPAuthTests.guest())
            let chip = Hex.encode(SevSNPAuthTests.chip.chipID)
            let expected = Hex.encode(Array(SHA256.hash(data: Array("\(accessor)/vm/\(chip)".utf8))))
            #expect(first.sub == expected)
            #expect(second.sub == expected, "one VM, one mount, one role: one subject across logins")
            #expect(first.aud == clientID)
            let snp = try #require(first.snp)
            #expect(snp["role"] == "vm")
            #expect(snp["chip_id"] == chip)
            #expect(snp["measurement"] == Hex.encode(SevSNPAuthTests.measurement))
            #expect(snp["host_data"] == Hex.encode(SevSNPAuthTests.hostData))
            #expect(snp["product"] != nil && snp["reported_tcb"] != nil && snp["vmpl"] == "0")
            #expect(snp["policy"] != nil && snp["report_id"] != nil && snp["signer"] != nil)
            // Another chip (with its own emulated root, trusted too) is another subject.
            let roots = [SevSNPAuthTests.chip.ark.pemRepresentation, SevSNPAuthTests.otherChip.ark.pemRepresentation]
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/config", ["trusted_roots": roots]).status
                    == .noContent)
            let other = try await identityToken(SevSNPAuthTests.guest(SevSNPAuthTests.otherChip))
            #expect(other.sub != expected && other.snp?["chip_id"] == Hex.encode(SevSNPAuthTests.otherChip.chipID))
        }
    }

    // MARK: rotation

    @Test func rotationKeepsTheOldKeyInTheJWKSForItsVerificationTTLThenPrunesIt() async throws {
        let (app, services) = try Self.app()
        let clock = services.identity.clock
        try await app.test(.live) { client in
            _ = try await Self.keyAndRole(client, ["rotation_period": "1h", "verification_ttl": "2h"])
            let before = try await Self.publishedKids(client)
            #expect(before.count == 2, "the signing key and the next one")
            let first = try #require(
                try await Self.call(client, .get, "identity/oidc/token/r").data["token"] as? String)
            let firstKid = try Self.kid(first)
            // A manual rotation: the next key (already published) signs; the old one stays published.
            #expect(try await Self.call(client, .post, "identity/oidc/key/k/rotate", [:]).status == .noContent)
            let second = try #require(
                try await Self.call(client, .get, "identity/oidc/token/r").data["token"] as? String)
            let secondKid = try Self.kid(second)
            #expect(secondKid != firstKid && before.contains(secondKid), "the next key was published before it signed")
            let afterRotation = try await Self.publishedKids(client)
            #expect(afterRotation.count == 3 && afterRotation.contains(firstKid))
            #expect(try await Self.verify(client, first).sub == "root-accessor")
            // Just before its verification TTL is over, the retired key still verifies.
            clock.advance(2 * 3600 - 10)
            #expect(try await Self.publishedKids(client).contains(firstKid))
            _ = try await Self.verify(client, first)
            // Past it, it is pruned, from the JWKS and from the barrier.
            clock.advance(20)
            let pruned = try await Self.publishedKids(client)
            #expect(!pruned.contains(firstKid))
            await #expect(throws: (any Error).self) { _ = try await Self.verify(client, first) }
            let stored = try #require(
                try services.storage.scoped("identity/oidc/").read(OIDCNamedKey.self, "key/k"))
            #expect(!stored.retired.contains { $0.kid == firstKid })
            // The rotation period is over too (2 h after the manual rotation): the next use rotates it.
            let third = try #require(
                try await Self.call(client, .get, "identity/oidc/token/r").data["token"] as? String)
            #expect(try Self.kid(third) != secondKid)
            #expect(try await Self.publishedKids(client).contains(secondKid), "the key it replaced stays published")
            // A rotation with its own verification_ttl of 0 retires the signing key at once.
            let thirdKid = try Self.kid(third)
            let immediate = try await Self.call(
                client, .post, "identity/oidc/key/k/rotate", ["verification_ttl": 0])
            #expect(immediate.status == .noContent)
            #expect(!(try await Self.publishedKids(client)).contains(thirdKid))
        }
    }

    @Test func thePeriodicSweepRotatesDueKeysWithoutARequest() async throws {
        let (app, services) = try Self.app()
        try await app.test(.live) { client in
            _ = try await Self.keyAndRole(client, ["rotation_period": "1h", "verification_ttl": "1h"])
            let kids = try await Self.publishedKids(client)
            #expect(try services.identity.sweep() == [])
            services.identity.clock.advance(3601)
            #expect(try services.identity.sweep() == ["k"])
            let after = try await Self.publishedKids(client)
            #expect(after.isSuperset(of: kids) && after.count == 3)
        }
    }

    @Test func keysRolesAndConfigAreKeptInTheBarrierAcrossAReopen() async throws {
        let storage = try DevStorage.make()
        let (first, _) = try Self.app(storage: storage)
        let (kids, signing, clientID) = try await first.test(.live) { client in
            let clientID = try await Self.keyAndRole(client)
            #expect(
                try await Self.call(client, .post, "identity/oidc/config", ["issuer": "https://id.example.test"])
                    .status == .ok)
            let token = try #require(
                try await Self.call(client, .get, "identity/oidc/token/r").data["token"] as? String)
            return (try await Self.publishedKids(client), try Self.kid(token), clientID)
        }
        let (second, _) = try Self.app(storage: storage)
        try await second.test(.live) { client in
            #expect(try await Self.publishedKids(client) == kids)
            #expect(try await Self.call(client, .get, "identity/oidc/role/r").data["client_id"] as? String == clientID)
            let token = try #require(
                try await Self.call(client, .get, "identity/oidc/token/r").data["token"] as? String)
            #expect(try Self.kid(token) == signing)
            #expect(try await Self.verify(client, token).iss == "https://id.example.test/v1/identity/oidc")
        }
    }

    // MARK: refusals

    @Test func aRoleWhoseClientIDTheKeyDoesNotAllowGetsNoToken() async throws {
        let (app, _) = try Self.app()
        try await app.test(.live) { client in
            #expect(try await Self.call(client, .post, "identity/oidc/key/k", [:]).status == .noContent)
            #expect(try await Self.call(client, .post, "identity/oidc/role/r", ["key": "k"]).status == .noContent)
            let clientID = try #require(
                try await Self.call(client, .get, "identity/oidc/role/r").data["client_id"] as? String)
            let refused = try await Self.call(client, .get, "identity/oidc/token/r")
            #expect(refused.status == .badRequest)
            #expect(
                refused.errors == [
                    "the key \"k\" does not list the client ID of the role \"r\" as an allowed client ID"
                ])
            #expect(
                try await Self.call(client, .post, "identity/oidc/key/k", ["allowed_client_ids": ["other"]]).status
                    == .noContent)
            #expect(try await Self.call(client, .get, "identity/oidc/token/r").status == .badRequest)
            #expect(
                try await Self.call(client, .post, "identity/oidc/key/k", ["allowed_client_ids": [clientID]]).status
                    == .noContent)
            #expect(try await Self.call(client, .get, "identity/oidc/token/r").status == .ok)
            let missing = try await Self.call(client, .get, "identity/oidc/token/nope")
            #expect(missing.status == .badRequest && missing.errors == ["role \"nope\" not found"])
        }
    }

    @Test func aPolicyWithoutTheTokenPathIsDeniedAndTheDocumentsNeedNoToken() async throws {
        let (app, _) = try Self.app()
        try await app.test(.live) { client in
            _ = try await Self.keyAndRole(client, role: "a")
            #expect(try await Self.call(client, .post, "identity/oidc/role/b", ["key": "k"]).status == .noContent)
            let policy = "path \"identity/oidc/token/a\" { capabilities = [\"read\"] }"
            #expect(
                try await Self.call(client, .post, "sys/policies/acl/only-a", ["policy": policy]).status
                    == .noContent)
            let created = try await Self.call(client, .post, "auth/token/create", ["policies": ["only-a"]])
            let token = try #require(created.auth["client_token"] as? String)
            #expect(try await Self.call(client, .get, "identity/oidc/token/a", token: token).status == .ok)
            let denied = try await Self.call(client, .get, "identity/oidc/token/b", token: token)
            #expect(denied.status == .forbidden && denied.errors.first?.contains("permission denied") == true)
            #expect(try await Self.call(client, .get, "identity/oidc/key/k", token: token).status == .forbidden)
            #expect(try await Self.call(client, .post, "identity/oidc/key/x", token: token, [:]).status == .forbidden)
            #expect(try await Self.call(client, .get, "identity/oidc/token/a", token: nil).status == .forbidden)
            #expect(try await Self.call(client, .get, "identity/oidc/role/a", token: nil).status == .forbidden)
            #expect(try await Self.document(client, "identity/oidc/.well-known/keys").0 == .ok)
            #expect(try await Self.document(client, "identity/oidc/.well-known/openid-configuration").0 == .ok)
            // A policy with create but not update on keys: a new key only (Vault's existence check).
            let creator = "path \"identity/oidc/key/*\" { capabilities = [\"create\"] }"
            #expect(
                try await Self.call(client, .post, "sys/policies/acl/creator", ["policy": creator]).status
                    == .noContent)
            let made = try await Self.call(client, .post, "auth/token/create", ["policies": ["creator"]])
            let creatorToken = try #require(made.auth["client_token"] as? String)
            #expect(
                try await Self.call(client, .post, "identity/oidc/key/new", token: creatorToken, [:]).status
                    == .noContent)
            #expect(
                try await Self.call(client, .post, "identity/oidc/key/k", token: creatorToken, ["algorithm": "RS256"])
                    .status == .forbidden)
        }
    }

    // MARK: api_addr

    @Test func apiAddrIsTheDefaultIssuerElseTheBoundListener() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        func load(_ extra: String) throws -> ServerConfig {
            try #"{"listener": {}, "storage": {"path": "/tmp/x"}, "seal": "sev-guest"\#(extra)}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return try ServerConfig.load(path)
        }
        #expect(try load("").apiAddress == nil)
        #expect(
            try load(#", "api_addr": "https://vhsm.example.com:8200""#).apiAddress == "https://vhsm.example.com:8200")
        for bad in [#""vhsm.example.com""#, #""https://vhsm.example.com/v1""#, "8200", #""ftp://x""#] {
            #expect(throws: ConfigError.self, "\(bad)") { try load(#", "api_addr": \#(bad)"#) }
        }
        // Configured: it stays, whatever the listener binds; trailing slash dropped.
        let configured = APIAddress(configured: "https://vhsm.example.com:8200/")
        configured.bound("https://0.0.0.0:8200")
        #expect(configured.current == "https://vhsm.example.com:8200")
        // Not configured: the listener's URL with the port it bound.
        let derived = APIAddress()
        #expect(derived.current == "")
        derived.bound("http://127.0.0.1:41234")
        #expect(derived.current == "http://127.0.0.1:41234")
    }

    // MARK: secrets

    @Test func noPrivateKeyAppearsInAnyResponseOrTheAuditLog() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oidc-audit-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (app, services) = try Self.app(audit: AuditBroker(devices: [try AuditDevice(filePath: path)]))
        let bodies = try await app.test(.live) { client -> [String] in
            var bodies: [String] = []
            for algorithm in ["ES256", "RS256", "EdDSA"] {
                let key = "k-\(algorithm.lowercased())"
                _ = try await Self.keyAndRole(
                    client, key: key, role: "r-\(algorithm.lowercased())", ["algorithm": algorithm])
                for (method, uri) in [
                    (HTTPRequest.Method.get, "identity/oidc/key/\(key)"), (SevSNPAuthTests.list, "identity/oidc/key"),
                    (.get, "identity/oidc/token/r-\(algorithm.lowercased())"),
                ] {
                    let answer = try await Self.call(client, method, uri)
                    #expect(answer.status == .ok)
                    if let jwt = answer.data["token"] as? String { bodies.append("JWT " + jwt) }
                    bodies.append(
                        String(decoding: try JSONSerialization.data(withJSONObject: answer.body), as: UTF8.self))
                }
                #expect(try await Self.call(client, .post, "identity/oidc/key/\(key)/rotate", [:]).status == .noContent)
            }
            bodies.append(
                String(decoding: try await Self.document(client, "identity/oidc/.well-known/keys").1, as: UTF8.self))
            return bodies
        }
        let audit = try String(contentsOfFile: path, encoding: .utf8)
        #expect(audit.contains("identity/oidc/token/"))
        // The identity tokens themselves are HMAC'd like every response string.
        let jwts = bodies.filter { $0.hasPrefix("JWT ") }.map { String($0.dropFirst(4)) }
        #expect(jwts.count == 3)
        for jwt in jwts { #expect(!audit.contains(String(jwt.split(separator: ".")[2])), "an identity token in clear") }
        let storage = services.storage.scoped("identity/oidc/")
        var secrets: [[UInt8]] = []
        for name in ["k-es256", "k-rs256", "k-eddsa"] {
            let key = try #require(try storage.read(OIDCNamedKey.self, "key/\(name)"))
            secrets += [try #require(key.current?.material), try #require(key.next?.material)]
        }
        for secret in secrets {
            // The material as stored (base64), as a JWK's "d" would carry it (base64url) and in hex; for RSA a
            // slice of the DER body, which is where the private exponent and primes are.
            let slice = secret.count > 64 ? Array(secret[secret.count / 2..<secret.count / 2 + 24]) : secret
            for form in [
                Data(secret).base64EncodedString(), TransitBase64.encodeRawURL(slice), Hex.encode(slice),
                Data(slice).base64EncodedString().replacingOccurrences(of: "=", with: ""),
            ] {
                let probe = String(form.prefix(32))
                #expect(!audit.contains(probe), "private material in the audit log")
                #expect(!bodies.contains { $0.contains(probe) }, "private material in a response")
            }
        }
    }
}
