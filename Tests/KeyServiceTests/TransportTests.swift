import Crypto
import Foundation
import Glibc
import HummingbirdTesting
import Logging
import NIOSSL
import Testing
import X509

@testable import KeyService

/// Runs a program to its end: exit status and what it printed (standard output and error together).
func runProgram(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The file's permission bits.
func fileMode(_ path: String) throws -> Int {
    try #require((FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
}

/// The TLS identity's files (modes, renewal) and what the listener negotiates, checked with `openssl s_client`.
@Suite struct TLSTransportTests {
    let directory = TemporaryDirectory()

    static let openssl = "/usr/bin/openssl"

    @Test func theKeyFileIsWritten0600EvenWhenItExists() throws {
        // A key left without its certificate, world-readable: the new pair's key replaces it with mode 0600.
        try FileManager.default.createDirectory(atPath: directory.path + "/tls", withIntermediateDirectories: true)
        let keyPath = directory.path + "/tls/key.pem"
        #expect(FileManager.default.createFile(atPath: keyPath, contents: Data("old".utf8)))
        #expect(chmod(keyPath, 0o644) == 0)
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        #expect(identity.origin == .renewed)
        #expect(try fileMode(keyPath) == 0o600)
        #expect(try fileMode(directory.path + "/tls/cert.pem") == 0o644)
        #expect(!FileManager.default.fileExists(atPath: keyPath + ".new"))
        #expect(identity.notices.count == 1)
        #expect(identity.notices.first?.contains("cert.pem is missing beside its key") == true)
        // A new folder and key are 0700 and 0600.
        let other = directory.path + "/fresh"
        _ = try TLSIdentity.selfSigned(directory: other, host: "127.0.0.1")
        #expect(try fileMode(other + "/tls") == 0o700)
        #expect(try fileMode(other + "/tls/key.pem") == 0o600)
    }

    @Test func aKeptKeyWithAWiderModeIsNarrowedAndSaidSo() throws {
        let first = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        let keyPath = directory.path + "/tls/key.pem"
        #expect(chmod(keyPath, 0o644) == 0)
        let kept = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        #expect(kept.origin == .kept)
        #expect(kept.fingerprint == first.fingerprint)
        #expect(try fileMode(keyPath) == 0o600)
        #expect(kept.notices.count == 1)
        #expect(kept.notices.first?.contains("had mode 0644 where 0600 is expected; it is now 0600") == true)
        // Already 0600 (or stricter): nothing to say.
        #expect(try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1").notices.isEmpty)
        #expect(chmod(keyPath, 0o400) == 0)
        #expect(try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1").notices.isEmpty)
        #expect(try fileMode(keyPath) == 0o400)
    }

    @Test func aKeptKeyThatIsALinkIsRefused() throws {
        _ = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        let keyPath = directory.path + "/tls/key.pem"
        #expect(rename(keyPath, directory.path + "/elsewhere.pem") == 0)
        #expect(symlink(directory.path + "/elsewhere.pem", keyPath) == 0)
        #expect(throws: ConfigError.self) { try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1") }
    }

    @Test func anOperatorKeyAccessibleToEveryUserIsRefused() throws {
        _ = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        let certificate = directory.path + "/tls/cert.pem"
        let key = directory.path + "/tls/key.pem"
        #expect(chmod(key, 0o644) == 0)
        do {
            _ = try TLSIdentity.load(certificateFile: certificate, keyFile: key)
            Issue.record("a world-readable key was accepted")
        } catch {
            #expect(error.description.contains("\(key) is accessible to every user (mode 0644)"))
        }
        // Group-readable (root:vhsm 0640, as systemd units ship keys) is the operator's choice, and is kept as is.
        #expect(chmod(key, 0o640) == 0)
        let identity = try TLSIdentity.load(certificateFile: certificate, keyFile: key)
        #expect(identity.origin == .given)
        #expect(try fileMode(key) == 0o640)
    }

    @Test func anExpiredCertificateIsReplacedWithALineNamingBothFingerprints() throws {
        let old = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", now: Date(timeIntervalSinceNow: -366 * 86_400))
        let renewed = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        #expect(renewed.origin == .renewed)
        #expect(renewed.fingerprint != old.fingerprint)
        #expect(renewed.notices.count == 1)
        let notice = try #require(renewed.notices.first)
        #expect(notice.contains("replaced the self-signed TLS certificate \(directory.path)/tls/cert.pem"))
        #expect(notice.contains("SHA-256 fingerprint \(old.fingerprint)) because it expired at "))
        #expect(notice.contains("the new one has SHA-256 fingerprint \(renewed.fingerprint)"))
        #expect(renewed.validUntil > Date(timeIntervalSinceNow: 364 * 86_400))
    }

    @Test func aCertificateWithinThirtyDaysOfExpiryIsReplacedAndOneWithMoreIsKept() throws {
        // 60 days left: kept.
        let first = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", now: Date(timeIntervalSinceNow: -305 * 86_400))
        let kept = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        #expect(kept.origin == .kept)
        #expect(kept.fingerprint == first.fingerprint)
        #expect(kept.notices.isEmpty)
        // 20 days left: replaced, and said so.
        let renewed = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", now: Date(timeIntervalSinceNow: 40 * 86_400))
        #expect(renewed.origin == .renewed)
        #expect(renewed.notices.first?.contains("less than 30 days from now") == true)
        #expect(renewed.notices.first?.contains(first.fingerprint) == true)
    }

    @Test func aCertificateThatIsNotForItsKeyIsRefusedNotReplaced() throws {
        let other = directory.path + "/other"
        _ = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        _ = try TLSIdentity.selfSigned(directory: other, host: "127.0.0.1")
        let keyPath = directory.path + "/tls/key.pem"
        #expect(unlink(keyPath) == 0)
        try FileManager.default.copyItem(atPath: other + "/tls/key.pem", toPath: keyPath)
        do {
            _ = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
            Issue.record("a mismatched pair was accepted")
        } catch {
            #expect(error.description.contains("is not for the key \(keyPath)"))
        }
    }

    /// The configuration offers TLS 1.2 suites that are ECDHE with AEAD only.
    @Test func theTLS12SuitesAreForwardSecretAEADOnly() throws {
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        let configuration = identity.configuration
        #expect(configuration.minimumTLSVersion == .tlsv12)
        #expect(configuration.maximumTLSVersion == .tlsv13)
        // What BoringSSL made of the list: exactly the six ECDHE AEAD suites (0xC02B, 0xC02C, 0xC02F, 0xC030,
        // 0xCCA8, 0xCCA9), none of its default CBC or RSA key exchange suites.
        let offered = configuration.cipherSuiteValues.map(\.rawValue).sorted()
        #expect(offered == [0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9])
    }

    /// Runs `openssl s_client` against the served listener with `arguments`: exit status and output.
    static func handshake(port: Int, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProgram(
            Self.openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + arguments)
    }

    /// Serves `identity` over the production listener (buildApplication with its TLS configuration) and runs `body`
    /// with the port.
    func serve(_ identity: TLSIdentity, _ body: @escaping @Sendable (Int) throws -> Void) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.openssl), "the TLS checks run openssl s_client")
        let services = try Services.open(try DevStorage.make())
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services), metrics: ServiceMetrics())
        let app = try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), tls: identity.configuration)
        try await app.test(.live) { client in try body(try #require(client.port)) }
    }

    @Test func anECDSAListenerNegotiatesTLS13AndRefusesCBCSuitesOnTLS12() async throws {
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        try await serve(identity) { port in
            let preferred = try Self.handshake(port: port, [])
            #expect(preferred.status == 0, "\(preferred.output)")
            #expect(preferred.output.contains("New, TLSv1.3"), "\(preferred.output)")
            for aead in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
                let accepted = try Self.handshake(port: port, ["-tls1_2", "-cipher", aead])
                #expect(accepted.status == 0, "\(aead): \(accepted.output)")
                #expect(accepted.output.contains("Cipher is \(aead)"), "\(aead): \(accepted.output)")
            }
            for cbc in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"] {
                let refused = try Self.handshake(port: port, ["-tls1_2", "-cipher", cbc])
                #expect(refused.status != 0, "\(cbc) was accepted: \(refused.output)")
            }
            let old = try Self.handshake(port: port, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(old.status != 0, "TLS 1.1 was accepted: \(old.output)")
        }
    }

    @Test func anRSAListenerRefusesRSAKeyExchangeAndCBC() async throws {
        let certificate = directory.path + "/rsa.crt"
        let key = directory.path + "/rsa.key"
        let made = try runProgram(
            Self.openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vhsm-test", "-keyout", key,
                "-out", certificate,
            ])
        #expect(made.status == 0, "\(made.output)")
        #expect(chmod(key, 0o600) == 0)
        try await serve(try TLSIdentity.load(certificateFile: certificate, keyFile: key)) { port in
            let accepted = try Self.handshake(port: port, ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"])
            #expect(accepted.status == 0, "\(accepted.output)")
            #expect(accepted.output.contains("Cipher is ECDHE-RSA-AES256-GCM-SHA384"), "\(accepted.output)")
            for refusedSuite in ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"] {
                let refused = try Self.handshake(port: port, ["-tls1_2", "-cipher", refusedSuite])
                #expect(refused.status != 0, "\(refusedSuite) was accepted: \(refused.output)")
            }
        }
    }
}
