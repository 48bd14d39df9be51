import AttestedTLS
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
///
/// Rotation of the self-signed certificate: at start, when it has less than `renewalWindow` (30 days) left, or
/// has expired, or its key is missing, vhsmd makes a new key and certificate and says so in a start line with the
/// old and the new fingerprint and the reason (`notices`). An operator rotates it at will by removing `DATA/tls/`
/// and restarting. vhsmd never replaces the operator's certificate.
///
/// Attested TLS: on an SNP seal the self-signed certificate carries `AttestationEvidence` over the all-zero nonce
/// and its own key, in the non-critical extension `AttestationEvidence.oid`. At every start vhsmd asks for a fresh
/// report; when the kept certificate has no evidence, or its report differs from this launch's (MEASUREMENT,
/// REPORTED_TCB, CHIP_ID, the policy, HOST_DATA, the ID and author keys, the image fields), it
/// makes a new certificate for the same key and says so. The operator's certificate carries no evidence: clients
/// check it through `sys/attestation`.
struct TLSIdentity {
    enum Origin: String {
        case given = "operator's certificate"
        case generated = "new self-signed certificate"
        case renewed = "renewed self-signed certificate"
        case kept = "self-signed certificate"
        case reissued = "self-signed certificate re-issued for this launch"
    }

    var certificateChain: [NIOSSLCertificate]
    var privateKey: NIOSSLPrivateKey
    /// SHA-256 of the leaf certificate's DER, upper-case hex pairs joined by ':' (as `openssl x509 -fingerprint`).
    var fingerprint: String
    /// The leaf certificate's notAfter.
    var validUntil: Date
    var certificatePath: String
    var origin: Origin
    /// The leaf certificate served.
    var leaf: Certificate
    /// The leaf's DER SubjectPublicKeyInfo as encoded in the certificate: what attestation binds
    /// (`AttestedTLSBinding`).
    var subjectPublicKeyInfo: [UInt8]
    /// Start lines about what was done to the identity's files: a renewal (why, old and new fingerprint), a key
    /// file mode that was narrowed to 0600.
    var notices: [String] = []

    /// A self-signed certificate is valid for a year ...
    static let lifetime: TimeInterval = 365 * 86_400
    /// ... and replaced at the first start within 30 days of its expiry.
    static let renewalWindow: TimeInterval = 30 * 86_400

