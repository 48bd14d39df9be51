import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SNP
import Sealing
import SwiftASN1
import Testing
import X509

@testable import KeyService

/// What operators run against: metrics, the OpenAPI document, TLS identities, readiness notification, config.
@Suite struct OperationsTests {
    let server = ServerTests()

    @Test func metricsCountRequestsInThePrometheusFormatAndNeedAToken() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/secret/data/a", method: .get, headers: token) { _ in }
            try await client.execute(uri: "/v1/sys/metrics?format=prometheus", method: .get) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/v1/sys/metrics", method: .get, headers: token) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/sys/metrics?format=prometheus", method: .get, headers: token) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                #expect(text.contains("# TYPE vhsmd_requests_total counter"))
                #expect(text.contains(#"vhsmd_requests_total{operation="read",area="kv",code="404"} 1"#))
                // The unauthenticated metrics request was refused before routing and still counted.
                #expect(text.contains(#"vhsmd_requests_total{operation="read",area="sys",code="403"} 1"#))
                #expect(
                    text.contains(#"vhsmd_request_duration_seconds_bucket{operation="read",area="kv",le="+Inf"} 1"#))
                #expect(text.contains("vhsmd_sealed 0"))
                #expect(text.contains("process_start_time_seconds "))
            }
        }
    }

    @Test func theOpenAPIDocumentListsTheMountedEnginesForTheCallersToken() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/mounts/keys-a", method: .post, headers: token,
                body: ByteBuffer(string: #"{"type":"transit"}"#)
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(uri: "/v1/sys/internal/specs/openapi", method: .get, headers: token) { response in
                #expect(response.status == .ok)
                let body = try server.json(response.body)
                #expect(body["openapi"] as? String == "3.0.2")
                let paths = try #require(body["paths"] as? [String: Any])
                let encrypt = try #require(paths["/keys-a/encrypt/{name}"] as? [String: Any])
                #expect(encrypt["x-vault-createSupported"] as? Bool == true)
                let post = try #require(encrypt["post"] as? [String: Any])
                #expect(post["requestBody"] != nil)
                #expect(paths["/secret/data/{path}"] != nil)
                #expect(paths["/secret/metadata/"] != nil)
                #expect(paths["/auth/token/create"] != nil)
                #expect(paths["/sys/metrics"] != nil)
                // Operation IDs are unique, as OpenAPI requires.
                var ids: [String] = []
                for case let item as [String: Any] in paths.values {
                    for verb in ["get", "post", "delete"] {
                        if let id = (item[verb] as? [String: Any])?["operationId"] as? String { ids.append(id) }
                    }
                }
                #expect(Set(ids).count == ids.count)
                #expect(ids.count > 60)
            }
            // Without a token: only what anyone may call.
            try await client.execute(uri: "/v1/sys/internal/specs/openapi", method: .get) { response in
                #expect(response.status == .ok)
                let paths = try #require(try server.json(response.body)["paths"] as? [String: Any])
                #expect(paths["/sys/health"] != nil)
                #expect(paths["/keys-a/encrypt/{name}"] == nil)
                #expect(paths["/sys/mounts"] == nil)
            }
        }
    }

    /// A sev-snp method's paths appear under its actual mount, with request and answer schemas; sys/auth/{path} and
    /// its tuning are listed; without a token only its nonce and login.
    @Test func theOpenAPIDocumentListsAnAuthMethodsPathsUnderItsMount() async throws {
        let (app, root) = try await server.makeApp()
        let token: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
        try await app.test(.live) { client in
            try await client.execute(
                uri: "/v1/sys/auth/vms", method: .post, headers: token, body: ByteBuffer(string: #"{"type":"sev-snp"}"#)
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(uri: "/v1/sys/internal/specs/openapi", method: .get, headers: token) { response in
                #expect(response.status == .ok)
                let paths = try #require(try server.json(response.body)["paths"] as? [String: Any])
                for path in [
                    "/sys/auth/{path}", "/sys/auth/{path}/tune", "/auth/vms/config", "/auth/vms/role/",
                    "/auth/vms/role/{name}", "/auth/vms/nonce", "/auth/vms/login",
                ] {
                    #expect(paths[path] != nil, "\(path) is missing")
                }
                #expect(paths["/auth/sev-snp/login"] == nil)
                let login = try #require(paths["/auth/vms/login"] as? [String: Any])
                #expect(login["x-vault-unauthenticated"] as? Bool == true)
                let post = try #require(login["post"] as? [String: Any])
                let request = try #require(
                    ((((post["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"]
                        as? [String: Any])?["schema"] as? [String: Any])?["properties"] as? [String: Any])
                #expect(
                    Set(request.keys) == [
                        "role", "nonce", "report", "certificates", "public_key", "wrap_to_public_key",
                    ])
                #expect((request["certificates"] as? [String: Any])?["items"] != nil)
                let answer = try #require(
                    (((((post["responses"] as? [String: Any])?["200"] as? [String: Any])?["content"] as? [String: Any])?[
                        "application/json"] as? [String: Any])?["schema"] as? [String: Any])?["properties"]
                        as? [String: Any])
                let auth = try #require((answer["auth"] as? [String: Any])?["properties"] as? [String: Any])
                #expect(auth["client_token"] != nil && auth["metadata"] != nil)
                let sealed = try #require((answer["data"] as? [String: Any])?["properties"] as? [String: Any])
                #expect(sealed["sealed_auth"] != nil && sealed["suite"] != nil)
                let role = try #require(paths["/auth/vms/role/{name}"] as? [String: Any])
                #expect(role["x-vault-createSupported"] as? Bool == true)
                #expect(role["get"] != nil && role["post"] != nil && role["delete"] != nil)
            }
            try await client.execute(uri: "/v1/sys/internal/specs/openapi", method: .get) { response in
                let paths = try #require(try server.json(response.body)["paths"] as? [String: Any])
                #expect(paths["/auth/vms/login"] != nil && paths["/auth/vms/nonce"] != nil)
                #expect(paths["/auth/vms/config"] == nil && paths["/sys/auth/{path}"] == nil)
            }
        }
    }

    @Test func aMissingCertificateFileSaysNoSuchFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-tls-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try TLSIdentity.selfSigned(directory: directory, host: "127.0.0.1")
        let missing = directory + "/tls/missing.pem"
        do {
            _ = try TLSIdentity.load(certificateFile: missing, keyFile: directory + "/tls/key.pem")
            Issue.record("a missing certificate file was loaded")
        } catch {
            #expect(
                error.description
                    == "cannot read the TLS certificate \(missing): No such file or directory (tls_cert_file in the listener)"
            )
        }
        // The pair that exists loads.
        #expect(
            try TLSIdentity.load(certificateFile: made.certificatePath, keyFile: directory + "/tls/key.pem").fingerprint
                == made.fingerprint)
    }

    @Test func aSelfSignedIdentityIsKeptAcrossRestartsAndNamesLoopback() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-tls-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try TLSIdentity.selfSigned(directory: directory, host: "0.0.0.0")
        #expect(first.origin == .generated)
        #expect(first.fingerprint.split(separator: ":").count == 32)
        let second = try TLSIdentity.selfSigned(directory: directory, host: "0.0.0.0")
        #expect(second.origin == .kept)
        #expect(second.fingerprint == first.fingerprint)
        let keyMode = try FileManager.default.attributesOfItem(atPath: directory + "/tls/key.pem")[.posixPermissions]
        #expect(keyMode as? Int == 0o600)
        let certificate = try Certificate(
            pemEncoded: String(contentsOfFile: directory + "/tls/cert.pem", encoding: .utf8))
        let names = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(.init(contentBytes: [127, 0, 0, 1]))))
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        // The fingerprint is SHA-256 over the certificate's DER, as `openssl x509 -fingerprint -sha256` prints it.
        let der = try certificate.serializeAsPEM().derBytes
        let expected = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
        #expect(first.fingerprint == expected)
    }

    @Test func anExpiringSelfSignedCertificateIsReplaced() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-tls-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = try TLSIdentity.selfSigned(
            directory: directory, host: "127.0.0.1", now: Date(timeIntervalSinceNow: -365 * 86_400))
        let renewed = try TLSIdentity.selfSigned(directory: directory, host: "127.0.0.1")
        #expect(renewed.origin == .renewed)
        #expect(renewed.fingerprint != old.fingerprint)
    }

    @Test func configChoosesTheTransportAndRefusesContradictions() throws {
        func load(_ listener: String) throws -> ServerConfig {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-\(UUID().uuidString).json")
                .path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try #"{"listener": \#(listener), "storage": {"path": "/tmp/x"}, "seal": "sev-guest"}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return try ServerConfig.load(path)
        }
        #expect(try load(#"{"address": "0.0.0.0:8200"}"#).tls == .selfSigned)
        #expect(try load(#"{"tls_disable": true}"#).tls == .disabled)
        #expect(try load(#"{"tls_disable": false}"#).tls == .selfSigned)
        #expect(try load(#"{"tls_cert_file": "/c", "tls_key_file": "/k"}"#).tls == .files(certificate: "/c", key: "/k"))
        #expect(throws: ConfigError.self) { try load(#"{"tls_cert_file": "/c"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"tls_disable": true, "tls_key_file": "/k"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"tls_disable": "yes"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"tls_min_version": "tls13"}"#) }
    }

    @Test func sealModesBindTheGuestFieldsOfDesignSection4() throws {
        #expect(SealMode.measurement.guestFieldSelect.names == ["policy", "measurement", "tcb"])
        #expect(SealMode.platform.guestFieldSelect.names == ["policy", "tcb"])
        #expect(SealMode.image.guestFieldSelect.names == ["policy", "image-id", "family-id", "guest-svn", "tcb"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (text, expected) in [("", SealMode.measurement), (#", "seal_mode": "image""#, .image)] {
            try #"{"listener": {}, "storage": {"path": "/tmp/x"}, "seal": "sev-guest"\#(text)}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try ServerConfig.load(path).sealMode == expected)
        }
        try #"{"listener": {}, "storage": {}, "seal": "sev-guest", "seal_mode": "chip"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try ServerConfig.load(path) }
    }

    @Test func readinessIsSentToTheNotifySocket() throws {
        let path = "/tmp/vhsmd-notify-\(UUID().uuidString.prefix(8)).sock"
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(descriptor >= 0)
        defer {
            close(descriptor)
            unlink(path)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        #expect(ServiceNotification.send("READY=1", socket: path) == nil)
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(count == 7)
        #expect(String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self) == "READY=1")
        #expect(ServiceNotification.send("READY=1", socket: nil) == nil)
        #expect(ServiceNotification.send("READY=1", socket: "relative.sock") != nil)
    }
}
