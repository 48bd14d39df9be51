import Crypto
import FoundationEssentials
import NIOSSL
import SNP
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#endif

/// The listener's TLS identity: the operator's certificate and key (`tls_cert_file`, `tls_key_file`), or a
/// self-signed one that vhsmd makes on first start and keeps in `DATA/tls/` so that its fingerprint stays the
/// same across restarts (clients pin it, or trust `DATA/tls/cert.pem`).
struct TLSIdentity {
    enum Origin: String {
        case given = "operator's certificate"
        case generated = "new self-signed certificate"
        case kept = "self-signed certificate"
    }

    var certificateChain: [NIOSSLCertificate]
    var privateKey: NIOSSLPrivateKey
    /// SHA-256 of the leaf certificate's DER, upper-case hex pairs joined by ':' (as `openssl x509 -fingerprint`).
    var fingerprint: String
    var certificatePath: String
    var origin: Origin

    /// TLS 1.2 or later, the library's default cipher suites, no client certificates.
    var configuration: TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// The operator's PEM certificate chain (leaf first) and private key.
    static func load(certificateFile: String, keyFile: String) throws(ConfigError) -> TLSIdentity {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificateFile) } catch {
            throw ConfigError(
                "cannot read the TLS certificate \(certificateFile): \(error). It must hold PEM certificates, leaf first."
            )
        }
        guard let leaf = chain.first else {
            throw ConfigError("the TLS certificate file \(certificateFile) holds no PEM certificate")
        }
        do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
            throw ConfigError("cannot read the TLS private key \(keyFile): \(error). It must be a PEM private key.")
        }
        return TLSIdentity(
            certificateChain: chain, privateKey: key, fingerprint: try fingerprint(of: leaf),
            certificatePath: certificateFile, origin: .given)
    }

    /// The self-signed identity kept in `directory/tls/`; made (P-256, one year, SANs for loopback and the
    /// listener's host) when missing or expiring within a day.
    static func selfSigned(directory: String, host: String, now: Date = Date()) throws(ConfigError) -> TLSIdentity {
        let folder = directory + "/tls"
        let certificatePath = folder + "/cert.pem"
        let keyPath = folder + "/key.pem"
        if FileManager.default.fileExists(atPath: certificatePath), FileManager.default.fileExists(atPath: keyPath) {
            var identity = try load(certificateFile: certificatePath, keyFile: keyPath)
            if let text = try? String(contentsOfFile: certificatePath, encoding: .utf8),
                let certificate = try? Certificate(pemEncoded: text),
                certificate.notValidAfter > now.addingTimeInterval(86_400)
            {
                identity.origin = .kept
                return identity
            }
        }
        let key = P256.Signing.PrivateKey()
        let pem: String
        do {
            pem = try makeCertificate(key: key, host: host, now: now).serializeAsPEM().pemString
        } catch {
            throw ConfigError("cannot make a self-signed TLS certificate: \(error)")
        }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // The key is written owner-only before the certificate, so a certificate never exists without its key.
            try write(key.pemRepresentation, to: keyPath, mode: 0o600)
            try write(pem, to: certificatePath, mode: 0o644)
        } catch {
            throw ConfigError("cannot keep the self-signed TLS certificate in \(folder): \(error)")
        }
        var identity = try load(certificateFile: certificatePath, keyFile: keyPath)
        identity.origin = .generated
        return identity
    }

    static func makeCertificate(key: P256.Signing.PrivateKey, host: String, now: Date) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("vhsm")
            CommonName("vhsmd")
        }
        var alternativeNames: [GeneralName] = [
            .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .ipAddress(ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 15) + [1])),
        ]
        if let bytes = ipAddressBytes(host) {
            if !bytes.allSatisfy({ $0 == 0 }), bytes != [127, 0, 0, 1] {
                alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            }
        } else if host != "localhost" {
            alternativeNames.append(.dnsName(host))
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(alternativeNames)
        }
        var serial = TransitRandom.bytes(16)
        serial[0] &= 0x7f
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(365 * 86_400), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key))
    }

    private static func fingerprint(of certificate: NIOSSLCertificate) throws(ConfigError) -> String {
        let der: [UInt8]
        do { der = try certificate.toDERBytes() } catch {
            throw ConfigError("cannot encode the TLS certificate: \(error)")
        }
        return SHA256.hash(data: der).map { Hex.encode([$0]).uppercased() }.joined(separator: ":")
    }

    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw ConfigError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, bytes.count - done) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))") }
            done += written
        }
        guard fsync(descriptor) == 0 else {
            throw ConfigError("cannot sync \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 literal; nil for a host name.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
