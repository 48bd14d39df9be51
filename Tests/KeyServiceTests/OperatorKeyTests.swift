import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Sealing
import Testing

@testable import KeyService

/// Issue 13 item 7: with `operator_key`, root tokens leave vhsmd only sealed to the operator's key (`sys/init`,
/// `sys/generate-root/operator`), so the host that calls `sys/init` first on a first boot gains nothing.
@Suite struct OperatorKeyTests {
    let operatorKey = P384.KeyAgreement.PrivateKey()
    let directory = TemporaryDirectory()
    var auditPath: String { directory.path + "/audit.log" }

    /// An uninitialised config-mode server (memory storage, the dev seal) with the operator key and an audit log.
    func makeApp(operatorKey: HPKEPublicKey?) throws -> some ApplicationProtocol {
        let runtime = try Runtime(
            barrier: Barrier(backend: MemoryBackend()), seal: DevSealProvider(), storageType: "inmem",
            operatorKey: operatorKey)
        let core = VaultCore(runtime: runtime, audit: AuditBroker(devices: [try AuditDevice(filePath: auditPath)]))
        return try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), limits: ServerTests.patientLimits)
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    func token(_ value: String) -> HTTPFields { [HTTPField.Name("X-Vault-Token")!: value] }

    /// PUTs `uri` and returns the sealed blob of the answer, checking it carries no clear token.
    func sealedAnswer(_ client: some TestClientProtocol, _ uri: String) async throws -> (String, [String: Any]) {
        try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: "{}")) { response throws in
            #expect(response.status == .ok)
            let body = try json(response.body)
            #expect(body["root_token"] == nil)
            #expect(
                body["operator_key_sha256"] as? String
                    == SealedRootToken.hex(HPKEPublicKey.p384(operatorKey.publicKey).fingerprint))
            return (try #require(body["root_token_sealed"] as? String), body)
        }
    }

    /// The token's policies from `auth/token/lookup-self`, or nil when it is refused.
    func policies(_ client: some TestClientProtocol, _ value: String) async throws -> [String]? {
        try await client.execute(uri: "/v1/auth/token/lookup-self", method: .get, headers: token(value)) { response in
            guard response.status == .ok else { return nil }
            return try json(response.body)["data"].flatMap { ($0 as? [String: Any])?["policies"] as? [String] }
        }
    }

    @Test func sysInitAnswersTheRootTokenOnlySealedToTheOperatorKey() async throws {
        let app = try makeApp(operatorKey: .p384(operatorKey.publicKey))
        let (blob, root) = try await app.test(.live) { client in
            let (blob, _) = try await sealedAnswer(client, "/v1/sys/init")
            let sealed = try SealedRootToken.parse(armored: blob)
            #expect(sealed.issuedBy == "sys/init" && sealed.suite == .p384)
            let root = try sealed.open(with: .p384(operatorKey))
            // The opened token is root: it reads its own entry and mounts an engine.
            #expect(try await policies(client, root) == ["root"])
            try await client.execute(
                uri: "/v1/sys/mounts/transit", method: .post, headers: token(root),
                body: ByteBuffer(string: #"{"type":"transit"}"#)
            ) { #expect($0.status == .noContent) }
            // A second sys/init is refused: the race is run once, and its answer is only the sealed blob.
            try await client.execute(uri: "/v1/sys/init", method: .put, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .badRequest)
            }
            return (blob, root)
        }
        // Neither the token nor the blob is in the audit log; sys/init's response line has no root_token.
        let log = try String(contentsOfFile: auditPath, encoding: .utf8)
        #expect(!log.contains(root))
        #expect(!log.contains(SealedRootToken.armorBegin))
        let lines = try log.split(separator: "\n").map { try JSONValue.parse(Array($0.utf8)) }
        let initResponse = try #require(
            lines.first {
                $0["type"] == .string("response") && $0["request"]?["path"] == .string("sys/init")
                    && $0["request"]?["operation"] == .string("update")
            })
        #expect(initResponse["response"]?["data"]?["root_token"] == nil)
        guard case .string(let logged)? = initResponse["response"]?["data"]?["root_token_sealed"] else {
            Issue.record("no root_token_sealed in the sys/init response line: \(initResponse)")
            return
        }
        #expect(logged.hasPrefix("hmac-sha256:"))
        _ = blob
    }

    @Test func aWrongKeyCannotOpenTheBlob() async throws {
        let app = try makeApp(operatorKey: .p384(operatorKey.publicKey))
        let blob = try await app.test(.live) { client in try await sealedAnswer(client, "/v1/sys/init").0 }
        let sealed = try SealedRootToken.parse(armored: blob)
        let otherP384 = HPKEPrivateKey.p384(P384.KeyAgreement.PrivateKey())
        let wrongKey = #expect(throws: SealingError.self) { try sealed.open(with: otherP384) }
        #expect(wrongKey?.description.contains("not to this private key's") == true)
        #expect(wrongKey?.description.contains(SealedRootToken.hex(sealed.recipientFingerprint)) == true)
        let x25519 = HPKEPrivateKey.x25519(Curve25519.KeyAgreement.PrivateKey())
        let wrongSuite = #expect(throws: SealingError.self) { try sealed.open(with: x25519) }
        #expect(wrongSuite?.description.contains("X25519-SHA256-ChaCha20Poly1305") == true)
        // The AAD binds the issuing endpoint: the same ciphertext relabelled does not open.
        var relabelled = sealed
        relabelled.issuedBy = "sys/generate-root/operator"
        let changed = #expect(throws: SealingError.self) { try relabelled.open(with: .p384(operatorKey)) }
        #expect(changed?.description.contains("does not open") == true)
    }

    /// A ciphertext sealed with the recovery blob's HPKE info does not open as a root token, and back.
    @Test func recoveryAndRootTokenBlobsCannotBeSwapped() throws {
        let recipient = HPKEPublicKey.p384(operatorKey.publicKey)
        let (enc, ciphertext) = try recipient.seal(
            Array("s.token-of-the-wrong-kind".utf8), info: "vhsm/recovery/v1",
            aad: Array("vhsm-root-token|sys/init".utf8))
        let swapped = SealedRootToken(
            issuedBy: "sys/init", suite: .p384, recipientFingerprint: recipient.fingerprint, encapsulatedKey: enc,
            ciphertext: ciphertext)
        #expect(throws: SealingError.self) { try swapped.open(with: .p384(operatorKey)) }
        let real = try SealedRootToken.seal("s.root", to: recipient, issuedBy: "sys/init")
        #expect(throws: (any Error).self) {
            try HPKEPrivateKey.p384(operatorKey).open(
                real.ciphertext, encapsulatedKey: real.encapsulatedKey, suite: .p384, info: "vhsm/recovery/v1",
                aad: Array("vhsm-root-token|sys/init".utf8))
        }
        // The armored form round-trips field by field.
        #expect(try SealedRootToken.parse(armored: real.armored) == real)
    }

    @Test func generateRootKeepsAtMostOneUnusedOperatorRootToken() async throws {
        let app = try makeApp(operatorKey: .p384(operatorKey.publicKey))
        let key = HPKEPrivateKey.p384(operatorKey)
        try await app.test(.live) { client in
            // Before sys/init there is nothing to recover.
            try await client.execute(
                uri: "/v1/sys/generate-root/operator", method: .put, body: ByteBuffer(string: "{}")
            ) { #expect($0.status == .badRequest) }
            _ = try await sealedAnswer(client, "/v1/sys/init")
            let (firstBlob, first) = try await sealedAnswer(client, "/v1/sys/generate-root/operator")
            #expect(first["revoked_unused"] as? Bool == false)
            let a = try SealedRootToken.parse(armored: firstBlob).open(with: key)
            #expect(try SealedRootToken.parse(armored: firstBlob).issuedBy == "sys/generate-root/operator")
            // A second call revokes the first token, which was never used.
            let (secondBlob, second) = try await sealedAnswer(client, "/v1/sys/generate-root/operator")
            #expect(second["revoked_unused"] as? Bool == true)
            let b = try SealedRootToken.parse(armored: secondBlob).open(with: key)
            #expect(a != b)
            #expect(try await policies(client, a) == nil)
            // b is used now: the next call leaves it alone.
            #expect(try await policies(client, b) == ["root"])
            let (thirdBlob, third) = try await sealedAnswer(client, "/v1/sys/generate-root/operator")
            #expect(third["revoked_unused"] as? Bool == false)
            let c = try SealedRootToken.parse(armored: thirdBlob).open(with: key)
            #expect(try await policies(client, b) == ["root"])
            #expect(try await policies(client, c) == ["root"])
            // GET is not an operation of this endpoint.
            try await client.execute(uri: "/v1/sys/generate-root/operator", method: .get) {
                #expect($0.status == .methodNotAllowed)
            }
        }
        // Each call is audited as a request and a response line.
        let lines = try String(contentsOfFile: auditPath, encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(Array($0.utf8))
        }
        let generated = lines.filter {
            $0["request"]?["path"] == .string("sys/generate-root/operator")
                && $0["request"]?["operation"] == .string("update")
        }
        #expect(generated.filter { $0["type"] == .string("request") }.count == 4)
        #expect(generated.filter { $0["type"] == .string("response") }.count == 4)
    }

    @Test func withoutAnOperatorKeySysInitIsUnchangedAndGenerateRootIsRefused() async throws {
        let app = try makeApp(operatorKey: nil)
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/sys/init", method: .put, body: ByteBuffer(string: "{}")) { response in
                let body = try json(response.body)
                #expect((body["root_token"] as? String)?.isEmpty == false)
                #expect(body["root_token_sealed"] == nil)
            }
            try await client.execute(
                uri: "/v1/sys/generate-root/operator", method: .put, body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .badRequest)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors?.first?.contains("needs an operator_key") == true)
            }
        }
    }

    @Test func theConfigurationReadsOperatorKey() throws {
        let pem = operatorKey.publicKey.pemRepresentation
        let path = directory.path + "/vhsmd.json"
        let escaped = pem.replacingOccurrences(of: "\n", with: "\\n")
        try
            #"{"listener":{"address":"127.0.0.1:0"},"storage":{"path":"/tmp/x"},"seal":"dev","operator_key":"\#(escaped)"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ServerConfig.load(path)
        #expect(config.operatorKey?.fingerprint == HPKEPublicKey.p384(operatorKey.publicKey).fingerprint)
        try #"{"listener":{},"storage":{},"seal":"dev","operator_key":"not a key"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let refused = #expect(throws: (any Error).self) { try ServerConfig.load(path) }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("operator_key must be a PEM P-384 or X25519"))
    }
}
