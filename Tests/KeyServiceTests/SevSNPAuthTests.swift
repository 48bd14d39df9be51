import AttestedTLS
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOSSL
import SNP
import SNPEmulator
import SwiftASN1
import Testing
import X509

@testable import KeyService

/// `auth/sev-snp` (issue 15 item 1) over the served pipeline (`app.test(.live)`): `sys/auth` enable, list and
/// disable; `config` and `role/:name` in the barrier; `nonce` and `login` without a token, with the issue's bad
/// inputs and attacks.
@Suite struct SevSNPAuthTests {
    static let chip: ChipState = try! ChipState.create(product: .milan)
    static let otherChip: ChipState = try! ChipState.create(product: .milan)
    static let measurement = Array(repeating: UInt8(0x5A), count: 48)
    static let otherMeasurement = Array(repeating: UInt8(0x6B), count: 48)
    static let hostData = Array(repeating: UInt8(0x11), count: 32)

    static func guest(
        _ chip: ChipState = chip, measurement: [UInt8] = measurement, policy: UInt64 = 0x30000,
        hostData: [UInt8] = hostData, identity: LaunchIdentity? = nil
    ) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip,
            launch: LaunchContext(
                measurement: measurement, policy: GuestPolicy(rawValue: policy), hostData: hostData,
                idBlock: identity))
    }

    /// A served core over dev storage with a root token `test-root`; `served` is S (the served SPKI's SHA-256).
    static func app(
        served: [UInt8] = AttestedLoginBinding.absent, audit: AuditBroker = AuditBroker(), tls: TLSIdentity? = nil
    ) throws -> some ApplicationProtocol {
        let services = try Services.open(try DevStorage.make())
        _ = try services.tokens.create(
            id: "test-root",
            entry: .root(accessor: "acc"))
        try services.mounts.enable(path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), audit: audit, metrics: ServiceMetrics(), servedSPKISHA256: served)
        return try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), tls: tls?.configuration,
            limits: ServerTests.patientLimits)
    }

    static let list = HTTPRequest.Method("LIST")!

    struct Answer {
        let status: HTTPResponse.Status
        let body: [String: Any]
        let retryAfter: String?
        var errors: [String] { body["errors"] as? [String] ?? [] }
        var data: [String: Any] { body["data"] as? [String: Any] ?? [:] }
        var auth: [String: Any] { body["auth"] as? [String: Any] ?? [:] }
    }

    /// One request; `token` nil sends none.
    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String? = "test-root",
        _ body: [String: Any]? = nil
    ) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[HTTPField.Name("X-Vault-Token")!] = token }
        let bytes = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        return try await client.execute(
            uri: "/v1/" + path, method: method, headers: headers,
            body: bytes.map { ByteBuffer(bytes: $0) }
        ) { response in
            let parsed =
                response.body.readableBytes == 0
                ? [:]
                : (try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                    ?? [:])
            return Answer(
                status: response.status, body: parsed, retryAfter: response.headers[HTTPField.Name("Retry-After")!])
        }
    }

    /// Enables `auth/sev-snp/`, trusts the emulator chip's ARK and writes role `vm` (the measurement, plus `extra`).
    static func setUp(
        _ client: some TestClientProtocol, role extra: [String: Any] = [:], trust: Bool = true
    ) async throws {
        #expect(try await call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
        if trust {
            let answer = try await call(
                client, .post, "auth/sev-snp/config", ["trusted_roots": [chip.ark.pemRepresentation]])
            #expect(answer.status == .noContent, "\(answer.errors)")
        }
        var role: [String: Any] = ["bound_measurements": [Hex.encode(measurement)]]
        role.merge(extra) { $1 }
        let answer = try await call(client, .post, "auth/sev-snp/role/vm", role)
        #expect(answer.status == .noContent, "\(answer.errors)")
    }

    /// A nonce from `auth/sev-snp/nonce`, without a token.
    static func nonce(_ client: some TestClientProtocol) async throws -> [UInt8] {
        let answer = try await call(client, .post, "auth/sev-snp/nonce", token: nil)
        #expect(answer.status == .ok, "\(answer.errors)")
        return try Hex.decode(try #require(answer.data["nonce"] as? String), count: 32)
    }

    /// The login body for `guest`'s report binding `nonce`, `key` (K) and `audience` (S).
    static func login(
        _ guest: EmulatedGuest, nonce: [UInt8], key: [UInt8]? = nil, audience: [UInt8] = AttestedLoginBinding.absent,
        role: String = "vm"
    ) throws -> [String: Any] {
        let data = try #require(
            AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: audience))
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data))
        let report = try response.checked()
        let certificates = AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey)
        return [
            "role": role, "nonce": Hex.encode(nonce), "report": Data(report.bytes).base64EncodedString(),
            "certificates": certificates.map { Data($0).base64EncodedString() },
        ]
    }

    /// Logs in with `body` (no token).
    static func post(_ client: some TestClientProtocol, _ body: [String: Any]) async throws -> Answer {
        try await call(client, .post, "auth/sev-snp/login", token: nil, body)
    }

    // MARK: sys/auth

    @Test func sysAuthEnablesListsReadsAndDisablesTheMethodAlongsideTheTokenStore() async throws {
        try await Self.app().test(.live) { client in
            // hvac's sys.enable_auth_method(method_type="sev-snp", path="vms", description=..., config=...).
            let enabled = try await Self.call(
                client, .post, "sys/auth/vms",
                ["type": "sev-snp", "description": "workloads", "config": ["default_lease_ttl": "1h"]])
            #expect(enabled.status == .noContent, "\(enabled.errors)")
            #expect(try await Self.call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
            let listed = try await Self.call(client, .get, "sys/auth")
            #expect(listed.status == .ok)
            #expect(Set(listed.data.keys) == ["token/", "vms/", "sev-snp/"])
            let vms = try #require(listed.data["vms/"] as? [String: Any])
            #expect(vms["type"] as? String == "sev-snp")
            #expect(vms["description"] as? String == "workloads")
            #expect((vms["accessor"] as? String)?.hasPrefix("auth_sev-snp_") == true)
            #expect((vms["config"] as? [String: Any])?["default_lease_ttl"] as? Int == 3600)
            #expect((vms["config"] as? [String: Any])?["token_type"] as? String == "default-service")
            #expect(listed.body["vms/"] != nil, "Vault repeats the listing at the top level")
            let one = try await Self.call(client, .get, "sys/auth/vms")
            #expect(one.status == .ok && one.data["type"] as? String == "sev-snp")
            // Not a secrets engine: sys/mounts does not list it, nor mount the type.
            let mounts = try await Self.call(client, .get, "sys/mounts")
            #expect(mounts.data.keys.allSatisfy { !$0.hasPrefix("auth/") })
            let asEngine = try await Self.call(client, .post, "sys/mounts/x", ["type": "sev-snp"])
            #expect(asEngine.status == .badRequest && asEngine.errors.first?.contains("auth method") == true)
            // Refusals: an unknown type, the token store's path, a path in use, no type.
            let unknown = try await Self.call(client, .post, "sys/auth/a", ["type": "approle"])
            #expect(unknown.status == .badRequest && unknown.errors.first?.contains("approle") == true)
            #expect(try await Self.call(client, .post, "sys/auth/token", ["type": "sev-snp"]).status == .badRequest)
            let taken = try await Self.call(client, .post, "sys/auth/vms", ["type": "sev-snp"])
            #expect(taken.status == .badRequest && taken.errors == ["path is already in use at auth/vms/"])
            #expect(try await Self.call(client, .post, "sys/auth/b", [:]).status == .badRequest)
            // A role written, then the method disabled: its roles go with it.
            let role = try await Self.call(
                client, .post, "auth/vms/role/r", ["bound_measurements": [Hex.encode(Self.measurement)]])
            #expect(role.status == .noContent, "\(role.errors)")
            // sys/mounts cannot disable an auth method.
            #expect(try await Self.call(client, .delete, "sys/mounts/auth/vms").status == .noContent)
            #expect(try await Self.call(client, .get, "auth/vms/role/r").status == .ok)
            #expect(try await Self.call(client, .delete, "sys/auth/vms").status == .noContent)
            #expect(Set(try await Self.call(client, .get, "sys/auth").data.keys) == ["token/", "sev-snp/"])
            #expect(try await Self.call(client, .get, "auth/vms/role/r").status == .notFound)
            #expect(try await Self.call(client, .post, "sys/auth/vms", ["type": "sev-snp"]).status == .noContent)
            #expect(try await Self.call(client, .get, "auth/vms/role/r").status == .notFound)
            // The token store stays.
            #expect(try await Self.call(client, .delete, "sys/auth/token").status == .badRequest)
            // Configuration and roles need a token; nonce and login do not.
            #expect(try await Self.call(client, .get, "auth/vms/config", token: nil).status == .forbidden)
            #expect(try await Self.call(client, .get, "auth/vms/role/r", token: nil).status == .forbidden)
            #expect(try await Self.call(client, .post, "auth/vms/nonce", token: nil).status == .ok)
        }
    }

    @Test func anAuthMethodMountSurvivesAReopenOfTheStore() throws {
        let storage = try DevStorage.make()
        let services = try Services.open(storage)
        try services.mounts.enable(path: "vms", type: "sev-snp", description: "d", options: [:], auth: true)
        let (mount, relative) = try #require(services.mounts.route("auth/vms/role/r"))
        #expect(mount.path == "auth/vms/" && relative == "role/r")
        let reopened = try Services.open(storage)
        let again = try #require(reopened.mounts.authMount(path: "vms"))
        #expect(again.type == "sev-snp" && again.uuid == mount.uuid && again.backend is SevSNPAuthBackend)
        // Not a secrets engine: sys/mounts neither lists nor disables it.
        #expect(reopened.mounts.list().keys.allSatisfy { !$0.hasPrefix("auth/") })
        try reopened.mounts.disable(path: "auth/vms")
        #expect(reopened.mounts.authMount(path: "vms") != nil)
        try reopened.mounts.disable(path: "vms", auth: true)
        #expect(reopened.mounts.authMount(path: "vms") == nil)
        #expect(try Services.open(storage).mounts.authMount(path: "vms") == nil)
    }

    // MARK: config and roles

    @Test func configHasDefaultsAndIsStoredCheckedField() async throws {
        try await Self.app().test(.live) { client in
            #expect(try await Self.call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
            let defaults = try await Self.call(client, .get, "auth/sev-snp/config")
            #expect(defaults.status == .ok)
            #expect(defaults.data["nonce_ttl"] as? Int == 60)
            #expect(defaults.data["clock_skew"] as? Int == 0)
            #expect((defaults.data["trusted_roots"] as? [String]) == [])
            let audience = String(repeating: "AB", count: 32)
            let written = try await Self.call(
                client, .post, "auth/sev-snp/config",
                [
                    "trusted_roots": [Self.chip.ark.pemRepresentation], "nonce_ttl": "2m",
                    "audience_spki_sha256": [audience], "clock_skew": "30s",
                ])
            #expect(written.status == .noContent, "\(written.errors)")
            let read = try await Self.call(client, .get, "auth/sev-snp/config")
            #expect(read.data["nonce_ttl"] as? Int == 120)
            #expect(read.data["clock_skew"] as? Int == 30)
            #expect(read.data["audience_spki_sha256"] as? [String] == [audience.lowercased()])
            #expect(read.data["trusted_roots"] as? [String] == [Self.chip.ark.pemRepresentation])
            // The nonce store follows nonce_ttl.
            let nonce = try await Self.call(client, .post, "auth/sev-snp/nonce", token: nil)
            #expect(nonce.data["ttl"] as? Int == 120)
            // Each malformed field is a 400 naming it, and nothing changes.
            for (body, field) in [
                (["audience_spki_sha256": ["abcd"]], "audience_spki_sha256"),
                (["trusted_roots": ["not a pem"]], "trusted_roots"),
                (["trusted_roots": [Self.chip.ask.pemRepresentation]], "trusted_roots"),
                (["nonce_ttl": "forever"], "nonce_ttl"), (["nonce_ttl": "0s"], "nonce_ttl"),
                (["nonce_ttl": "6m"], "nonce_ttl"),
                (["clock_skew": "2h"], "clock_skew"), (["nonce_tll": "1m"], "'nonce_tll'"),
            ] as [([String: Any], String)] {
                let refused = try await Self.call(client, .post, "auth/sev-snp/config", body)
                #expect(refused.status == .badRequest, "\(body)")
                #expect(refused.errors.first?.contains(field) == true, "\(refused.errors)")
            }
            #expect(try await Self.call(client, .get, "auth/sev-snp/config").data["nonce_ttl"] as? Int == 120)
        }
    }

    @Test func rolesAreWrittenReadListedAndDeletedWithEveryConstraint() async throws {
        try await Self.app().test(.live) { client in
            #expect(try await Self.call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
            #expect(
                try await Self.call(client, .post, "sys/policies/acl/reader", ["policy": "path \"secret/*\" {}"])
                    .status == .noContent)
            #expect(try await Self.call(client, Self.list, "auth/sev-snp/role").status == .notFound)
            let digest = String(repeating: "c3", count: 48)
            let role: [String: Any] = [
                "bound_measurements": [Hex.encode(Self.measurement)], "bound_host_data": Hex.encode(Self.hostData),
                "bound_id_key_digests": [digest], "bound_author_key_digests": [digest],
                "bound_family_ids": [String(repeating: "01", count: 16)],
                "bound_image_ids": [String(repeating: "02", count: 16)], "min_guest_svn": 3,
                "min_tcb": "0400000000000018", "bound_products": ["Milan", "genoa"],
                "bound_chip_ids": [Hex.encode(Self.chip.chipID)], "bound_vmpl": 0, "allow_debug": false,
                "allow_vlek": false, "permit_provisional_firmware": true, "minimum_launch_tcb": "0400000000000017",
                "token_policies": ["reader"], "token_ttl": "10m", "token_max_ttl": "1h", "token_period": 0,
                "token_num_uses": 5, "token_type": "service", "token_no_default_policy": true,
            ]
            let written = try await Self.call(client, .post, "auth/sev-snp/role/web-1", role)
            #expect(written.status == .noContent, "\(written.errors)")
            let read = try await Self.call(client, .get, "auth/sev-snp/role/web-1")
            #expect(read.status == .ok)
            #expect(read.data["bound_measurements"] as? [String] == [Hex.encode(Self.measurement)])
            #expect(read.data["bound_products"] as? [String] == ["milan", "genoa"])
            #expect(read.data["min_guest_svn"] as? Int == 3)
            #expect(read.data["min_tcb"] as? String == "0400000000000018")
            #expect(read.data["allow_vlek"] as? Bool == false)
            #expect(read.data["permit_provisional_firmware"] as? Bool == true)
            #expect(read.data["token_ttl"] as? Int == 600)
            #expect(read.data["token_max_ttl"] as? Int == 3600)
            #expect(read.data["token_num_uses"] as? Int == 5)
            #expect(read.data["token_policies"] as? [String] == ["reader"])
            #expect(read.data["token_no_default_policy"] as? Bool == true)
            // A write changes only the fields it names.
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/web-1", ["token_ttl": "20m"]).status
                    == .noContent)
            let updated = try await Self.call(client, .get, "auth/sev-snp/role/web-1")
            #expect(updated.data["token_ttl"] as? Int == 1200)
            #expect(updated.data["min_guest_svn"] as? Int == 3)
            // Vault's legacy names.
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/web-1", ["ttl": "7m", "max_ttl": "50m"]).status
                    == .noContent)
            let legacy = try await Self.call(client, .get, "auth/sev-snp/role/web-1")
            #expect(legacy.data["token_ttl"] as? Int == 420 && legacy.data["token_max_ttl"] as? Int == 3000)
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/role/signed", ["bound_id_key_digests": [digest]]
                ).status == .noContent)
            let listed = try await Self.call(client, Self.list, "auth/sev-snp/role")
            #expect(listed.data["keys"] as? [String] == ["signed", "web-1"])
            #expect(try await Self.call(client, .delete, "auth/sev-snp/role/signed").status == .noContent)
            #expect(try await Self.call(client, .get, "auth/sev-snp/role/signed").status == .notFound)
            #expect(try await Self.call(client, Self.list, "auth/sev-snp/role").data["keys"] as? [String] == ["web-1"])
        }
    }

    @Test func aRoleWithoutAnIdentityOrWithMalformedValuesIsRefusedNamingTheField() async throws {
        try await Self.app().test(.live) { client in
            #expect(try await Self.call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
            let anonymous = try await Self.call(
                client, .post, "auth/sev-snp/role/any", ["bound_host_data": Hex.encode(Self.hostData)])
            #expect(anonymous.status == .badRequest)
            #expect(anonymous.errors.first?.contains("must name an identity") == true, "\(anonymous.errors)")
            let measurement = Hex.encode(Self.measurement)
            for (body, field) in [
                (["bound_measurements": ["zz"]], "bound_measurements item 1"),
                (["bound_measurements": [measurement, "abcd"]], "bound_measurements item 2"),
                (["bound_measurements": [measurement], "bound_host_data": "xyz"], "bound_host_data"),
                (["bound_measurements": [measurement], "bound_chip_ids": [measurement]], "bound_chip_ids item 1"),
                (["bound_measurements": [measurement], "min_tcb": "04"], "min_tcb"),
                (["bound_measurements": [measurement], "bound_products": ["Naples"]], "bound_products"),
                (["bound_measurements": [measurement], "bound_vmpl": 7], "bound_vmpl"),
                (["bound_measurements": [measurement], "token_type": "weird"], "token_type"),
                (["bound_measurements": [measurement], "token_policies": ["missing"]], "missing"),
                (["bound_measurements": [measurement], "token_ttl": "2h", "token_max_ttl": "1h"], "token_ttl"),
                // A misspelt constraint is refused, not ignored: the role would be weaker than it reads.
                (["bound_measurements": [measurement], "min_tcbb": "0400000000000018"], "'min_tcbb'"),
                (["bound_measurement": [measurement]], "'bound_measurement'"),
            ] as [([String: Any], String)] {
                let refused = try await Self.call(client, .post, "auth/sev-snp/role/bad", body)
                #expect(refused.status == .badRequest, "\(body)")
                #expect(refused.errors.first?.contains(field) == true, "\(field): \(refused.errors)")
            }
            #expect(try await Self.call(client, .get, "auth/sev-snp/role/bad").status == .notFound)
        }
    }

    // MARK: nonce and login

    @Test func aLoginIssuesATokenInVaultsAuthShapeThatServesItsPolicy() async throws {
        try await Self.app().test(.live) { client in
            #expect(
                try await Self.call(
                    client, .post, "sys/policies/acl/vm-read",
                    ["policy": "path \"secret/data/allowed\" { capabilities = [\"read\"] }"]
                ).status == .noContent)
            #expect(
                try await Self.call(client, .post, "secret/data/allowed", ["data": ["v": "1"]]).status == .ok)
            #expect(try await Self.call(client, .post, "secret/data/other", ["data": ["v": "2"]]).status == .ok)
            try await Self.setUp(client, role: ["token_policies": ["vm-read"], "token_ttl": "15m"])
            let drawn = try await Self.call(client, .post, "auth/sev-snp/nonce", token: nil)
            #expect(drawn.status == .ok)
            #expect(drawn.data["ttl"] as? Int == 60)
            let expires = try #require(drawn.data["expires_at"] as? String)
            // RFC 3339 (Go's RFC3339Nano): the whole seconds are a minute from now.
            #expect(expires.hasSuffix("Z"))
            let seconds = ISO8601DateFormatter().date(from: String(expires.prefix(19)) + "Z")
            #expect(seconds.map { (50...61).contains($0.timeIntervalSinceNow) } == true, "\(expires)")
            let nonce = try Hex.decode(try #require(drawn.data["nonce"] as? String), count: 32)
            let answer = try await Self.post(client, try Self.login(Self.guest(), nonce: nonce))
            #expect(answer.status == .ok, "\(answer.errors)")
            let auth = answer.auth
            let token = try #require(auth["client_token"] as? String)
            #expect(token.hasPrefix("s."))
            #expect((auth["accessor"] as? String)?.isEmpty == false)
            #expect(auth["policies"] as? [String] == ["default", "vm-read"])
            #expect(auth["token_policies"] as? [String] == ["default", "vm-read"])
            #expect(auth["lease_duration"] as? Int == 900)
            #expect(auth["renewable"] as? Bool == true)
            let metadata = try #require(auth["metadata"] as? [String: String])
            #expect(metadata["role"] == "vm")
            #expect(metadata["measurement"] == Hex.encode(Self.measurement))
            #expect(metadata["product"] == "Milan")
            #expect(metadata["chip_id"] == Hex.encode(Self.chip.chipID))
            #expect(metadata["reported_tcb"] == Self.chip.reportedTCBVersion.hex)
            #expect(metadata["host_data"] == Hex.encode(Self.hostData))
            #expect(metadata["policy"] == "0x30000")
            #expect(metadata["vmpl"] == "0")
            #expect(metadata["report_id"]?.count == 64)
            #expect(metadata["id_key_digest"] == nil, "no ID block: no ID block fields")
            // The token reads what its policy allows and nothing else, and renews like any other.
            #expect(try await Self.call(client, .get, "secret/data/allowed", token: token).status == .ok)
            #expect(try await Self.call(client, .get, "secret/data/other", token: token).status == .forbidden)
            let looked = try await Self.call(client, .get, "auth/token/lookup-self", token: token)
            #expect(looked.data["path"] as? String == "auth/sev-snp/login")
            #expect((looked.data["meta"] as? [String: String])?["role"] == "vm")
            let renewed = try await Self.call(client, .post, "auth/token/renew-self", token: token, [:])
            #expect(renewed.status == .ok, "\(renewed.errors)")
            #expect(
                try await Self.call(client, .post, "auth/token/revoke-self", token: token, [:]).status == .noContent)
            #expect(try await Self.call(client, .get, "secret/data/allowed", token: token).status == .forbidden)
        }
    }

    /// POST over a raw (TLS) client.
    static func post(
        _ client: TestClient, _ path: String, token: String? = "test-root", _ body: [String: Any] = [:]
    ) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[HTTPField.Name("X-Vault-Token")!] = token }
        let response = try await client.post(
            "/v1/" + path, headers: headers, body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let bytes = response.body.map { Data($0.readableBytesView) } ?? Data()
        let parsed = bytes.isEmpty ? [:] : (try JSONSerialization.jsonObject(with: bytes) as? [String: Any] ?? [:])
        return Answer(status: response.status, body: parsed, retryAfter: nil)
    }

    @Test func overTLSTheLoginBindsTheSPKIOfTheHandshakesCertificate() async throws {
        let directory = TemporaryDirectory()
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        // What vhsmd serves in config mode over HTTPS (`VHSMD.run`).
        let app = try Self.app(served: VHSMD.servedSPKISHA256(identity), tls: identity)
        try await app.test(.live) { live in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            try await TestClient.withClient(
                host: "127.0.0.1", port: try #require(live.port),
                configuration: .init(tlsConfiguration: configuration, serverName: "localhost")
            ) { client in
                #expect(try await Self.post(client, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
                #expect(
                    try await Self.post(
                        client, "auth/sev-snp/config", ["trusted_roots": [Self.chip.ark.pemRepresentation]]
                    ).status == .noContent)
                #expect(
                    try await Self.post(
                        client, "auth/sev-snp/role/vm", ["bound_measurements": [Hex.encode(Self.measurement)]]
                    ).status == .noContent)
                // S is what the client saw: the SPKI of the handshake's leaf.
                let channel = try await client.channelPromise.futureResult.get()
                let leaf = try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
                }.get()
                let handshake = try Certificate(derEncoded: try #require(leaf).toDERBytes())
                let seen = Array(SHA256.hash(data: handshake.publicKey.subjectPublicKeyInfoDER))
                func nonce() async throws -> [UInt8] {
                    let answer = try await Self.post(client, "auth/sev-snp/nonce", token: nil)
                    return try Hex.decode(try #require(answer.data["nonce"] as? String), count: 32)
                }
                let accepted = try await Self.post(
                    client, "auth/sev-snp/login", token: nil,
                    try Self.login(Self.guest(), nonce: try await nonce(), audience: seen))
                #expect(accepted.status == .ok, "\(accepted.errors)")
                #expect(accepted.auth["client_token"] is String)
                // Plain HTTP's zeros are not accepted over HTTPS.
                let zeros = try await Self.post(
                    client, "auth/sev-snp/login", token: nil, try Self.login(Self.guest(), nonce: try await nonce()))
                #expect(zeros.status == .forbidden)
            }
        }
    }

    @Test func clockSkewExcusesOnlyValidityTimesWithinIt() throws {
        let nonce = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let body = try Self.login(Self.guest(), nonce: nonce)
        let reportText = try #require(body["report"] as? String)
        let report = try AttestationReport(bytes: Array(try #require(Data(base64Encoded: reportText))))
        var certificates: [AMDCertificate] = []
        for text in try #require(body["certificates"] as? [String]) {
            let der = try #require(Data(base64Encoded: text))
            certificates.append(try AMDCertificate(derEncoded: Array(der)))
        }
        let verifier = ReportVerifier.amd.trusting(Self.chip.ark)
        // Ten seconds before the chain's certificates are valid (a client clock ahead of vhsmd's).
        let early = try #require(certificates.map(\.notBefore).max()).addingTimeInterval(-10)
        #expect(throws: VerificationFailure.self) {
            try SevSNPAuthBackend.verify(report, certificates: certificates, verifier: verifier, at: early, skew: 0)
        }
        #expect(throws: VerificationFailure.self) {
            try SevSNPAuthBackend.verify(report, certificates: certificates, verifier: verifier, at: early, skew: 5)
        }
        let verified = try SevSNPAuthBackend.verify(
            report, certificates: certificates, verifier: verifier, at: early, skew: 30)
        #expect(verified.report.measurement == Self.measurement)
        // The skew excuses nothing else: a flipped byte stays refused, at any instant.
        var altered = report
        altered.measurement[0] ^= 1
        #expect(throws: VerificationFailure.self) {
            try SevSNPAuthBackend.verify(altered, certificates: certificates, verifier: verifier, at: early, skew: 30)
        }
        #expect(throws: VerificationFailure.self) {
            try SevSNPAuthBackend.verify(altered, certificates: certificates, verifier: verifier, at: Date(), skew: 30)
        }
    }

    @Test func tokensTakeTheMountsLeaseTTLsUnlessTheRoleSetsItsOwn() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            let tuned = try await Self.call(
                client, .post, "sys/auth/sev-snp/tune", ["default_lease_ttl": "1h", "max_lease_ttl": "2h"])
            #expect(tuned.status == .noContent, "\(tuned.errors)")
            let tuning = try await Self.call(client, .get, "sys/auth/sev-snp/tune")
            #expect(tuning.data["default_lease_ttl"] as? Int == 3600 && tuning.data["max_lease_ttl"] as? Int == 7200)
            let byMount = try await Self.post(client, try Self.login(Self.guest(), nonce: try await Self.nonce(client)))
            #expect(byMount.auth["lease_duration"] as? Int == 3600, "\(byMount.errors)")
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/vm", ["token_ttl": "5h"]).status == .noContent)
            let capped = try await Self.post(client, try Self.login(Self.guest(), nonce: try await Self.nonce(client)))
            #expect(capped.auth["lease_duration"] as? Int == 7200, "the mount's maximum caps the role's TTL")
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/vm", ["token_ttl": "10m"]).status == .noContent)
            let own = try await Self.post(client, try Self.login(Self.guest(), nonce: try await Self.nonce(client)))
            #expect(own.auth["lease_duration"] as? Int == 600)
            // A secrets engine's tune does not reach an auth method, nor the reverse.
            #expect(
                try await Self.call(client, .post, "sys/mounts/auth/sev-snp/tune", ["default_lease_ttl": "5m"]).status
                    == .badRequest)
            #expect(
                try await Self.call(client, .post, "sys/auth/secret/tune", ["default_lease_ttl": "5m"]).status
                    == .badRequest)
        }
    }

    @Test func writingANewRoleNeedsCreateAndChangingOneNeedsUpdate() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            for (name, capability) in [("creator", "create"), ("updater", "update")] {
                let policy = "path \"auth/sev-snp/role/*\" { capabilities = [\"\(capability)\"] }"
                #expect(
                    try await Self.call(client, .post, "sys/policies/acl/\(name)", ["policy": policy]).status
                        == .noContent)
            }
            func token(_ policy: String) async throws -> String {
                let created = try await Self.call(client, .post, "auth/token/create", ["policies": [policy]])
                return try #require(created.auth["client_token"] as? String)
            }
            let creator = try await token("creator")
            let updater = try await token("updater")
            let role = ["bound_measurements": [Hex.encode(Self.measurement)]]
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/new", token: updater, role).status == .forbidden)
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/new", token: creator, role).status == .noContent)
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/vm", token: creator, role).status == .forbidden)
            #expect(
                try await Self.call(client, .post, "auth/sev-snp/role/vm", token: updater, role).status == .noContent)
        }
    }

    @Test func signedImagesLogInByTheirIDKeyAndCarryTheIDBlockFields() async throws {
        let digest = Array(repeating: UInt8(0xC3), count: 48)
        let identity = LaunchIdentity(
            familyID: Array(repeating: 1, count: 16), imageID: Array(repeating: 2, count: 16), guestSVN: 4,
            idKeyDigest: digest, authorKeyDigest: nil)
        try await Self.app().test(.live) { client in
            #expect(try await Self.call(client, .post, "sys/auth/sev-snp", ["type": "sev-snp"]).status == .noContent)
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/config", ["trusted_roots": [Self.chip.ark.pemRepresentation]]
                ).status == .noContent)
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/role/signed",
                    ["bound_id_key_digests": [Hex.encode(digest)], "min_guest_svn": 4]
                ).status == .noContent)
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/role/newer",
                    ["bound_id_key_digests": [Hex.encode(digest)], "min_guest_svn": 5]
                ).status == .noContent)
            let guest = Self.guest(measurement: Self.otherMeasurement, identity: identity)
            let accepted = try await Self.post(
                client, try Self.login(guest, nonce: try await Self.nonce(client), role: "signed"))
            #expect(accepted.status == .ok, "\(accepted.errors)")
            let metadata = try #require(accepted.auth["metadata"] as? [String: String])
            #expect(metadata["id_key_digest"] == Hex.encode(digest))
            #expect(metadata["family_id"] == String(repeating: "01", count: 16))
            #expect(metadata["image_id"] == String(repeating: "02", count: 16))
            #expect(metadata["guest_svn"] == "4")
            let older = try await Self.post(
                client, try Self.login(guest, nonce: try await Self.nonce(client), role: "newer"))
            #expect(older.status == .forbidden)
            #expect(older.errors.contains { $0.hasPrefix("GUEST_SVN") }, "\(older.errors)")
            // An unsigned image (no ID block) does not meet an ID-key role.
            let unsigned = try await Self.post(
                client, try Self.login(Self.guest(), nonce: try await Self.nonce(client), role: "signed"))
            #expect(unsigned.status == .forbidden)
            #expect(unsigned.errors.contains { $0.hasPrefix("ID_KEY_DIGEST") }, "\(unsigned.errors)")
        }
    }

    @Test func aNonceServesOneLoginWhateverItsOutcome() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            // Replayed after a success.
            let first = try await Self.nonce(client)
            let body = try Self.login(Self.guest(), nonce: first)
            #expect(try await Self.post(client, body).status == .ok)
            let replayed = try await Self.post(client, body)
            #expect(replayed.status == .forbidden)
            #expect(replayed.errors.first?.contains("already spent") == true, "\(replayed.errors)")
            #expect(replayed.auth.isEmpty)
            // Replayed after a failure (the wrong measurement): spent all the same, a good report cannot follow.
            let second = try await Self.nonce(client)
            let refused = try await Self.post(
                client, try Self.login(Self.guest(measurement: Self.otherMeasurement), nonce: second))
            #expect(refused.status == .forbidden)
            let retried = try await Self.post(client, try Self.login(Self.guest(), nonce: second))
            #expect(retried.status == .forbidden)
            #expect(retried.errors == [LoginNonceError.unknown.description])
            // A malformed login spends its nonce too.
            let third = try await Self.nonce(client)
            var malformed = try Self.login(Self.guest(), nonce: third)
            malformed["report"] = "!!not base64!!"
            #expect(try await Self.post(client, malformed).status == .badRequest)
            #expect(try await Self.post(client, try Self.login(Self.guest(), nonce: third)).status == .forbidden)
            // A nonce vhsmd never issued.
            let invented = (0..<32).map { _ in UInt8.random(in: 0...255) }
            let unknown = try await Self.post(client, try Self.login(Self.guest(), nonce: invented))
            #expect(unknown.status == .forbidden)
            #expect(unknown.errors == [LoginNonceError.unknown.description])
        }
    }

    @Test func anExpiredNonceIsRefusedAsExpired() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            // A nonce drawn before a nonce_ttl change stays good for the time it was issued with.
            let before = try await Self.nonce(client)
            #expect(try await Self.call(client, .post, "auth/sev-snp/config", ["nonce_ttl": "1s"]).status == .noContent)
            let kept = try await Self.post(client, try Self.login(Self.guest(), nonce: before))
            #expect(kept.status == .ok, "\(kept.errors)")
            #expect(try await Self.post(client, try Self.login(Self.guest(), nonce: before)).status == .forbidden)
            let nonce = try await Self.nonce(client)
            try await Task.sleep(for: .milliseconds(1200))
            let expired = try await Self.post(client, try Self.login(Self.guest(), nonce: nonce))
            #expect(expired.status == .forbidden)
            #expect(expired.errors == [LoginNonceError.expired.description])
        }
    }

    @Test func aFloodOfNonceRequestsIs429WithRetryAfterNotGrowth() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            var issued = 0
            var limited: Answer?
            for _ in 0..<5000 {
                let answer = try await Self.call(client, .post, "auth/sev-snp/nonce", token: nil)
                if answer.status == .ok {
                    issued += 1
                    continue
                }
                limited = answer
                break
            }
            #expect(issued == 4096, "the bound of outstanding nonces")
            let refusal = try #require(limited)
            #expect(refusal.status == .tooManyRequests)
            #expect(refusal.retryAfter.flatMap(Int.init).map { (1...60).contains($0) } == true)
            #expect(refusal.errors.first?.contains("too many login nonces") == true)
            // Still refused: nothing has expired or been spent.
            let again = try await Self.call(client, .post, "auth/sev-snp/nonce", token: nil)
            #expect(again.status == .tooManyRequests)
        }
    }

    @Test func aReportBoundToAnotherNonceKeyOrServerIsRefused() async throws {
        let served = Array(SHA256.hash(data: Array("vhsmd's certificate SPKI".utf8)))
        let proxy = Array(SHA256.hash(data: Array("the proxy's certificate SPKI".utf8)))
        let key = P256.Signing.PrivateKey()
        let keySPKI = Certificate.PublicKey(key.publicKey).subjectPublicKeyInfoDER
        let keyDigest = Array(SHA256.hash(data: keySPKI))
        let otherKeyDigest = Array(SHA256.hash(data: Array("another key".utf8)))
        try await Self.app(served: served).test(.live) { client in
            try await Self.setUp(client)
            // The served SPKI with the workload's key: accepted.
            let nonce = try await Self.nonce(client)
            var body = try Self.login(Self.guest(), nonce: nonce, key: keyDigest, audience: served)
            body["public_key"] = key.publicKey.pemRepresentation
            let accepted = try await Self.post(client, body)
            #expect(accepted.status == .ok, "\(accepted.errors)")
            // Bound to another nonce (an older one), presented with a fresh one.
            let fresh = try await Self.nonce(client)
            var other = try Self.login(Self.guest(), nonce: nonce, audience: served)
            other["nonce"] = Hex.encode(fresh)
            let wrongNonce = try await Self.post(client, other)
            #expect(wrongNonce.status == .forbidden)
            #expect(wrongNonce.errors.count == 1 && wrongNonce.errors[0].hasPrefix("REPORT_DATA does not bind"))
            // Bound to another key than the public_key sent.
            let keyed = try await Self.nonce(client)
            var otherKey = try Self.login(Self.guest(), nonce: keyed, key: otherKeyDigest, audience: served)
            otherKey["public_key"] = key.publicKey.pemRepresentation
            #expect(try await Self.post(client, otherKey).errors.first?.hasPrefix("REPORT_DATA") == true)
            // Bound to a key, sent without it.
            let bare = try await Self.nonce(client)
            let withoutKey = try await Self.post(
                client, try Self.login(Self.guest(), nonce: bare, key: keyDigest, audience: served))
            #expect(withoutKey.status == .forbidden)
            // Bound to another server (a relay's certificate), or to plain HTTP's zeros.
            for audience in [proxy, AttestedLoginBinding.absent] {
                let relayed = try await Self.post(
                    client, try Self.login(Self.guest(), nonce: try await Self.nonce(client), audience: audience))
                #expect(relayed.status == .forbidden)
                #expect(relayed.errors.first?.hasPrefix("REPORT_DATA does not bind") == true)
            }
            // Once the proxy's SPKI is configured as an audience, a login bound to it is accepted.
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/config", ["audience_spki_sha256": [Hex.encode(proxy)]]
                ).status == .noContent)
            let proxied = try await Self.post(
                client, try Self.login(Self.guest(), nonce: try await Self.nonce(client), audience: proxy))
            #expect(proxied.status == .ok, "\(proxied.errors)")
        }
    }

    @Test func evidenceFromAnUntrustedRootAnotherChipOrAlteredIsRefused() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client, trust: false)
            // The emulator's root before it is configured.
            let untrusted = try await Self.post(
                client, try Self.login(Self.guest(), nonce: try await Self.nonce(client)))
            #expect(untrusted.status == .forbidden)
            #expect(untrusted.errors.contains { $0.hasPrefix("not genuine") }, "\(untrusted.errors)")
            // The fix named is the method's config, not a command-line option.
            #expect(
                untrusted.errors.contains { $0.contains("add its PEM to config trusted_roots") }, "\(untrusted.errors)")
            #expect(!untrusted.errors.joined().contains("--trust-emulator-root"), "\(untrusted.errors)")
            #expect(untrusted.auth.isEmpty)
            #expect(
                try await Self.call(
                    client, .post, "auth/sev-snp/config", ["trusted_roots": [Self.chip.ark.pemRepresentation]]
                ).status == .noContent)
            // Another chip's VCEK with this chip's report.
            let nonce = try await Self.nonce(client)
            var swapped = try Self.login(Self.guest(), nonce: nonce)
            let otherBody = try Self.login(Self.guest(Self.otherChip), nonce: nonce)
            swapped["certificates"] = otherBody["certificates"]
            let otherVCEK = try await Self.post(client, swapped)
            #expect(otherVCEK.status == .forbidden)
            #expect(otherVCEK.errors.contains { $0.hasPrefix("not genuine") }, "\(otherVCEK.errors)")
            // One byte flipped in the report (signed fields, the signature) or in the VCEK: never a token.
            for offset in [0x08, 0x50, 0x90, 0xC0, 0x1A0, 0x2A0, 0x300] {
                let body = try Self.login(Self.guest(), nonce: try await Self.nonce(client))
                let text = try #require(body["report"] as? String)
                var report = Array(try #require(Data(base64Encoded: text)))
                report[offset] ^= 0x01
                var flipped = body
                flipped["report"] = Data(report).base64EncodedString()
                let answer = try await Self.post(client, flipped)
                #expect(answer.status == .forbidden || answer.status == .badRequest, "offset \(offset)")
                #expect(answer.auth.isEmpty && !answer.errors.isEmpty)
            }
            for offset in [10, 200, 400, -20] {
                let body = try Self.login(Self.guest(), nonce: try await Self.nonce(client))
                var certificates = try #require(body["certificates"] as? [String])
                var vcek = Array(try #require(Data(base64Encoded: certificates[0])))
                vcek[offset < 0 ? vcek.count + offset : offset] ^= 0x01
                certificates[0] = Data(vcek).base64EncodedString()
                var flipped = body
                flipped["certificates"] = certificates
                let answer = try await Self.post(client, flipped)
                #expect(answer.status == .forbidden || answer.status == .badRequest, "VCEK offset \(offset)")
                #expect(answer.auth.isEmpty && !answer.errors.isEmpty)
            }
        }
    }

    @Test func roleMismatchesAreRefusedNamingEachField() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(
                client,
                role: [
                    "bound_host_data": Hex.encode(Self.hostData), "min_tcb": "ff000000000000ff",
                    "bound_id_key_digests": [String(repeating: "aa", count: 48)],
                ])
            // A debug policy with another measurement and host data, under the TCB: every reason at once.
            let debugGuest = Self.guest(
                measurement: Self.otherMeasurement, policy: 0xB0000, hostData: Array(repeating: 0x22, count: 32))
            let refused = try await Self.post(client, try Self.login(debugGuest, nonce: try await Self.nonce(client)))
            #expect(refused.status == .forbidden)
            let fields = Set(refused.errors.compactMap { $0.split(separator: ":").first.map(String.init) })
            #expect(
                fields.isSuperset(of: ["MEASUREMENT", "HOST_DATA", "ID_KEY_DIGEST", "REPORTED_TCB", "POLICY"]),
                "\(refused.errors)")
            // A missing role is a 400.
            let missing = try await Self.post(
                client, try Self.login(Self.guest(), nonce: try await Self.nonce(client), role: "nobody"))
            #expect(missing.status == .badRequest)
            #expect(missing.errors.first?.contains("nobody") == true)
        }
    }

    @Test func malformedLoginsAre400ListingEveryReason() async throws {
        try await Self.app().test(.live) { client in
            try await Self.setUp(client)
            let everything = try await Self.post(
                client, ["nonce": "xyz", "report": "***", "certificates": "nope", "public_key": "no"])
            #expect(everything.status == .badRequest)
            let errors = everything.errors
            for field in ["'nonce'", "'role'", "'report'", "'certificates'", "'public_key'"] {
                #expect(errors.contains { $0.hasPrefix(field) }, "\(field): \(errors)")
            }
            let short = try await Self.post(
                client,
                [
                    "role": "vm", "nonce": Hex.encode(try await Self.nonce(client)),
                    "report": Data([1, 2, 3]).base64EncodedString(),
                    "certificates": [Data([0x30, 0x00]).base64EncodedString()],
                ])
            #expect(short.status == .badRequest)
            #expect(short.errors.contains { $0.contains("1184") }, "\(short.errors)")
            #expect(short.errors.contains { $0.hasPrefix("'certificates' item 1") }, "\(short.errors)")
            #expect(try await Self.call(client, .post, "auth/sev-snp/login", token: nil, nil).status == .badRequest)
            // Without a token, a login's body is bounded as the other unauthenticated paths' (64 KiB).
            let huge = try await Self.post(client, ["role": "vm", "report": String(repeating: "A", count: 70_000)])
            #expect(huge.status == .contentTooLarge)
        }
    }

    @Test func theAuditLogRecordsTheReasonsAndNeverTheToken() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/audit.log"
        let audit = AuditBroker(devices: [try AuditDevice(filePath: path)])
        let token = try await Self.app(audit: audit).test(.live) { client in
            try await Self.setUp(client)
            let refused = try await Self.post(
                client,
                try Self.login(Self.guest(measurement: Self.otherMeasurement), nonce: try await Self.nonce(client)))
            #expect(refused.status == .forbidden)
            let accepted = try await Self.post(
                client, try Self.login(Self.guest(), nonce: try await Self.nonce(client)))
            #expect(accepted.status == .ok)
            return try #require(accepted.auth["client_token"] as? String)
        }
        let log = try String(contentsOfFile: path, encoding: .utf8)
        #expect(log.contains("auth/sev-snp/login"))
        #expect(log.contains("MEASUREMENT: expected"), "the refusal's reason is recorded")
        #expect(!token.isEmpty && !log.contains(token), "the issued token is never recorded")
    }
}
