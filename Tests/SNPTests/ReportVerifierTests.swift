import Crypto
import Foundation
import SNP
import Testing

@Suite struct ReportVerifierTests {
    func verify(
        _ vector: RealVector, report: [UInt8]? = nil, endorsement: [UInt8]? = nil, at: Date? = nil
    ) throws
        -> VerifiedReport
    {
        let parsed = try AttestationReport(bytes: report ?? vector.report)
        let certificate = try AMDCertificate(bytes: endorsement ?? vector.endorsement)
        return try ReportVerifier.amd.verify(parsed, endorsement: certificate, at: at ?? vector.validAt)
    }

    @Test(arguments: RealVector.reports)
    func verifiesEveryRealReportWithTheBuiltinChain(_ vector: RealVector) throws {
        let verified = try verify(vector)
        #expect(verified.product.name == vector.entry.product)
        #expect(verified.signer.description == vector.entry.signer)
        #expect(verified.rootIsAMD)
    }

    @Test(arguments: RealVector.reports)
    func verifiesEveryRealReportWithTheChainFromFiles(_ vector: RealVector) throws {
        let report = try AttestationReport(bytes: vector.report)
        let chain = try AMDCertificate.all(pemEncoded: vector.intermediatePEM + vector.arkPEM)
        let verified = try ReportVerifier.amd.verify(
            report, endorsement: AMDCertificate(bytes: vector.endorsement), candidates: chain, at: vector.validAt)
        #expect(
            verified.chain.map(\.derRepresentation) == [chain[1], chain[0]].map(\.derRepresentation) + [
                vector.endorsement
            ])
    }

    @Test func theBuiltinCertificatesAreAMDsAndMatchThePins() throws {
        for product in Product.allCases {
            let ark = try AMDCertificate(pemEncoded: product.builtinArkPEM)
            #expect(Array(SHA256.hash(data: ark.derRepresentation)) == product.arkFingerprint)
            let shared = try AMDCertificate(
                pemEncoded: String(decoding: RealVector.read("ark_\(product.rawValue).pem"), as: UTF8.self))
            #expect(shared == ark)
            for kind in ["ask", "asvk"] {
                let file = try AMDCertificate(
                    pemEncoded: String(decoding: RealVector.read("\(kind)_\(product.rawValue).pem"), as: UTF8.self))
                let builtin = try AMDCertificate(
                    pemEncoded: kind == "ask" ? product.builtinAskPEM : product.builtinAsvkPEM)
                #expect(file == builtin)
            }
        }
    }

    /// A one-bit flip anywhere in the signed bytes or the signature is rejected (every 7th bit, to stay quick;
    /// plus every byte of the signature area's R and S).
    @Test(arguments: RealVector.reports)
    func rejectsEveryBitFlip(_ vector: RealVector) throws {
        let original = vector.report
        let certificate = try AMDCertificate(bytes: vector.endorsement)
        var offsets = Array(stride(from: 0, to: 0x2A0 * 8, by: 7))
        offsets += Array(stride(from: 0x2A0 * 8, to: 0x4A0 * 8, by: 13))
        for bit in offsets {
            var bytes = original
            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            let rejected: Bool
            do {
                let report = try AttestationReport(bytes: bytes)
                _ = try ReportVerifier.amd.verify(report, endorsement: certificate, at: vector.validAt)
                rejected = false
            } catch {
                rejected = true
            }
            #expect(rejected, "bit \(bit) (byte 0x\(String(bit / 8, radix: 16))) flipped was accepted")
        }
    }

    @Test(arguments: RealVector.reports)
    func rejectsACertificateFromAnotherVector(_ vector: RealVector) throws {
        let other =
            RealVector.reports.first { $0.name != vector.name && $0.entry.product == vector.entry.product }
            ?? RealVector.reports.first { $0.name != vector.name }!
        #expect(throws: VerificationFailure.self) { try verify(vector, endorsement: other.endorsement) }
    }

    @Test func namesTheWrongReportSignatureAndTheHardwareID() throws {
        let vector = RealVector.reports.first { $0.name == "milan_v2_virtee" }!
        let other = RealVector.reports.first { $0.name == "milan_v2_trustee" }!
        do {
            _ = try verify(vector, endorsement: other.endorsement, at: vector.validAt)
            Issue.record("accepted another chip's VCEK")
        } catch let failure as VerificationFailure {
            #expect(failure.problems.contains(.reportSignatureInvalid))
            #expect(failure.problems.contains { if case .hardwareIDMismatch = $0 { true } else { false } })
        }
    }

    @Test func rejectsAnSPLMismatch() throws {
        let vector = RealVector.reports.first { $0.name == "milan_v2_virtee" }!
        var bytes = vector.report
        bytes[0x180] = 2  // boot loader SPL 3 → 2
        do {
            _ = try verify(vector, report: bytes)
            Issue.record("accepted a changed REPORTED_TCB")
        } catch let failure as VerificationFailure {
            #expect(failure.problems.contains(.splMismatch(.bootLoader, certificate: 3, reportedTCB: 2)))
            #expect(failure.problems.contains(.reportSignatureInvalid))
        }
    }

    @Test func rejectsAnExpiredCertificate() throws {
        let vector = RealVector.reports.first { $0.name == "milan_v3_vlek_aws" }!
        let later = ISO8601DateFormatter().date(from: "2026-11-29T00:00:00Z")!
        do {
            _ = try verify(vector, at: later)
            Issue.record("accepted an expired VLEK")
        } catch let failure as VerificationFailure {
            #expect(failure.problems.count == 1, "\(failure)")
            #expect(failure.description.contains("SEV-VLEK"))
        }
    }

    @Test func rejectsAnUnpinnedRootUnlessTrustedExplicitly() throws {
        // A chain whose root is not pinned: AMD's Genoa ASK/ARK offered for a Milan report is refused
        // by name/signature; an unpinned root is refused by fingerprint. Simulate an unpinned verifier.
        let vector = RealVector.reports.first { $0.name == "milan_v2_gsg" }!
        let report = try AttestationReport(bytes: vector.report)
        let certificate = try AMDCertificate(bytes: vector.endorsement)
        let ark = try AMDCertificate(pemEncoded: vector.arkPEM)
        let unpinned = ReportVerifier(roots: [])
        do {
            _ = try unpinned.verify(report, endorsement: certificate, at: vector.validAt)
            Issue.record("accepted a root that is not trusted")
        } catch {
            #expect(error.problems.contains { if case .untrustedRoot = $0 { true } else { false } })
        }
        let verified = try unpinned.trusting(ark).verify(report, endorsement: certificate, at: vector.validAt)
        #expect(verified.product == .milan)
    }

    @Test func rejectsAChainOfTheWrongProduct() throws {
        let vector = RealVector.reports.first { $0.name == "genoa_v3_azure" }!
        let report = try AttestationReport(bytes: vector.report)
        let milanChain = try AMDCertificate.all(
            pemEncoded: String(decoding: RealVector.read("cert_chain_vcek_milan.pem"), as: UTF8.self))
        // The Milan chain is offered first, but the Genoa VCEK names SEV-Genoa: the built-in Genoa ASK is used.
        let verified = try ReportVerifier.amd.verify(
            report, endorsement: AMDCertificate(bytes: vector.endorsement), candidates: milanChain, at: vector.validAt)
        #expect(verified.product == .genoa)
    }

    @Test func readsAMDsExtensions() throws {
        let turin = try AMDCertificate(bytes: RealVector.read("turin_v5_oak_vcek.der"))
        #expect(turin.structVersion == 1)
        #expect(turin.productName == "Turin")
        #expect(turin.tcbLevels == TCBLevels(fmc: 0, bootLoader: 1, tee: 0, snp: 2, microcode: 71))
        #expect(turin.hardwareID.map(Hex.encode) == "3b42092f69c656d3")
        #expect(turin.serialNumber.isEmpty)
        let vlek = try AMDCertificate(bytes: RealVector.read("milan_v3_vlek_aws_vlek.der"))
        #expect(vlek.cspID == "CN=cc-us-east-2.amazonaws.com")
        #expect(vlek.hardwareID == nil)
        let oak = try AMDCertificate(bytes: RealVector.read("milan_v3_oak_vcek.der"))
        #expect(oak.tcbLevels?.microcode == 219)
    }

    @Test(arguments: [[UInt8](), [0x30, 0x03, 0x02, 0x01, 0x00], Array("garbage".utf8), [0x30, 0x82, 0xFF, 0xFF]])
    func refusesGarbageCertificates(_ bytes: [UInt8]) {
        #expect(throws: CertificateError.self) { try AMDCertificate(bytes: bytes) }
    }
}
