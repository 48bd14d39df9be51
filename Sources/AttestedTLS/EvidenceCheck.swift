public import FoundationEssentials
public import SNP

/// The client's judgement of vhsmd's evidence: genuine (AMD chain and signature), bound (REPORT_DATA commits to the
/// nonce sent and the key seen in the TLS handshake) and acceptable (the reference values). Every problem found is
/// listed, each a sentence with what was expected and what was found.
public struct EvidenceVerdict: Sendable {
    public var genuine = false
    public var bound = false
    public var acceptable = false
    /// The report, when it parsed.
    public var report: AttestationReport?
    /// The verified report, when the chain and signature hold.
    public var verified: VerifiedReport?
    public var problems: [String] = []
    public var violations: [PolicyViolation] = []

    public var trusted: Bool { genuine && bound && acceptable && problems.isEmpty }
}

public enum EvidenceCheck {
    /// Checks `evidence` against the `nonce` the client sent and the SHA-256 of the SPKI of the leaf certificate of
    /// the handshake (`handshakeSPKISHA256`). `announcedSPKISHA256` (the server's informative `spki_sha256`) only
    /// sharpens the message when the keys differ. `verifier` holds the trusted roots; `extraCertificates` are more
    /// candidates (an emulator root); `endorsement` replaces the evidence's VCEK/VLEK.
    public static func check(
        _ evidence: AttestationEvidence, nonce: [UInt8], handshakeSPKISHA256: [UInt8],
        announcedSPKISHA256: [UInt8]? = nil, reference: ReferenceValues, verifier: ReportVerifier,
        extraCertificates: [AMDCertificate] = [], endorsement: AMDCertificate? = nil, at instant: Date = Date()
    ) -> EvidenceVerdict {
        var verdict = EvidenceVerdict()
        if evidence.format != AttestationEvidence.format {
            verdict.problems.append(
                "the evidence's format is '\(evidence.format)', not '\(AttestationEvidence.format)'")
        }
        if evidence.nonce != nonce {
            verdict.problems.append(
                "the answer is for nonce \(Hex.encode(evidence.nonce)), not for the nonce sent (\(Hex.encode(nonce))): "
                    + "a replayed or misdirected answer")
        }
        let report: AttestationReport
        do { report = try AttestationReport(bytes: evidence.report) } catch {
            verdict.problems.append(
                "the report (\(evidence.report.count) bytes) does not parse: \(error); a report is "
                    + "\(AttestationReport.byteCount) bytes")
            return verdict
        }
        verdict.report = report

        var parsed: [AMDCertificate] = []
        for (index, der) in evidence.certificates.enumerated() {
            do { parsed.append(try AMDCertificate(derEncoded: der)) } catch {
                verdict.problems.append("certificate \(index + 1) of the evidence does not parse: \(error)")
            }
        }
        if let signer = endorsement ?? parsed.first {
            do {
                let verified = try verifier.verify(
                    report, endorsement: signer, candidates: parsed + extraCertificates, at: instant)
                verdict.verified = verified
                verdict.genuine = true
                verdict.violations = reference.violations(in: verified)
                verdict.acceptable = verdict.violations.isEmpty
                verdict.problems += verdict.violations.map(\.description)
            } catch {
                verdict.problems += error.problems.map { "not genuine: \($0)" }
                unverified(report, reference, &verdict)
            }
        } else {
            verdict.problems.append(
                "the evidence carries no VCEK or VLEK and none was given: cannot check that AMD signed the report")
            unverified(report, reference, &verdict)
        }

        let expected = AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: handshakeSPKISHA256)
        if let expected, report.reportData == expected {
            verdict.bound = true
        } else if let announcedSPKISHA256, announcedSPKISHA256 != handshakeSPKISHA256,
            AttestedTLSBinding.reportData(nonce: evidence.nonce, spkiSHA256: announcedSPKISHA256) == report.reportData
        {
            verdict.problems.append(
                "the report binds another TLS key: expected SPKI SHA-256 \(Hex.encode(handshakeSPKISHA256)) (the "
                    + "certificate in this handshake), the report binds \(Hex.encode(announcedSPKISHA256)): someone "
                    + "between this client and vhsmd terminates TLS with their own key")
        } else if evidence.nonce == nonce || expected == nil {
            verdict.problems.append(
                "REPORT_DATA does not bind this nonce and the handshake's key (SPKI SHA-256 "
                    + "\(Hex.encode(handshakeSPKISHA256))): expected \(expected.map(Hex.encode) ?? "?"), got "
                    + "\(Hex.encode(report.reportData))")
        }
        return verdict
    }

    /// A report that is not genuine is never acceptable, but what it claims is still held against the reference
    /// values, so that every problem is listed at once (not one per attempt).
    private static func unverified(
        _ report: AttestationReport, _ reference: ReferenceValues, _ verdict: inout EvidenceVerdict
    ) {
        verdict.violations = reference.violations(in: report, layout: report.product?.tcbLayout ?? .milanGenoa)
        verdict.problems += verdict.violations.map { "\($0) (in the unverified report)" }
    }
}
