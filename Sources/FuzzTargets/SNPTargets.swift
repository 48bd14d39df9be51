import Foundation
import SNP

/// The Secure Processor's structures as a malicious host hands them over: reports, the extended report's
/// certificate table and its certificates, and the ID block / ID authentication pair of a launch.
enum SNPTargets {
    /// `ATTESTATION_REPORT`: whatever parses serialises back to the same bytes (reserved bytes are refused, so
    /// parse then serialise is the identity).
    static let report = FuzzTarget(
        name: "report",
        summary: "AttestationReport(bytes:); parse then serialise is the identity",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let report = try? AttestationReport(bytes: input) else { return }
            guard report.bytes == input else {
                throw FuzzFinding("report", "a parsed report serialises to other bytes than it was parsed from")
            }
            _ = report.product
            _ = report.keyInfo.signingKey
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            try data.files(in: "snp", suffix: "_report.bin", for: "report")
        })

    /// The real report the verifier target mutates, with its VCEK and chain (vectors.json's first report vector).
    struct Vector: Sendable {
        var report: [UInt8]
        var endorsement: AMDCertificate
        var candidates: [AMDCertificate]
        var validAt: Date
    }

    static func vector(_ data: TestData) throws(FuzzFinding) -> Vector {
        let target = "report-verify"
        let index = try data.read("snp/vectors.json", for: target)
        guard let root = try? JSONSerialization.jsonObject(with: Data(index)) as? [String: Any],
            let vectors = root["vectors"] as? [[String: Any]],
            let entry = vectors.first(where: { $0["report"] is String && $0["signer"] as? String == "VCEK" }),
            let reportFile = entry["report"] as? String, let vcekFile = entry["endorsement_cert"] as? String,
            let icaFile = entry["ica_cert"] as? String, let arkFile = entry["ark_cert"] as? String,
            let validAtText = entry["valid_at"] as? String,
            let validAt = ISO8601DateFormatter().date(from: validAtText)
        else { throw FuzzFinding(target, "snp/vectors.json has no VCEK report vector with its files and valid_at") }
        do {
            return Vector(
                report: try data.read("snp/\(reportFile)", for: target),
                endorsement: try AMDCertificate(bytes: data.read("snp/\(vcekFile)", for: target)),
                candidates: [
                    try AMDCertificate(bytes: data.read("snp/\(icaFile)", for: target)),
                    try AMDCertificate(bytes: data.read("snp/\(arkFile)", for: target)),
                ],
                validAt: validAt)
        } catch let error as FuzzFinding {
            throw error
        } catch {
            throw FuzzFinding(target, "the vector's certificates do not parse: \(error)")
        }
    }

    /// Loaded once per process: the fuzzer calls `run` millions of times.
    private static let loadedVector = MadeOnce<Vector>()

    static func cachedVector() throws(FuzzFinding) -> Vector {
        try loadedVector.value { () throws(FuzzFinding) in try vector(.default) }
    }

    /// `ReportVerifier` (AMD's pinned ARKs) with a fixed real VCEK and chain: never crashes, and whatever verifies
    /// has exactly the signed bytes (0x000–0x29F) of the genuine report.
    static let reportVerify = FuzzTarget(
        name: "report-verify",
        summary: "ReportVerifier.amd with a fixed real VCEK and chain; a mutated report never verifies",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let vector = try cachedVector()
            guard let report = try? AttestationReport(bytes: input) else { return }
            let verified = try? ReportVerifier.amd.verify(
                report, endorsement: vector.endorsement, candidates: vector.candidates, at: vector.validAt)
            guard verified != nil else { return }
            let signed = AttestationReport.signedByteCount
            guard input[..<signed] == vector.report[..<signed] else {
                throw FuzzFinding("report-verify", "a report whose signed bytes differ from the genuine one verified")
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            try [vector(data).report] + data.files(in: "snp", suffix: "_report.bin", for: "report-verify")
        })

    /// The AMD certificate reader (DER or PEM): a DER input that parses is kept byte for byte, and reparsing what
    /// was kept gives the same certificate.
    static let certificate = FuzzTarget(
        name: "amd-certificate",
        summary: "AMDCertificate(bytes:) on DER and PEM; DER kept byte for byte, reparse equal",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let certificate = try? AMDCertificate(bytes: input) else { return }
            if !input.starts(with: Array("-----BEGIN".utf8)), certificate.derRepresentation != input {
                throw FuzzFinding("amd-certificate", "a parsed DER certificate keeps other bytes than it was given")
            }
            guard let again = try? AMDCertificate(derEncoded: certificate.derRepresentation), again == certificate
            else {
                throw FuzzFinding(
                    "amd-certificate", "a parsed certificate's DER does not parse to the same certificate")
            }
            _ = certificate.hardwareID
            _ = certificate.cspID
            _ = certificate.productName
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            try data.files(in: "snp", suffix: ".der", for: "amd-certificate")
                + data.files(in: "snp", suffix: ".pem", for: "amd-certificate")
        })

    /// The extended report's certificate table (host-written): no crash, and the table it parses to serialises to
    /// bytes that parse to the same table; every entry that is a certificate goes through the reader too.
    static let certificateTable = FuzzTarget(
        name: "certificate-table",
        summary: "CertificateTable(bytes:) and each entry through AMDCertificate; serialise then parse is equal",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            guard let table = try? CertificateTable(bytes: input) else { return }
            guard let again = try? CertificateTable(bytes: table.bytes), again == table else {
                throw FuzzFinding("certificate-table", "a parsed table serialises to bytes that do not parse to it")
            }
            for entry in table.entries { _ = try? AMDCertificate(bytes: entry.data) }
            _ = table[.vcek]
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let vcek = try data.files(in: "snp", suffix: "_vcek.der", for: "certificate-table")
            let ask = try data.read("snp/ask_milan.pem", for: "certificate-table")
            let ark = try data.read("snp/ark_milan.pem", for: "certificate-table")
            guard let askDER = try? AMDCertificate(bytes: ask).derRepresentation,
                let arkDER = try? AMDCertificate(bytes: ark).derRepresentation
            else { throw FuzzFinding("certificate-table", "snp/ask_milan.pem or ark_milan.pem does not parse") }
            return vcek.prefix(3).map { endorsement in
                CertificateTable(entries: [
                    .init(kind: .vcek, data: endorsement), .init(kind: .ask, data: askDER),
                    .init(kind: .ark, data: arkDER),
                ]).bytes
            } + [CertificateTable(entries: []).bytes]
        })

    /// ID block (0x60 bytes) followed by ID authentication (0x1000): each is the identity when it parses, and the
    /// signature checks run on whatever parses; a pair that checks out has the genuine block's bytes.
    static let idBlock = FuzzTarget(
        name: "id-block",
        summary: "IDBlock + IDAuthentication parse, serialise (identity) and signature checks",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let split = min(input.count, IDBlock.byteCount)
            let blockBytes = Array(input[..<split])
            let authBytes = Array(input[split...])
            let block = try? IDBlock(bytes: blockBytes)
            if let block, block.bytes != blockBytes {
                throw FuzzFinding("id-block", "a parsed ID block serialises to other bytes than it was parsed from")
            }
            guard let auth = try? IDAuthentication(bytes: authBytes) else { return }
            guard auth.bytes == authBytes else {
                throw FuzzFinding("id-block", "a parsed ID authentication serialises to other bytes")
            }
            _ = auth.idKeyDigest
            _ = auth.authorKeyDigest
            if let block { _ = auth.problems(for: block) }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let block = try data.read("measure/id-block-B03.bin", for: "id-block")
            let auth = try data.read("measure/id-auth-B03.bin", for: "id-block")
            return [block + auth]
        })
}