    /// The TLS 1.2 cipher suites served: forward secret (ECDHE) and authenticated encryption (AES-GCM,
    /// ChaCha20-Poly1305) only, for ECDSA and RSA certificates; no CBC, no RSA key exchange. TLS 1.3's suites are
    /// all AEAD and are not configurable in BoringSSL.
    static let tls12CipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// TLS 1.3 (preferred) or TLS 1.2 with `tls12CipherSuites`, no client certificates.
    var configuration: TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuiteValues = Self.tls12CipherSuites
        return configuration
    }

    /// The operator's PEM certificate chain (leaf first) and private key. The key file must not be accessible to
    /// every user (as ssh refuses such keys); group-readable (0640, vhsmd's group) is accepted.
    static func load(certificateFile: String, keyFile: String) throws(ConfigError) -> TLSIdentity {
        var info = stat()
        guard stat(keyFile, &info) == 0 else {
            throw ConfigError("cannot read the TLS private key \(keyFile): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o007 == 0 else {
            throw ConfigError(
                "the TLS private key \(keyFile) is accessible to every user (mode \(octal(info.st_mode))): restrict "
                    + "it (chmod o-rwx: 0600, or 0640 with vhsmd's group), and replace the key if others may have "
                    + "read it")
        }
        return try read(certificateFile: certificateFile, keyFile: keyFile, origin: .given)
    }

    private static func read(
        certificateFile: String, keyFile: String, origin: Origin
    ) throws(ConfigError)
        -> TLSIdentity
    {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        // A missing or unreadable file is named as such (BoringSSL's own error says only that loading failed).
        guard access(certificateFile, R_OK) == 0 else {
            throw ConfigError(
                "cannot read the TLS certificate \(certificateFile): \(String(cString: strerror(errno))) "
                    + "(tls_cert_file in the listener)")
        }
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
        let der: [UInt8]
        let certificate: Certificate
        let spki: [UInt8]
        do {
            der = try leaf.toDERBytes()
            certificate = try Certificate(derEncoded: der)
            spki = try AttestedTLSBinding.subjectPublicKeyInfo(certificate: der)
        } catch {
            throw ConfigError("cannot decode the TLS certificate in \(certificateFile): \(error)")
        }
        return TLSIdentity(
            certificateChain: chain, privateKey: key, fingerprint: fingerprint(der: der),
            validUntil: certificate.notValidAfter, certificatePath: certificateFile, origin: origin, leaf: certificate,
            subjectPublicKeyInfo: spki)
    }

    /// The self-signed identity kept in `directory/tls/` (the folder 0700, `key.pem` 0600, `cert.pem` 0644);
    /// made (P-256, one year, SANs for loopback and the listener's host) when missing, and made anew, with a notice,
    /// when its key is missing or the certificate expires within `renewalWindow`. A certificate that does not
    /// decode or does not match its key is refused: vhsmd does not guess which of the two to trust.
    ///
    /// `evidence` (on an SNP seal) gives this launch's evidence for a key's SPKI SHA-256 over the all-zero nonce;
    /// the certificate carries it, and a kept certificate whose evidence is missing or stale is re-issued for the
    /// same key (`staleness`).
    static func selfSigned(
        directory: String, host: String, now: Date = Date(),
        evidence: ((_ spkiSHA256: [UInt8]) throws -> AttestationEvidence)? = nil
    ) throws(ConfigError) -> TLSIdentity {
        let folder = directory + "/tls"
        let certificatePath = folder + "/cert.pem"
        let keyPath = folder + "/key.pem"
        var notices = try prepare(folder: folder)
        var reason: String?
        var previous: String?
        switch (exists(certificatePath), exists(keyPath)) {
        case (true, true):
            if let narrowed = try restrictKey(keyPath, folder: folder) { notices.append(narrowed) }
            var identity = try read(certificateFile: certificatePath, keyFile: keyPath, origin: .kept)
            try checkMatch(certificatePath: certificatePath, keyPath: keyPath, folder: folder)
            if identity.validUntil > now.addingTimeInterval(renewalWindow) {
                identity.notices = notices
                guard let evidence else { return identity }
                let fresh = try attest(evidence, spki: identity.subjectPublicKeyInfo)
                guard let why = staleness(of: identity.leaf, fresh: fresh) else { return identity }
                return try reissue(
                    identity, why: why, evidence: fresh, keyPath: keyPath, folder: folder, host: host, now: now)
            }
            previous = identity.fingerprint
            let date = TransitTime.rfc3339(identity.validUntil)
            reason =
                identity.validUntil <= now
                ? "it expired at \(date)" : "it expires at \(date), less than 30 days from now"
        case (true, false):
            previous = (try? NIOSSLCertificate.fromPEMFile(certificatePath).first?.toDERBytes()).map(fingerprint(der:))
            reason = "its private key \(keyPath) is missing"
        case (false, true):
            reason = "\(certificatePath) is missing beside its key"
        case (false, false):
            break
        }
        let key = P256.Signing.PrivateKey()
        let made = try evidence.map { (evidence) throws(ConfigError) in
            try attest(evidence, spki: Certificate.PublicKey(key.publicKey).subjectPublicKeyInfoDER)
        }
        let pem: String
        do {
            pem = try makeCertificate(key: key, host: host, now: now, evidence: made).serializeAsPEM().pemString
        } catch {
            throw ConfigError("cannot make a self-signed TLS certificate: \(error)")
        }
        do {
            // Each file is written under a temporary name and renamed over the old one, the key first: a new file
            // of exactly the given mode, whatever the old one had.
            try write(key.pemRepresentation, to: keyPath, mode: 0o600)
            try write(pem, to: certificatePath, mode: 0o644)
            try syncDirectory(folder)
        } catch {
            throw ConfigError("cannot keep the self-signed TLS certificate in \(folder): \(error)")
        }
        var identity = try read(
            certificateFile: certificatePath, keyFile: keyPath, origin: reason == nil ? .generated : .renewed)
        if let reason {
            notices.append(
                "vhsmd: replaced the self-signed TLS certificate \(certificatePath) (SHA-256 fingerprint "
                    + "\(previous ?? "unknown")) because \(reason); the new one has SHA-256 fingerprint "
                    + "\(identity.fingerprint) and is valid until \(TransitTime.rfc3339(identity.validUntil)). "
                    + "Clients that pin the old fingerprint or trust the old cert.pem must be given the new one.")
        }
        identity.notices = notices
        return identity
    }

    /// This launch's evidence for `spki`, or why there is none.
    private static func attest(
        _ evidence: (_ spkiSHA256: [UInt8]) throws -> AttestationEvidence, spki: [UInt8]
    ) throws(ConfigError) -> AttestationEvidence {
        do { return try evidence(AttestedTLSBinding.spkiSHA256(spki)) } catch {
            throw ConfigError("cannot put attestation evidence in the self-signed TLS certificate: \(error)")
        }
    }

    /// Why `certificate`'s evidence is not this launch's (`fresh`, for the same key): it has none, or its report
    /// differs in what a client checks. nil when it is current.
    static func staleness(of certificate: Certificate, fresh: AttestationEvidence) -> String? {
        let kept: AttestationEvidence?
        do { kept = try AttestationEvidence(certificate: certificate) } catch {
            return "its attestation evidence does not parse (\(error))"
        }
        guard let kept else { return "it carries no attestation evidence" }
        guard let before = try? AttestationReport(bytes: kept.report) else {
            return "the report in its attestation evidence does not parse"
        }
        guard let now = try? AttestationReport(bytes: fresh.report) else {
            return "this launch's report does not parse"
        }
        var changes: [String] = []
        func compare(_ name: String, _ old: [UInt8], _ new: [UInt8]) {
            if old != new { changes.append("\(name) changed from \(Hex.encode(old)) to \(Hex.encode(new))") }
        }
        compare("MEASUREMENT", before.measurement, now.measurement)
        if before.reportedTCB != now.reportedTCB {
            changes.append("REPORTED_TCB changed from \(before.reportedTCB.hex) to \(now.reportedTCB.hex)")
        }
        if before.chipID != now.chipID {
            changes.append(
                "CHIP_ID changed (another chip) from \(Hex.encode(before.chipID.prefix(8)))… to "
                    + "\(Hex.encode(now.chipID.prefix(8)))…")
        }
        if before.policy != now.policy {
            changes.append(
                "the guest policy changed from 0x\(String(before.policy.rawValue, radix: 16)) to "
                    + "0x\(String(now.policy.rawValue, radix: 16))")
        }
        compare("HOST_DATA", before.hostData, now.hostData)
        compare("ID_KEY_DIGEST", before.idKeyDigest, now.idKeyDigest)
        compare("AUTHOR_KEY_DIGEST", before.authorKeyDigest, now.authorKeyDigest)
        compare("FAMILY_ID", before.familyID, now.familyID)
        compare("IMAGE_ID", before.imageID, now.imageID)
        if before.guestSVN != now.guestSVN {
            changes.append("GUEST_SVN changed from \(before.guestSVN) to \(now.guestSVN)")
        }
        if changes.isEmpty, before.reportData != now.reportData || kept.nonce != fresh.nonce {
            changes.append("its evidence binds another key or nonce than this certificate's key and the zero nonce")
        }
        // The endorsing certificates follow CHIP_ID and REPORTED_TCB; only evidence that had none gains them.
        if changes.isEmpty, kept.certificates.isEmpty, !fresh.certificates.isEmpty {
            changes.append("its evidence carries no certificates and this launch has them")
        }
        return changes.isEmpty ? nil : changes.joined(separator: ", ")
    }

    /// A new certificate for the kept key of `identity`, carrying `evidence`, written over cert.pem; the key file is
    /// not touched.
    private static func reissue(
        _ identity: TLSIdentity, why: String, evidence: AttestationEvidence, keyPath: String, folder: String,
        host: String, now: Date
    ) throws(ConfigError) -> TLSIdentity {
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: keyPath, encoding: .utf8))
        } catch {
            throw ConfigError("cannot read the self-signed TLS certificate's P-256 key \(keyPath): \(error)")
        }
        let pem: String
        do {
            pem = try makeCertificate(key: key, host: host, now: now, evidence: evidence).serializeAsPEM().pemString
        } catch {
            throw ConfigError("cannot make a self-signed TLS certificate: \(error)")
        }
        do {
            try write(pem, to: identity.certificatePath, mode: 0o644)
            try syncDirectory(folder)
        } catch {
            throw ConfigError("cannot keep the self-signed TLS certificate in \(folder): \(error)")
        }
        var reissued = try read(certificateFile: identity.certificatePath, keyFile: keyPath, origin: .reissued)
        reissued.notices =
            identity.notices + [
                "vhsmd: re-issued the self-signed TLS certificate \(identity.certificatePath) (SHA-256 fingerprint "
                    + "\(identity.fingerprint)) for the same key because \(why); the new one has SHA-256 fingerprint "
                    + "\(reissued.fingerprint) and is valid until \(TransitTime.rfc3339(reissued.validUntil)). The key "
                    + "is kept (SPKI SHA-256 \(Hex.encode(AttestedTLSBinding.spkiSHA256(reissued.subjectPublicKeyInfo)))): "
                    + "clients that verify attestation are unaffected; clients that pin the fingerprint or trust the "
                    + "old cert.pem must be given the new one."
            ]
        return reissued
    }

    static func makeCertificate(
        key: P256.Signing.PrivateKey, host: String, now: Date, evidence: AttestationEvidence? = nil
    ) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("vhsm")
            CommonName("vhsmd")
        }
        var alternativeNames: [GeneralName] = [
            .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .ipAddress(ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 15) + [1])),
        ]
        if let bytes = ipAddressBytes(host) {
            if !bytes.allSatisfy({ $0 == 0 }), bytes != [127, 0, 0, 1], bytes != Array(repeating: 0, count: 15) + [1] {
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
            if let evidence { try evidence.certificateExtension() }
        }
        var serial = TransitRandom.bytes(16)
        serial[0] &= 0x7f
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(lifetime), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key))
    }

    private static func fingerprint(der: [UInt8]) -> String {
        SHA256.hash(data: der).map { Hex.encode([$0]).uppercased() }.joined(separator: ":")
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private static func octal(_ mode: mode_t) -> String { "0" + String(mode & 0o7777, radix: 8) }

    /// Creates the folder (0700) when absent.
    private static func prepare(folder: String) throws(ConfigError) -> [String] {
        if exists(folder) { return [] }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigError("cannot create \(folder) for the self-signed TLS certificate: \(error)")
        }
        guard chmod(folder, 0o700) == 0 else {
            throw ConfigError("cannot set the mode of \(folder) to 0700: \(String(cString: strerror(errno)))")
        }
        return []
    }

    /// Narrows the kept key file to 0600 when group or others have any access (a copy restored from a backup, a
    /// hand edit); returns the notice saying so. A link or a non-file is refused.
    static func restrictKey(_ path: String, folder: String) throws(ConfigError) -> String? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ConfigError(
                "cannot open the TLS private key \(path): \(String(cString: strerror(errno))). vhsmd keeps it as a "
                    + "regular file (not a link) readable by its user only.")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError("the TLS private key \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o7777
        guard mode & ~0o700 != 0 else { return nil }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw ConfigError(
                "the TLS private key \(path) has mode \(octal(mode)) where 0600 is expected, and vhsmd cannot "
                    + "change it: \(String(cString: strerror(errno)))")
        }
        return "vhsmd: the TLS private key \(path) had mode \(octal(mode)) where 0600 is expected; it is now 0600. "
            + "If other users could have read it, rotate the certificate: remove \(folder) and restart vhsmd."
    }

    /// Refuses a kept certificate whose public key is not the kept key's (an interrupted write, a mix-up).
    private static func checkMatch(certificatePath: String, keyPath: String, folder: String) throws(ConfigError) {
        let matches: Bool
        do {
            let certificate = try Certificate(pemEncoded: String(contentsOfFile: certificatePath, encoding: .utf8))
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: keyPath, encoding: .utf8))
            matches = certificate.publicKey == Certificate.PublicKey(key.publicKey)
        } catch {
            throw ConfigError(
                "cannot check the self-signed TLS certificate \(certificatePath) against its P-256 key \(keyPath): "
                    + "\(error). Remove \(folder) and restart vhsmd to make a new pair.")
        }
        guard matches else {
            throw ConfigError(
                "the self-signed TLS certificate \(certificatePath) is not for the key \(keyPath). Remove \(folder) "
                    + "and restart vhsmd to make a new pair.")
        }
    }

    /// Writes `text` to a new file of exactly `mode` beside `path`, syncs it, and renames it over `path`.
    private static func write(_ text: String, to path: String, mode: mode_t) throws(ConfigError) {
        let temporary = path + ".new"
        if unlink(temporary) != 0, errno != ENOENT {
            throw ConfigError("cannot remove the stale \(temporary): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw ConfigError("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var closed = false
        defer { if !closed { close(descriptor) } }
        // The umask may have taken bits away; the mode is set exactly.
        guard fchmod(descriptor, mode) == 0 else {
            throw ConfigError(
                "cannot set the mode of \(temporary) to \(octal(mode)): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, bytes.count - done) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                throw ConfigError("cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            done += written
        }
        guard fsync(descriptor) == 0 else {
            throw ConfigError("cannot sync \(temporary): \(String(cString: strerror(errno)))")
        }
        closed = true
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            throw ConfigError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func syncDirectory(_ path: String) throws(ConfigError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0, fsync(descriptor) == 0 else {
            let problem = String(cString: strerror(errno))
            if descriptor >= 0 { close(descriptor) }
            throw ConfigError("cannot sync the directory \(path): \(problem)")
        }
        close(descriptor)
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
