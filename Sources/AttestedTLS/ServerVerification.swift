import Crypto
public import FoundationEssentials
public import SNP
import SwiftASN1
public import X509

/// The whole client check of a vhsmd, for `vhsm server verify` now and for vhsm-init and vhsmd later: what the
/// handshake presented, which evidence was checked and the verdict on it.
public struct ServerVerification: Sendable {
    /// The DER of the handshake's leaf certificate.
    public var leafCertificate: [UInt8]
    /// The leaf, when it parses as X.509 (it must, to be trusted).
    public var certificate: Certificate?
    /// SHA-256 of the leaf's SubjectPublicKeyInfo (what REPORT_DATA must bind).
    public var spkiSHA256: [UInt8]?
    /// The server's informative `spki_sha256` (fresh reports only).
    public var announcedSPKISHA256: [UInt8]?
    /// The nonce the evidence was checked against: fresh and random, or all zero for the certificate's evidence.
    public var nonce: [UInt8]
    /// True for a fresh report (`sys/attestation`), false for the evidence in the certificate's extension.
    public var fresh: Bool
    /// The evidence's verdict; problems found before it (a leaf that does not parse, no evidence in the
    /// certificate) are in `problems` too.
    public var verdict: EvidenceVerdict

    /// Trusted: the evidence is genuine, bound to this leaf's key and the nonce, acceptable, and nothing else
    /// went wrong. Only then may the leaf (`leafCertificate`) be pinned.
    public var trusted: Bool { verdict.trusted && certificate != nil }
}

extension AttestedTLSClient {
    /// Connects and checks vhsmd: a fresh random nonce and `sys/attestation` on the handshake's own connection, or
    /// with `fromCertificate` the evidence in the leaf's extension 1.3.9903.1.1 (all-zero nonce; freshness not
    /// checked). Every problem with what arrived is in the verdict; only getting nothing at all (unreachable, a
    /// failed handshake, a non-200 or malformed answer) throws.
    public func verify(
        reference: ReferenceValues, verifier: ReportVerifier, extraCertificates: [AMDCertificate] = [],
        endorsement: AMDCertificate? = nil, fromCertificate: Bool = false, at instant: Date = Date()
    ) async throws(AttestedTLSError) -> ServerVerification {
        let nonce =
            fromCertificate
            ? AttestedTLSBinding.certificateNonce : SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        var evidence: AttestationEvidence?
        var announced: [UInt8]?
        let der: [UInt8]
        if fromCertificate {
            der = try await leafCertificate()
        } else {
            let attestation = try await attestation(nonce: nonce)
            der = attestation.leafCertificate
            evidence = attestation.answer.evidence
            announced = attestation.answer.announcedSPKISHA256
        }
        var result = ServerVerification(
            leafCertificate: der, announcedSPKISHA256: announced, nonce: nonce, fresh: !fromCertificate,
            verdict: EvidenceVerdict())
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: der) } catch {
            result.verdict.problems.append("the certificate \(place) presented does not parse as X.509: \(error)")
            return result
        }
        result.certificate = certificate
        let spkiDER: [UInt8]
        do { spkiDER = try AttestedTLSBinding.subjectPublicKeyInfo(certificate: der) } catch {
            result.verdict.problems.append(
                "the SubjectPublicKeyInfo of the certificate \(place) presented cannot be read: \(error)")
            return result
        }
        let spki = AttestedTLSBinding.spkiSHA256(spkiDER)
        result.spkiSHA256 = spki
        if fromCertificate {
            do { evidence = try AttestationEvidence(certificate: certificate) } catch {
                result.verdict.problems.append(
                    "the evidence in the certificate's extension \(AttestationEvidence.oid) does not parse: \(error)")
                return result
            }
            guard evidence != nil else {
                result.verdict.problems.append(
                    "the certificate \(place) presented carries no attestation evidence (extension "
                        + "\(AttestationEvidence.oid)): an operator's own certificate (tls_cert_file) or a vhsmd "
                        + "without attested TLS; verify a fresh report instead")
                return result
            }
        }
        guard let evidence else { return result }
        result.verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spki, announcedSPKISHA256: announced, reference: reference,
            verifier: verifier, extraCertificates: extraCertificates, endorsement: endorsement, at: instant)
        return result
    }
}
