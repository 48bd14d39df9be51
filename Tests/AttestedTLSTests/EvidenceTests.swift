import AttestedTLS
import Crypto
import Foundation
import SNP
import SNPEmulator
import SwiftASN1
import Testing
import X509

/// The attested-TLS binding, the evidence's certificate extension, and the client's check of evidence (issue 14).
@Suite struct EvidenceTests {
    static let chip: ChipState = try! ChipState.create(product: .milan)
    static let otherChip: ChipState = try! ChipState.create(product: .milan)
    static let measurement = Array(repeating: UInt8(0x5A), count: 48)

    static func guest(
        _ chip: ChipState = chip, measurement: [UInt8] = measurement, policy: UInt64 = 0x30000
    ) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: measurement, policy: GuestPolicy(rawValue: policy)))
    }

    /// Evidence from `guest` for `nonce` and `spki`, as vhsmd answers it.
    static func evidence(_ guest: EmulatedGuest, nonce: [UInt8], spkiSHA256: [UInt8]) throws -> AttestationEvidence {
        let data = try #require(AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spkiSHA256))
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data))
        let report = try response.checked()
        return AttestationEvidence(
            nonce: nonce, report: report.bytes,
            certificates: AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey))
    }

    var verifier: ReportVerifier { ReportVerifier.amd.trusting(Self.chip.ark) }
    let key = P256.Signing.PrivateKey()
    var spkiHash: [UInt8] {
        AttestedTLSBinding.spkiSHA256(Certificate.PublicKey(key.publicKey).subjectPublicKeyInfoDER)
    }
    let nonce = (0..<32).map { _ in UInt8.random(in: 0...255) }

    @Test func bindingIsTheDocumentedHash() throws {
        let nonce = Array(0..<32).map(UInt8.init)
        let spki = Array(repeating: UInt8(0xEE), count: 32)
        let expected = Array(SHA512.hash(data: Array("vhsm-attested-tls-v1".utf8) + nonce + spki))
        #expect(AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spki) == expected)
        #expect(Array("vhsm-attested-tls-v1".utf8).count == 20)
        // Wrong lengths are refused, not padded.
        #expect(AttestedTLSBinding.reportData(nonce: Array(nonce.prefix(31)), spkiSHA256: spki) == nil)
        #expect(AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spki + [0]) == nil)
        // The README's vector (computed with Python's hashlib): nonce 00 01 … 1f, SPKI hash ee × 32.
        #expect(
            Hex.encode(expected)
                == "8c6a0b62c378c39fa34e737062cc3a3a6d3fff1917713c72b526e43e2ca90fa5e65ff38c7944081b17c5ffd22f6f6263"
                + "4d6b365b1f78d5dda7d5bd18a5e5812d")
    }

    @Test func genuineBoundAndAcceptable() throws {
        let evidence = try Self.evidence(Self.guest(), nonce: nonce, spkiSHA256: spkiHash)
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spkiHash,
            reference: ReferenceValues(measurements: [Self.measurement]), verifier: verifier)
        #expect(verdict.problems == [])
        #expect(verdict.trusted)
    }

    @Test func extensionRoundTripsThroughACertificate() throws {
        let evidence = try Self.evidence(Self.guest(), nonce: AttestedTLSBinding.certificateNonce, spkiSHA256: spkiHash)
        let name = try DistinguishedName { CommonName("vhsmd") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { try evidence.certificateExtension() },
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let parsed = try Certificate(derEncoded: serializer.serializedBytes)
        // The SPKI hashed is the one encoded in the certificate, found by SwiftASN1's parser (after the explicit
        // version here); for swift-certificates' own encoding it equals the re-encoded key.
        let raw = try AttestedTLSBinding.subjectPublicKeyInfo(certificate: serializer.serializedBytes)
        #expect(raw == parsed.publicKey.subjectPublicKeyInfoDER)
        #expect(throws: (any Error).self) { try AttestedTLSBinding.subjectPublicKeyInfo(certificate: [0x30, 0x00]) }
        #expect(throws: (any Error).self) { try AttestedTLSBinding.subjectPublicKeyInfo(certificate: evidence.report) }
        let found = try #require(try AttestationEvidence(certificate: parsed))
        #expect(found == evidence)
        #expect(parsed.extensions.first { $0.oid == AttestationEvidence.oid }?.critical == false)
        #expect(String(describing: AttestationEvidence.oid) == "1.3.9903.1.1")
        let verdict = EvidenceCheck.check(
            found, nonce: AttestedTLSBinding.certificateNonce,
            handshakeSPKISHA256: AttestedTLSBinding.spkiSHA256(parsed.publicKey.subjectPublicKeyInfoDER),
            reference: ReferenceValues(measurements: [Self.measurement]), verifier: verifier)
        #expect(verdict.trusted, "\(verdict.problems)")
    }

    @Test func manInTheMiddleKeyIsRefusedWithBothHashes() throws {
        let evidence = try Self.evidence(Self.guest(), nonce: nonce, spkiSHA256: spkiHash)
        let proxy = AttestedTLSBinding.spkiSHA256(
            Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER)
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: proxy, announcedSPKISHA256: spkiHash,
            reference: ReferenceValues(measurements: [Self.measurement]), verifier: verifier)
        #expect(!verdict.trusted && !verdict.bound && verdict.genuine)
        #expect(verdict.problems.count == 1)
        #expect(verdict.problems[0].contains(Hex.encode(proxy)) && verdict.problems[0].contains(Hex.encode(spkiHash)))
    }

    @Test func replayedAnswerIsRefused() throws {
        let old = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let evidence = try Self.evidence(Self.guest(), nonce: old, spkiSHA256: spkiHash)
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spkiHash,
            reference: ReferenceValues(measurements: [Self.measurement]), verifier: verifier)
        #expect(!verdict.bound && !verdict.trusted)
        #expect(verdict.problems.contains { $0.contains("replayed") && $0.contains(Hex.encode(old)) })
        // The nonce echoed as if fresh, over an old report: REPORT_DATA still gives it away.
        var forged = evidence
        forged.nonce = nonce
        let second = EvidenceCheck.check(
            forged, nonce: nonce, handshakeSPKISHA256: spkiHash,
            reference: ReferenceValues(measurements: [Self.measurement]), verifier: verifier)
        #expect(!second.bound && second.problems.contains { $0.hasPrefix("REPORT_DATA does not bind") })
    }

    @Test func referenceValuesAreEnforced() throws {
        let other = Array(repeating: UInt8(0x11), count: 48)
        let evidence = try Self.evidence(
            Self.guest(measurement: other, policy: 0xB0000), nonce: nonce, spkiSHA256: spkiHash)
        var reference = ReferenceValues(measurements: [Self.measurement])
        reference.minimumTCB = TCBVersion(rawValue: UInt64.max)
        reference.hostData = Array(repeating: 1, count: 32)
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: verifier)
        #expect(verdict.genuine && verdict.bound && !verdict.acceptable)
        let fields = Set(verdict.violations.map(\.field))
        #expect(fields == ["MEASUREMENT", "REPORTED_TCB", "HOST_DATA", "POLICY"])
        #expect(
            verdict.problems.contains { $0.contains(Hex.encode(other)) && $0.contains(Hex.encode(Self.measurement)) })
        reference = ReferenceValues(measurements: [Self.measurement, other], allowDebug: true)
        #expect(
            EvidenceCheck.check(
                evidence, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: verifier
            ).trusted)
    }

    @Test func badEvidenceIsRefusedWithAReason() throws {
        let good = try Self.evidence(Self.guest(), nonce: nonce, spkiSHA256: spkiHash)
        let reference = ReferenceValues(measurements: [Self.measurement])
        // Truncated report.
        var truncated = good
        truncated.report.removeLast(100)
        var verdict = EvidenceCheck.check(
            truncated, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: verifier)
        #expect(!verdict.trusted && verdict.problems.contains { $0.contains("does not parse") })
        // Another chip's VCEK.
        let foreign = try Self.evidence(Self.guest(Self.otherChip), nonce: nonce, spkiSHA256: spkiHash)
        var mixed = good
        mixed.certificates[0] = foreign.certificates[0]
        verdict = EvidenceCheck.check(
            mixed, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference,
            verifier: verifier.trusting(Self.otherChip.ark))
        #expect(!verdict.genuine && !verdict.trusted)
        // The emulator's root is not trusted unless named.
        verdict = EvidenceCheck.check(
            good, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: .amd)
        #expect(!verdict.genuine && verdict.problems.contains { $0.contains("not genuine") })
        // Certificates that do not chain (the ASK dropped and the ARK's place taken by garbage).
        var unchained = good
        unchained.certificates = [good.certificates[0], [0x30, 0x03, 0x02, 0x01, 0x00]]
        verdict = EvidenceCheck.check(
            unchained, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: verifier)
        #expect(
            !verdict.trusted
                && verdict.problems.contains { $0.contains("certificate 2 of the evidence does not parse") })
    }

    @Test func aReportThatIsNotGenuineStillHasItsReferenceValuesListed() throws {
        let other = Array(repeating: UInt8(0x11), count: 48)
        let evidence = try Self.evidence(
            Self.guest(measurement: other, policy: 0xB0000), nonce: nonce, spkiSHA256: spkiHash)
        let reference = ReferenceValues(measurements: [Self.measurement])
        // The emulator's root not named: not genuine, and the measurement and DEBUG are named all the same.
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: .amd)
        #expect(!verdict.genuine && !verdict.acceptable && !verdict.trusted)
        #expect(Set(verdict.violations.map(\.field)) == ["MEASUREMENT", "POLICY"])
        #expect(verdict.problems.contains { $0.hasPrefix("not genuine") })
        #expect(
            verdict.problems.contains {
                $0.hasPrefix("MEASUREMENT: expected \(Hex.encode(Self.measurement)), got \(Hex.encode(other))")
                    && $0.hasSuffix("(in the unverified report)")
            })
        // No VCEK at all: the same.
        var bare = evidence
        bare.certificates = []
        let second = EvidenceCheck.check(
            bare, nonce: nonce, handshakeSPKISHA256: spkiHash, reference: reference, verifier: verifier)
        #expect(!second.trusted && Set(second.violations.map(\.field)) == ["MEASUREMENT", "POLICY"])
    }

    @Test func extensionParserRefusesOversizedAndTrailingInput() throws {
        let evidence = AttestationEvidence(
            nonce: nonce, report: [1, 2, 3],
            certificates: Array(repeating: [0], count: AttestationEvidence.maximumCertificates + 1))
        #expect(throws: (any Error).self) { try AttestationEvidence(derEncoded: try evidence.derEncoded()) }
        let small = AttestationEvidence(nonce: nonce, report: [1], certificates: [[2]])
        #expect(try AttestationEvidence(derEncoded: try small.derEncoded()) == small)
        #expect(throws: (any Error).self) { try AttestationEvidence(derEncoded: try small.derEncoded() + [0]) }
    }
}
