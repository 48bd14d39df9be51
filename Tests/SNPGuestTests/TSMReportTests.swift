import Foundation
import SNP
import SystemPackage
import Testing

@testable import SNPGuest

/// configfs-tsm cannot exist here, so these tests run `TSMEntry` on a plain directory prepared with the
/// attributes the kernel would show.
@Suite struct TSMReportTests {
    /// A temporary directory that looks like a configfs-tsm entry after the kernel generated a report.
    final class PreparedEntry {
        let url: URL
        var path: FilePath { FilePath(url.path) }

        init(
            provider: String = "sev_guest\n", generation: String = "3\n",
            outblob: [UInt8] = Fixtures.report().bytes, auxblob: [UInt8]? = Fixtures.certificates.bytes
        ) throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tsm-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            try write("provider", Array(provider.utf8))
            try write("generation", Array(generation.utf8))
            try write("outblob", outblob)
            if let auxblob { try write("auxblob", auxblob) }
            try write("inblob", [])
        }

        deinit { try? FileManager.default.removeItem(at: url) }

        func write(_ name: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: url.appendingPathComponent(name))
        }

        func read(_ name: String) throws -> [UInt8] {
            Array(try Data(contentsOf: url.appendingPathComponent(name)))
        }

        func exists(_ name: String) -> Bool {
            FileManager.default.fileExists(atPath: url.appendingPathComponent(name).path)
        }

        var entry: TSMEntry { TSMEntry(directory: path) }
    }

    @Test func readsAReportAndCertificatesFromAPreparedEntry() throws {
        let prepared = try PreparedEntry()
        try prepared.write("privlevel", [])
        let request = try ReportRequest(reportData: Fixtures.reportData, vmpl: 2)
        let (response, certificates) = try prepared.entry.generate(request, certificates: true)
        #expect(response.status == .success)
        #expect(response.report == Fixtures.report())
        #expect(certificates == Fixtures.certificates)
        #expect(try prepared.read("inblob") == Fixtures.reportData)
        #expect(try prepared.read("privlevel") == Array("2\n".utf8))
    }

    @Test func vmplZeroLeavesPrivlevelAlone() throws {
        let prepared = try PreparedEntry()
        let (response, certificates) = try prepared.entry.generate(
            try ReportRequest(reportData: Fixtures.reportData), certificates: false)
        #expect(response.report == Fixtures.report())
        #expect(certificates == nil)
        #expect(!prepared.exists("privlevel"))
    }

    /// The kernel leaves auxblob empty when the host sent no table; a zero-filled buffer means the same.
    @Test(arguments: [0, 4096])
    func emptyAuxblobGivesAnEmptyTable(zeroBytes: Int) throws {
        let prepared = try PreparedEntry(auxblob: Array(repeating: 0, count: zeroBytes))
        let (_, certificates) = try prepared.entry.generate(
            try ReportRequest(reportData: Fixtures.reportData), certificates: true)
        #expect(certificates == CertificateTable(entries: []))
    }

    @Test func refusesAnotherProvider() throws {
        let prepared = try PreparedEntry(provider: "tdx_guest\n")
        let error = #expect(throws: TSMError.self) {
            try prepared.entry.generate(
                try ReportRequest(reportData: Fixtures.reportData), certificates: false)
        }
        let path = prepared.path.appending("provider").string
        #expect(error == .wrongProvider(path: path, found: "tdx_guest\n"))
        #expect(error?.description.contains("'tdx_guest', not 'sev_guest'") == true)
        #expect(error?.description.contains(path) == true)
        #expect(try prepared.read("inblob").isEmpty)  // nothing written to a foreign provider
    }

    @Test func detectsAnotherWriter() throws {
        let prepared = try PreparedEntry()
        var entry = prepared.entry
        entry.afterRead = { attribute in
            if attribute == "outblob" { try? prepared.write("generation", Array("4\n".utf8)) }
        }
        let error = #expect(throws: TSMError.self) {
            try entry.generate(try ReportRequest(reportData: Fixtures.reportData), certificates: true)
        }
        #expect(
            error
                == .generationChanged(
                    path: prepared.path.appending("generation").string, before: 3, after: 4))
        #expect(error?.description.contains("another process wrote to this entry") == true)
    }

    @Test func refusesAnOutblobThatIsNotAReport() throws {
        let prepared = try PreparedEntry(outblob: Array(repeating: 1, count: 100))
        #expect(
            throws: TSMError.unexpectedReportSize(
                path: prepared.path.appending("outblob").string, count: 100)
        ) {
            try prepared.entry.generate(
                try ReportRequest(reportData: Fixtures.reportData), certificates: false)
        }
    }

    @Test func refusesAKeySelect() throws {
        let prepared = try PreparedEntry()
        #expect(throws: TSMError.keySelectUnsupported(path: prepared.path.string, keySelect: 2)) {
            try prepared.entry.generate(
                try ReportRequest(reportData: Fixtures.reportData, keySelect: 2), certificates: false)
        }
    }

    @Test func derivedKeysAreRefused() {
        let error = #expect(throws: TSMError.self) {
            try TSMReportDevice().derivedKey(DerivedKeyRequest(root: .vcek))
        }
        #expect(error == .derivedKeysUnsupported)
        #expect(
            error?.description
                == "configfs-tsm provides no derived keys (MSG_KEY_REQ); use /dev/sev-guest")
    }

    @Test func missingRootSaysWhatToCheck() throws {
        let device = TSMReportDevice(root: "/nonexistent/tsm/report")
        let error = #expect(throws: TSMError.self) {
            try device.report(try ReportRequest(reportData: Fixtures.reportData))
        }
        #expect(error == .unavailable(root: "/nonexistent/tsm/report"))
        #expect(
            error?.description
                == "configfs-tsm is not available at '/nonexistent/tsm/report': is configfs mounted at "
                + "/sys/kernel/config and the kernel ≥ 6.7 with CONFIG_TSM_REPORTS?")
    }

    @Test func removesItsEntryAfterAFailure() throws {
        // A plain directory as root: mkdir works, the entry has no provider, and the entry must be gone afterwards.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tsm-root-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let device = TSMReportDevice(root: FilePath(root.path))
        let error = #expect(throws: TSMError.self) {
            try device.extendedReport(try ReportRequest(reportData: Fixtures.reportData))
        }
        guard case .readFailed(let path, .noSuchFileOrDirectory) = error else {
            Issue.record("unexpected error \(String(describing: error))")
            return
        }
        #expect(path.hasPrefix(root.path + "/vhsm-"))
        #expect(path.hasSuffix("/provider"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).isEmpty)
    }

    @Test func defaults() {
        #expect(TSMReportDevice().root == "/sys/kernel/config/tsm/report")
        #expect(TSMReportDevice().name == "configfs-tsm")
    }
}
