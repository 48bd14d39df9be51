import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOHTTP1
import NIOSSL
import SwiftASN1
import Testing
import X509

@testable import CLI
@testable import KeyService

/// The HTTPS client of `vhsm operator …` and `vhsm login` with `--cacert FILE`, against a real vhsmd served
/// in-process over HTTPS: the file may hold vhsmd's own self-signed certificate (no CA to BoringSSL) or CAs.
@Suite struct VaultClientTrustTests {
    typealias Workspace = ServerVerifyCLITests.Workspace

    /// vhsmd's self-signed certificate as the CA file: every connection of 20 answers (the certificate is
    /// recognised from the leaf the handshake presented, not from the error NIO happens to report for a handshake
    /// BoringSSL refuses), and the answer carries that certificate.
    @Test func theServersOwnSelfSignedCertificateAsTheCAFileServesEveryConnection() async throws {
        let workspace = try Workspace()
        let (app, identity) = try LoginCLITests.vhsmd(workspace)
        let certificate = try #require(identity).certificatePath
        let held = try NIOSSLCertificate.fromPEMFile(certificate).map { try $0.toDERBytes() }
        try await app.test(.live) { live in
            let port = try #require(live.port)
            let client = try VaultClient(url: "https://127.0.0.1:\(port)", caFile: certificate, fingerprint: nil)
            var served = 0
            for _ in 0..<20 {
                let answer = try await client.send(.GET, "sys/seal-status", body: [])
                #expect(answer.status == 200)
                #expect(answer.leafCertificate.map { held.contains($0) } == true)
                if answer.status == 200 { served += 1 }
            }
            #expect(served == 20)
        }
    }

    /// Another self-signed certificate as the CA file: every attempt is refused (exit 1) with the sentence naming
    /// the certificate the server presented; nothing is accepted by default.
    @Test func anotherSelfSignedCertificateInTheCAFileIsRefusedWithASentence() async throws {
        let workspace = try Workspace()
        let (app, identity) = try LoginCLITests.vhsmd(workspace)
        let servedDER = try NIOSSLCertificate.fromPEMFile(try #require(identity).certificatePath)[0].toDERBytes()
        let servedFingerprint = VaultClient.colonHex(Array(SHA256.hash(data: servedDER)))
        let elsewhere = try Workspace()
        let other = try TLSIdentity.selfSigned(directory: elsewhere.directory, host: "127.0.0.1").certificatePath
        try await app.test(.live) { live in
            let port = try #require(live.port)
            let client = try VaultClient(url: "https://127.0.0.1:\(port)", caFile: other, fingerprint: nil)
            for _ in 0..<20 {
                let error = await #expect(throws: CLIError.self) {
                    _ = try await client.send(.GET, "sys/seal-status", body: [])
                }
                #expect(error?.exitCode == 1)
                let text = error?.description ?? ""
                #expect(
                    text.hasPrefix(
                        "https://127.0.0.1:\(port) presented a certificate (SHA-256 \(servedFingerprint)) that the "
                            + "--cacert file neither holds nor verifies for 127.0.0.1"), "\(text)")
                #expect(text.contains("this is not the vhsmd you trust"), "\(text)")
            }
        }
    }

    /// A CA and a server certificate it signs for `address` (an IPv4 address SAN), as PEM files in `workspace`.
    static func caSigned(
        _ workspace: Workspace, address: [UInt8], name: String
    ) throws -> (ca: String, leaf: String, key: String) {
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("test CA \(name)") }
        let ca = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(3600), issuer: caName,
            subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            }, issuerPrivateKey: .init(caKey))
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(3600), issuer: caName,
            subject: try DistinguishedName { CommonName("vhsmd \(name)") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address)))])
            }, issuerPrivateKey: .init(caKey))
        let key = try workspace.write("\(name)-key.pem", leafKey.pemRepresentation)
        chmod(key, 0o600)
        return (
            try workspace.write("\(name)-ca.pem", try ca.serializeAsPEM().pemString),
            try workspace.write("\(name)-leaf.pem", try leaf.serializeAsPEM().pemString), key
        )
    }

    /// A CA file that signed the served certificate (not held in the file): verified by BoringSSL, 20 connections of
    /// 20 answer. The same CA's certificate for another address is refused: host names are still checked.
    @Test func aCAFileThatSignedTheServersCertificateVerifiesItAndItsAddress() async throws {
        let workspace = try Workspace()
        let (ca, leaf, key) = try Self.caSigned(workspace, address: [127, 0, 0, 1], name: "loopback")
        let (app, _) = try LoginCLITests.vhsmd(
            workspace, serving: try TLSIdentity.load(certificateFile: leaf, keyFile: key))
        try await app.test(.live) { live in
            let port = try #require(live.port)
            let client = try VaultClient(url: "https://127.0.0.1:\(port)", caFile: ca, fingerprint: nil)
            for _ in 0..<20 {
                #expect(try await client.send(.GET, "sys/seal-status", body: []).status == 200)
            }
        }
        let elsewhere = try Workspace()
        let (otherCA, otherLeaf, otherKey) = try Self.caSigned(elsewhere, address: [10, 9, 9, 9], name: "elsewhere")
        let (misnamed, _) = try LoginCLITests.vhsmd(
            elsewhere, serving: try TLSIdentity.load(certificateFile: otherLeaf, keyFile: otherKey))
        try await misnamed.test(.live) { live in
            let port = try #require(live.port)
            let client = try VaultClient(url: "https://127.0.0.1:\(port)", caFile: otherCA, fingerprint: nil)
            let error = await #expect(throws: CLIError.self) {
                _ = try await client.send(.GET, "sys/seal-status", body: [])
            }
            #expect(error?.exitCode == 1)
            #expect(
                error?.description.contains(
                    "neither holds nor verifies for 127.0.0.1 (NIOSSLExtraError.failedToValidateHostname") == true,
                "\(error?.description ?? "")")
        }
    }
}
