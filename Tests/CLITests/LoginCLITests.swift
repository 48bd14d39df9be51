import ArgumentParser
import AttestedTLS
import AttestedTLSTestSupport
import Crypto
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOSSL
import SNP
import SNPEmulator
import Synchronization
import Testing
import X509

@testable import CLI
@testable import KeyService

/// `vhsm login` (issue 15 item 3) against a real vhsmd served in-process over HTTPS with attested TLS from one
/// emulated chip, the workload's reports from another emulated chip behind a `vhsm emulator serve` socket.
@Suite struct LoginCLITests {
    static let serverChip: ChipState = try! ChipState.create(product: .genoa)
    static let workloadChip: ChipState = try! ChipState.create(product: .milan)
    static let serverMeasurement = String(repeating: "5a", count: 48)
    static let workloadMeasurement = Array(repeating: UInt8(0x6B), count: 48)

    typealias Workspace = ServerVerifyCLITests.Workspace

    /// The workload's Secure Processor: `vhsm emulator serve` on a fresh socket.
    static func emulator(_ workspace: Workspace) async throws -> String {
        let path = workspace.directory + "/chip.sock"
        let guest = try EmulatedGuest(
            chip: workloadChip,
            launch: LaunchContext(measurement: workloadMeasurement, policy: GuestPolicy(rawValue: 0x30000)))
        let server = EmulatorServer(guest: guest, socketPath: path)
        Thread.detachNewThread { try? server.run() }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: path) {
            try await Task.sleep(for: .milliseconds(10))
        }
        return path
    }

    /// vhsmd as `VHSMD.run` serves it in config mode: the self-signed certificate with its evidence, sys/attestation
    /// binding its SPKI, and that SPKI as S of logins (none of it with `tls: false`, dev mode).
    /// `serving`: another TLS identity served in place of the self-signed one (its evidence still binds that one).
    static func vhsmd(
        _ workspace: Workspace, tls: Bool = true, serving: TLSIdentity? = nil
    ) throws -> (some ApplicationProtocol, TLSIdentity?) {
        let serverGuest = try EmulatedGuest(
            chip: serverChip,
            launch: LaunchContext(
                measurement: try Hex.decode(serverMeasurement), policy: GuestPolicy(rawValue: 0x30000)))
        let source = EvidenceSource(device: serverGuest)
        let identity =
            tls
            ? try TLSIdentity.selfSigned(
                directory: workspace.directory, host: "127.0.0.1",
                evidence: { try source.evidence(nonce: AttestedTLSBinding.certificateNonce, spkiSHA256: $0) }) : nil
        let services = try Services.open(try DevStorage.make())
        _ = try services.tokens.create(
            id: "test-root",
            entry: .root(accessor: "acc"))
        try services.mounts.enable(path: "secret/", type: "kv", description: "", options: ["version": .string("2")])
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), metrics: ServiceMetrics(),
            attestation: identity.map { AttestationEndpoint(source: source, spki: $0.subjectPublicKeyInfo) }
                ?? .tlsDisabled,
            servedSPKISHA256: VHSMD.servedSPKISHA256(identity))
        var limits = ListenerLimits()
        limits.readHeaderTimeout = .seconds(300)
        limits.readTimeout = .seconds(300)
        return (
            try buildApplication(
                core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"),
                tls: (serving ?? identity)?.configuration,
                limits: limits), identity
        )
    }

    struct Answer {
        let status: HTTPResponse.Status
        let body: [String: Any]
        var errors: [String] { body["errors"] as? [String] ?? [] }
    }

    /// One request to vhsmd over HTTPS (or HTTP), its certificate not checked: the test's own administration.
    static func call(
        port: Int, tls: Bool = true, _ method: HTTPRequest.Method, _ path: String, token: String? = "test-root",
        _ body: [String: Any]? = nil
    ) async throws -> Answer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let bytes = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        var headers: HTTPFields = [:]
        if let token { headers[HTTPField.Name("X-Vault-Token")!] = token }
        let (status, received) = try await TestClient.withClient(
            host: "127.0.0.1", port: port,
            configuration: tls ? .init(tlsConfiguration: configuration, serverName: "localhost") : .init()
        ) { [headers] client in
            let response = try await client.execute(
                TestClient.Request(
                    "/v1/" + path, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) }))
            return (response.status, response.body.map { Data($0.readableBytesView) } ?? Data())
        }
        let parsed =
            received.isEmpty ? [:] : (try JSONSerialization.jsonObject(with: received) as? [String: Any] ?? [:])
        return Answer(status: status, body: parsed)
    }

    /// The operator's part: the method, the workload chip's root, roles `vm` (the workload's measurement, policy
    /// `vm-read`) and `strict` (another measurement), and two secrets.
    static func administer(port: Int, tls: Bool = true) async throws {
        func ok(_ answer: Answer) { #expect(answer.status.code < 300, "\(answer.errors)") }
        ok(try await call(port: port, tls: tls, .post, "sys/auth/sev-snp", ["type": "sev-snp"]))
        ok(
            try await call(
                port: port, tls: tls, .post, "auth/sev-snp/config",
                ["trusted_roots": [workloadChip.ark.pemRepresentation]]))
        ok(
            try await call(
                port: port, tls: tls, .post, "sys/policies/acl/vm-read",
                ["policy": "path \"secret/data/allowed\" { capabilities = [\"read\"] }"]))
        ok(
            try await call(
                port: port, tls: tls, .post, "auth/sev-snp/role/vm",
                ["bound_measurements": [Hex.encode(workloadMeasurement)], "token_policies": ["vm-read"]]))
        ok(
            try await call(
                port: port, tls: tls, .post, "auth/sev-snp/role/strict",
                ["bound_measurements": [String(repeating: "cd", count: 48)]]))
        ok(try await call(port: port, tls: tls, .post, "secret/data/allowed", ["data": ["v": "1"]]))
        ok(try await call(port: port, tls: tls, .post, "secret/data/other", ["data": ["v": "2"]]))
    }

    func command(_ arguments: [String]) throws -> Login {
        try #require(try VHSM.parseAsRoot(["login"] + arguments) as? Login)
    }

    static func arkFile(_ workspace: Workspace) throws -> String {
        try workspace.write("ark.pem", serverChip.ark.pemRepresentation)
    }

    /// The options that verify the in-process vhsmd.
    static func verifying(_ workspace: Workspace) throws -> [String] {
        ["--measurement", serverMeasurement, "--trust-emulator-root", try arkFile(workspace)]
    }

    /// The token reads what role `vm` allows, and not the other secret.
    static func expectWorks(_ token: String, port: Int, tls: Bool = true) async throws {
        #expect(try await call(port: port, tls: tls, .get, "secret/data/allowed", token: token).status == .ok)
        #expect(try await call(port: port, tls: tls, .get, "secret/data/other", token: token).status == .forbidden)
    }

    @Test func aWrappedAndAnUnwrappedLoginPrintATokenThatServesTheRolesPolicy() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let (app, identity) = try Self.vhsmd(workspace)
        let served = AttestedTLSBinding.spkiSHA256(try #require(identity).subjectPublicKeyInfo)
        try await app.test(.live) { live in
            let port = try #require(live.port)
            try await Self.administer(port: port)
            let base =
                ["https://127.0.0.1:\(port)", "--role", "vm", "--emulator", socket] + (try Self.verifying(workspace))
            for extra in [[], ["--no-wrap"], ["--key-type", "p384"]] {
                let outcome = try await command(base + extra).perform()
                #expect(outcome.wrapped == !extra.contains("--no-wrap"))
                #expect(outcome.audienceSPKISHA256 == served, "S is the SPKI of the certificate vhsmd serves")
                #expect(outcome.notes.isEmpty, "attested: nothing to warn about")
                let token = try #require(String(bytes: outcome.token, encoding: .utf8))
                #expect(token.hasPrefix("s."))
                try await Self.expectWorks(token, port: port)
                // --json's auth block: Vault's shape, with the login's metadata.
                let auth = try #require(
                    try JSONSerialization.jsonObject(with: Data(outcome.authJSON)) as? [String: Any])
                for key in ["client_token", "accessor", "policies", "token_policies", "lease_duration", "renewable"] {
                    #expect(auth[key] != nil, "\(key)")
                }
                #expect(auth["client_token"] as? String == token)
                #expect(auth["policies"] as? [String] == ["default", "vm-read"])
                let metadata = try #require(auth["metadata"] as? [String: String])
                #expect(metadata["role"] == "vm" && metadata["measurement"] == Hex.encode(Self.workloadMeasurement))
                #expect(metadata["chip_id"] == Hex.encode(Self.workloadChip.chipID))
            }
        }
    }

    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
    }

    @Test func outputIsANewFileOfMode0600AndJSONWritesTheAuthBlock() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let (app, _) = try Self.vhsmd(workspace)
        try await app.test(.live) { live in
            let port = try #require(live.port)
            try await Self.administer(port: port)
            let base =
                ["https://127.0.0.1:\(port)", "--role", "vm", "--emulator", socket] + (try Self.verifying(workspace))
            // An existing file of mode 0644 is replaced, not reused: the token is never in a file others can read.
            let path = workspace.directory + "/token"
            #expect(
                FileManager.default.createFile(
                    atPath: path, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
            try await command(base + ["-o", path]).run()
            #expect(try Self.mode(path) == 0o600)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasPrefix("s.") && text.hasSuffix("\n") && text.split(separator: "\n").count == 1)
            try await Self.expectWorks(String(text.dropLast()), port: port)
            // No temporary file is left beside it.
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: workspace.directory).filter {
                    $0.hasPrefix(".vhsm-login")
                }.isEmpty)
            // --json -o: the auth block, same mode.
            let jsonPath = workspace.directory + "/auth.json"
            try await command(base + ["--json", "-o", jsonPath]).run()
            #expect(try Self.mode(jsonPath) == 0o600)
            let auth = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonPath)))
                    as? [String: Any])
            #expect((auth["client_token"] as? String)?.hasPrefix("s.") == true)
            #expect((auth["metadata"] as? [String: String])?["role"] == "vm")
        }
    }

    @Test func aRefusedLoginExits1WithTheServersReasonsOnePerLine() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let (app, _) = try Self.vhsmd(workspace)
        try await app.test(.live) { live in
            let port = try #require(live.port)
            try await Self.administer(port: port)
            let base = ["https://127.0.0.1:\(port)", "--emulator", socket] + (try Self.verifying(workspace))
            // A role bound to another measurement: 403 with the field named.
            let strict = await #expect(throws: CLIError.self) {
                _ = try await command(base + ["--role", "strict"]).perform()
            }
            #expect(strict?.exitCode == 1)
            let lines = strict?.description.split(separator: "\n").map(String.init) ?? []
            #expect(lines.first == "the login (POST /v1/auth/sev-snp/login) was refused (HTTP 403):", "\(lines)")
            #expect(lines.dropFirst().contains { $0.hasPrefix("MEASUREMENT") }, "\(lines)")
            // A role that does not exist: 400, named.
            let missing = await #expect(throws: CLIError.self) {
                _ = try await command(base + ["--role", "nobody"]).perform()
            }
            #expect(missing?.exitCode == 1)
            #expect(missing?.description.split(separator: "\n").last == "role 'nobody' does not exist")
            // A mount where the method is not: refused at the nonce.
            let mount = await #expect(throws: CLIError.self) {
                _ = try await command(base + ["--role", "vm", "--mount", "elsewhere"]).perform()
            }
            #expect(mount?.exitCode == 1)
            #expect(
                mount?.description.hasPrefix("the nonce request (POST /v1/auth/elsewhere/nonce) was refused") == true)
        }
    }

    @Test func anUntrustedServerExits1BeforeANonceOrAReportIsRequested() async throws {
        let workspace = try Workspace()
        let guest = try EmulatedGuest(
            chip: Self.serverChip,
            launch: LaunchContext(
                measurement: try Hex.decode(Self.serverMeasurement), policy: GuestPolicy(rawValue: 0x30000)))
        let server = try await FakeVHSMD.start { server, uri in try server.attestation(uri, guest: guest) }
        defer { server.stop() }
        // No emulator listens at this socket: had a report been asked for, the error would name it.
        let socket = workspace.directory + "/no-chip.sock"
        let base = ["https://127.0.0.1:\(server.port)", "--role", "vm", "--emulator", socket]
        for options in [
            [
                "--measurement", String(repeating: "cd", count: 48), "--trust-emulator-root",
                try Self.arkFile(workspace),
            ],
            ["--measurement", Self.serverMeasurement],  // the emulator's root, not named: not genuine
        ] {
            let error = await #expect(throws: CLIError.self) { _ = try await command(base + options).perform() }
            #expect(error?.exitCode == 1)
            #expect(
                error?.description.hasPrefix(
                    "https://127.0.0.1:\(server.port) is not trusted; no report was requested:") == true)
            #expect(error?.description.contains(socket) == false)
        }
        let requests = server.requests.withLock { $0 }
        #expect(
            requests.count == 2 && requests.allSatisfy { $0.hasPrefix("/v1/sys/attestation?nonce=") }, "\(requests)")
    }

    @Test func anAnswerInTheClearWhenSealingWasAskedIsRefusedAndNothingIsPrinted() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let guest = try EmulatedGuest(
            chip: Self.serverChip,
            launch: LaunchContext(
                measurement: try Hex.decode(Self.serverMeasurement), policy: GuestPolicy(rawValue: 0x30000)))
        // A genuine server that ignores wrap_to_public_key (or a relay that strips it): the token in the clear.
        let clear = try await FakeVHSMD.start { server, uri in
            switch uri {
            case "/v1/auth/sev-snp/nonce":
                return (200, Array(#"{"data":{"nonce":"\#(String(repeating: "ab", count: 32))"},"auth":null}"#.utf8))
            case "/v1/auth/sev-snp/login":
                return (200, Array(#"{"data":null,"auth":{"client_token":"s.leaked","accessor":"a"}}"#.utf8))
            default: return try server.attestation(uri, guest: guest)
            }
        }
        defer { clear.stop() }
        let base = ["https://127.0.0.1:\(clear.port)", "--role", "vm", "--emulator", socket]
        let error = await #expect(throws: CLIError.self) {
            _ = try await command(base + (try Self.verifying(workspace))).perform()
        }
        #expect(error?.exitCode == 1)
        #expect(error?.description.contains("did not honour wrap_to_public_key") == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("s.leaked") == false)
        #expect(clear.requests.withLock { $0 }.suffix(2) == ["/v1/auth/sev-snp/nonce", "/v1/auth/sev-snp/login"])
        // With --no-wrap the same answer is what was asked for.
        let outcome = try await command(base + (try Self.verifying(workspace)) + ["--no-wrap"]).perform()
        #expect(String(bytes: outcome.token, encoding: .utf8) == "s.leaked" && !outcome.wrapped)
    }

    @Test func aServerPresentingAnotherCertificateAfterVerificationIsRefused() async throws {
        let workspace = try Workspace()
        let guest = try EmulatedGuest(
            chip: Self.serverChip,
            launch: LaunchContext(
                measurement: try Hex.decode(Self.serverMeasurement), policy: GuestPolicy(rawValue: 0x30000)))
        // The first connection reaches a genuine, acceptable server; every later one another server with its own
        // certificate (which would even answer everything with 200).
        let genuine = try await FakeVHSMD.start { server, uri in try server.attestation(uri, guest: guest) }
        defer { genuine.stop() }
        let impostor = try await FakeVHSMD.start { _, _ in
            (200, Array(#"{"data":{"nonce":"\#(String(repeating: "00", count: 32))"}}"#.utf8))
        }
        defer { impostor.stop() }
        let switcher = try Switcher(first: genuine.port, then: impostor.port)
        defer { switcher.stop() }
        let socket = workspace.directory + "/no-chip.sock"
        let error = await #expect(throws: CLIError.self) {
            _ = try await command(
                ["https://127.0.0.1:\(switcher.port)", "--role", "vm", "--emulator", socket]
                    + (try Self.verifying(workspace))
            ).perform()
        }
        #expect(error?.exitCode == 1)
        #expect(error?.description.contains("not the pinned fingerprint") == true, "\(error?.description ?? "")")
        #expect(impostor.requests.withLock { $0 }.isEmpty, "nothing was sent to the other certificate")
        #expect(genuine.requests.withLock { $0 }.count == 1)
        #expect(switcher.connections.withLock { $0 } >= 2)
    }

    @Test func caPinsTheCertificateWithoutAttestationAndSaysSo() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let (app, identity) = try Self.vhsmd(workspace)
        let certificate = try #require(identity).certificatePath
        try await app.test(.live) { live in
            let port = try #require(live.port)
            try await Self.administer(port: port)
            let outcome = try await command([
                "https://127.0.0.1:\(port)", "--role", "vm", "--emulator", socket, "--ca", certificate,
            ]).perform()
            #expect(outcome.notes.count == 1 && outcome.notes[0].contains("NOT checked"))
            try await Self.expectWorks(try #require(String(bytes: outcome.token, encoding: .utf8)), port: port)
            // Another certificate as --ca: refused.
            let other = try workspace.write("other.pem", ServerVerify.pem(Self.serverChip.ark.derRepresentation))
            let error = await #expect(throws: CLIError.self) {
                _ = try await command([
                    "https://127.0.0.1:\(port)", "--role", "vm", "--emulator", socket, "--ca", other,
                ])
                .perform()
            }
            #expect(error?.exitCode == 1)
        }
    }

    @Test func insecureHTTPBindsZerosAndSaysSo() async throws {
        let workspace = try Workspace()
        let socket = try await Self.emulator(workspace)
        let (app, _) = try Self.vhsmd(workspace, tls: false)
        try await app.test(.live) { live in
            let port = try #require(live.port)
            try await Self.administer(port: port, tls: false)
            let outcome = try await command([
                "http://127.0.0.1:\(port)", "--role", "vm", "--emulator", socket, "--insecure-http",
            ]).perform()
            #expect(outcome.audienceSPKISHA256 == AttestedLoginBinding.absent)
            #expect(outcome.notes.count == 1 && outcome.notes[0].contains("NOT verified"))
            try await Self.expectWorks(
                try #require(String(bytes: outcome.token, encoding: .utf8)), port: port, tls: false)
        }
    }

    @Test func usageErrorsExit2AndAnUnreachableServerExits3() async throws {
        let workspace = try Workspace()
        let m = ["--measurement", Self.serverMeasurement]
        func usage(_ arguments: [String], _ expected: String) async {
            let error = await #expect(throws: CLIError.self) { _ = try await command(arguments).perform() }
            #expect(error?.exitCode == 2, "\(arguments)")
            #expect(error?.description.contains(expected) == true, "\(arguments): \(error?.description ?? "")")
        }
        await usage(["https://h:1", "--role", "vm"], "(or pin vhsmd's certificate with --ca FILE)")
        await usage(["http://127.0.0.1:1", "--role", "vm"], "--insecure-http")
        await usage(["https://127.0.0.1:1", "--role", "vm", "--insecure-http"] + m, "is for http:// URLs")
        await usage(["http://127.0.0.1:1", "--role", "vm", "--insecure-http"] + m, "need an https:// URL")
        await usage(["https://127.0.0.1:1", "--role", "vm", "--ca", "x.pem"] + m, "not both")
        await usage(["https://127.0.0.1:1", "--role", "vm", "--ca", "/nonexistent.pem"], "no such file")
        await usage(["ftp://h", "--role", "vm"] + m, "must start with https://")
        await usage(["https://127.0.0.1:1", "--role", "", "--ca", "x.pem"], "--role")
        await usage(["https://127.0.0.1:1", "--role", "vm", "--timeout", "0"] + m, "--timeout")
        await usage(["https://127.0.0.1:1", "--role", "vm", "-o", "/nonexistent-dir/token"] + m, "does not exist")
        await usage(["https://127.0.0.1:1", "--role", "vm", "--measurement", "abcd"], "--measurement")
        // Nothing listens on port 1: cannot reach, exit 3 (a script may try again later).
        let unreachable = await #expect(throws: CLIError.self) {
            _ = try await command(["https://127.0.0.1:1", "--role", "vm"] + m).perform()
        }
        #expect(unreachable?.exitCode == 3)
        #expect(unreachable?.description.hasPrefix("cannot reach https://127.0.0.1:1") == true)
        // Parse errors: ArgumentParser's, which main() exits with 2.
        for arguments in [
            ["https://h"], ["https://h", "--role", "vm", "--tsm", "--emulator", "s"],
            ["https://h", "--role", "vm", "--key-type", "rsa"],
        ] {
            let error = #expect(throws: (any Error).self) { _ = try VHSM.parseAsRoot(["login"] + arguments) }
            #expect(error.map { VHSM.exitCode(for: $0) } != .success, "\(arguments)")
        }
        _ = workspace
    }

    @Test func helpTeachesTheStepsTheBindingAnExampleAndTheExitCodes() {
        let help = VHSM.helpMessage(for: Login.self)
        for text in [
            "REPORT_DATA = SHA-512(\"vhsm-login-v1\" ‖ nonce ‖ K ‖ S)", "Example:", "vhsm login https://",
            "Exit codes: 0 logged in; 1 refused", "--no-wrap", "--insecure-http", "--ca", "--emulator", "--tsm",
            "--device",
            "--measurement", "--manifest", "--key-type", "vhsm/login/auth/v1",
        ] {
            #expect(help.contains(text), "\(text)")
        }
        // server verify's help is unchanged by the shared option groups: the same options, --timeout last.
        let verify = VHSM.helpMessage(for: ServerVerify.self)
        #expect(verify.contains("--ca-out") && !verify.contains("--role"))
        let timeout = verify.range(of: "--timeout <seconds>  ")
        let fromCertificate = verify.range(of: "--from-certificate ")
        #expect(timeout != nil && fromCertificate != nil)
        if let timeout, let fromCertificate { #expect(fromCertificate.lowerBound < timeout.lowerBound) }
    }
}

/// A TCP relay on 127.0.0.1 that sends its first connection to one port and every later one to another: a server
/// whose certificate changes between connections.
final class Switcher: Sendable {
    let port: Int
    let connections = Mutex(0)
    private let listener: Int32

    init(first: Int, then: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve(first: first, then: then) }
    }

    private func serve(first: Int, then: Int) {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let count = connections.withLock {
                $0 += 1
                return $0
            }
            let upstream = Switcher.connect(port: count == 1 ? first : then)
            guard upstream >= 0 else {
                close(client)
                continue
            }
            Thread.detachNewThread { Switcher.pump(from: client, to: upstream) }
            Thread.detachNewThread { Switcher.pump(from: upstream, to: client) }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    static func connect(port: Int) -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            close(descriptor)
            return -1
        }
        return descriptor
    }

    /// Copies until either side closes, then closes both directions.
    static func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
                guard written > 0 else { break }
                sent += written
            }
        }
        shutdown(destination, Int32(SHUT_WR))
        shutdown(source, Int32(SHUT_RD))
    }
}
