import Foundation
import SNP
import Testing

/// The real AMD reports and certificates in `../shared/testdata/snp`, with `vectors.json`'s expectations.
/// A missing folder is a test failure, never a skip.
struct RealVector: Sendable, CustomTestStringConvertible {
    struct Expect: Decodable, Sendable {
        var version: UInt32
        var vmpl: UInt32
        var guest_svn: UInt32
        var policy: UInt64
        var measurement: String
        var report_data: String
        var host_data: String
        var chip_id: String
        var reported_tcb_raw: String
        var sha256: String
    }
    struct Entry: Decodable, Sendable {
        var name: String
        var product: String
        var signer: String
        var report: String?
        var endorsement_cert: String
        var ica_cert: String
        var ark_cert: String
        var valid_at: String
        var expect: Expect?

        enum CodingKeys: String, CodingKey {
            case name, product, signer, report, endorsement_cert, ica_cert, ark_cert, valid_at, expect
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            product = try c.decode(String.self, forKey: .product)
            signer = try c.decode(String.self, forKey: .signer)
            report = try c.decodeIfPresent(String.self, forKey: .report)
            endorsement_cert = try c.decode(String.self, forKey: .endorsement_cert)
            ica_cert = try c.decode(String.self, forKey: .ica_cert)
            ark_cert = try c.decode(String.self, forKey: .ark_cert)
            valid_at = try c.decode(String.self, forKey: .valid_at)
            // The certificate-only vector has no report, and so no report fields to expect.
            expect = report == nil ? nil : try c.decode(Expect.self, forKey: .expect)
        }
    }

    var entry: Entry
    var name: String { entry.name }
    var testDescription: String { entry.name }

    var report: [UInt8] { Self.read(entry.report!) }
    var endorsement: [UInt8] { Self.read(entry.endorsement_cert) }
    var intermediatePEM: String { String(decoding: Self.read(entry.ica_cert), as: UTF8.self) }
    var arkPEM: String { String(decoding: Self.read(entry.ark_cert), as: UTF8.self) }
    var validAt: Date { ISO8601DateFormatter().date(from: entry.valid_at)! }

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["VHSM_TESTDATA"] {
            return URL(fileURLWithPath: override).appendingPathComponent("snp")
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/testdata/snp").standardized
    }()

    static func read(_ file: String) -> [UInt8] {
        let url = directory.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            fatalError("test data \(url.path) is missing: the tests need ../shared/testdata beside the checkout")
        }
        return Array(data)
    }

    static let all: [RealVector] = {
        struct Index: Decodable { var vectors: [Entry] }
        let index = try! JSONDecoder().decode(Index.self, from: Data(read("vectors.json")))
        return index.vectors.map { RealVector(entry: $0) }
    }()

    /// The vectors that come with a report.
    static let reports: [RealVector] = all.filter { $0.entry.report != nil }
}
