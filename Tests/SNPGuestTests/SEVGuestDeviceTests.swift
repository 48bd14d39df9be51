import CLinux
import SNP
import SystemPackage
import Testing

@testable import SNPGuest

@Suite struct SEVGuestDeviceTests {
    static let invalidLength: UInt64 = 0x0000_0001_0000_0000

    @Test func reportRoundTrip() throws {
        let report = Fixtures.report(vmpl: 1)
        let kernel = FakeKernel { _, ioctl in
            ioctl.respond(ReportResponse(status: .success, report: report).bytes)
            return nil
        }
        let request = try ReportRequest(reportData: Fixtures.reportData, vmpl: 1, keySelect: 1)
        let response = try kernel.device.report(request)
        #expect(response.status == .success)
        #expect(response.report == report)
        #expect(try kernel.device.attestationReport(request) == report)

        let call = try #require(kernel.calls.first)
        #expect(call.request == 0xC020_5300)
        #expect(call.messageVersion == 1)
        #expect(call.requestBytes == request.bytes)
        #expect(Array(call.requestBytes[0..<64]) == Fixtures.reportData)
        #expect(Array(call.requestBytes[0x40..<0x44]) == [1, 0, 0, 0])
        #expect(Array(call.requestBytes[0x44..<0x48]) == [1, 0, 0, 0])
        #expect(call.requestBytes[0x48...].allSatisfy { $0 == 0 })
    }

    @Test func firmwareStatusInsideASuccessfulIoctlReachesTheCaller() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.respond(ReportResponse(status: .invalidParam, report: nil).bytes)
            return nil
        }
        let request = try ReportRequest(reportData: Fixtures.reportData, vmpl: 0)
        let response = try kernel.device.report(request)
        #expect(response.status == .invalidParam)
        #expect(response.report == nil)
        #expect(throws: FirmwareError(status: .invalidParam, request: "MSG_REPORT_REQ")) {
            try kernel.device.attestationReport(request)
        }
    }

    @Test func extendedReportGrowsTheCertificateBufferOnce() throws {
        let table = Fixtures.certificates
        #expect(table.bytes.count > 4096)
        let report = Fixtures.report()
        let kernel = FakeKernel { index, ioctl in
            switch index {
            case 0:
                // The driver writes the size it needs into certs_len and fails with INVALID_LEN.
                ioctl.extended.pointee.certs_len = 8192
                ioctl.exit(Self.invalidLength)
                return .ioError
            default:
                ioctl.writeCertificates(table.bytes)
                ioctl.respond(ReportResponse(status: .success, report: report).bytes)
                return nil
            }
        }
        let request = try ReportRequest(reportData: Fixtures.reportData, vmpl: 2)
        let (response, certificates) = try kernel.device.extendedReport(request)
        #expect(response.report == report)
        #expect(certificates == table)
        #expect(certificates[.vcek] == Array(repeating: 0x30, count: 1300))

        let calls = kernel.calls
        #expect(calls.count == 2)
        #expect(calls.allSatisfy { $0.request == 0xC020_5302 && $0.messageVersion == 1 })
        #expect(calls.allSatisfy { Array($0.requestBytes[0..<96]) == request.bytes })
        #expect(calls.map { certsLength($0.requestBytes) } == [4096, 8192])
    }

    @Test(arguments: [UInt32(0x5000), 0x8000, 5000, 4096, 0])
    func extendedReportRefusesABufferTheDriverCannotTake(_ required: UInt32) throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.extended.pointee.certs_len = required
            ioctl.exit(Self.invalidLength)
            return .ioError
        }
        #expect(
            throws: GuestDeviceError.certificateBufferTooLarge(path: "/dev/null", requiredBytes: required)
        ) {
            try kernel.device.extendedReport(try ReportRequest(reportData: Fixtures.reportData))
        }
        #expect(kernel.calls.count == 1)
    }

    @Test func extendedReportRetriesOnlyOnce() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.extended.pointee.certs_len = 16384
            ioctl.exit(Self.invalidLength)
            return .ioError
        }
        #expect(
            throws: GuestDeviceError.requestFailed(
                path: "/dev/null", request: .extendedReport, firmware: .success, vmmError: 1)
        ) {
            try kernel.device.extendedReport(try ReportRequest(reportData: Fixtures.reportData))
        }
        #expect(kernel.calls.map { certsLength($0.requestBytes) } == [4096, 16384])
    }

    @Test func emptyCertificateBufferGivesAnEmptyTable() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.respond(ReportResponse(status: .success, report: Fixtures.report()).bytes)
            return nil
        }
        let (response, table) = try kernel.device.extendedReport(
            try ReportRequest(reportData: Fixtures.reportData))
        #expect(response.status == .success)
        #expect(table.entries.isEmpty)
        #expect(kernel.calls.count == 1)
    }

    @Test func refusedExtendedReportKeepsItsStatus() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.writeCertificates(Array(repeating: 0xEE, count: 100))  // garbage the caller must not parse
            ioctl.respond(ReportResponse(status: .invalidKey, report: nil).bytes)
            return nil
        }
        let (response, table) = try kernel.device.extendedReport(
            try ReportRequest(reportData: Fixtures.reportData))
        #expect(response.status == .invalidKey)
        #expect(table.entries.isEmpty)
    }

    @Test func retriesEINTROnly() throws {
        let kernel = FakeKernel { index, ioctl in
            if index == 0 { return .interrupted }
            ioctl.respond(ReportResponse(status: .success, report: Fixtures.report()).bytes)
            return nil
        }
        _ = try kernel.device.report(try ReportRequest(reportData: Fixtures.reportData))
        #expect(kernel.calls.count == 2)
    }

    @Test func doesNotRetryOtherFailures() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.exit(0x16)
            return .ioError
        }
        #expect(
            throws: GuestDeviceError.requestFailed(
                path: "/dev/null", request: .report, firmware: .invalidParam, vmmError: 0)
        ) {
            try kernel.device.report(try ReportRequest(reportData: Fixtures.reportData))
        }
        #expect(kernel.calls.count == 1)
    }

    @Test func exitinfo2IsReadAfterTheCall() throws {
        let kernel = FakeKernel { _, _ in .inappropriateIOCTLForDevice }
        #expect(throws: GuestDeviceError.vmpckDisabled(path: "/dev/null", request: .derivedKey)) {
            try kernel.device.derivedKey(DerivedKeyRequest(root: .vcek))
        }
    }

    @Test func derivedKeyRoundTrip() throws {
        let key = (0..<32).map { UInt8($0) }
        let kernel = FakeKernel { _, ioctl in
            ioctl.respond(DerivedKeyResponse(status: .success, key: key).bytes)
            return nil
        }
        let request = DerivedKeyRequest(
            root: .vlek, guestFieldSelect: [.measurement, .tcbVersion], vmpl: 1, guestSVN: 7,
            tcbVersion: TCBVersion(rawValue: 0x1122_3344_5566_7788))
        let response = try kernel.device.derivedKey(request)
        #expect(response.status == .success)
        #expect(response.key == key)
        #expect(try kernel.device.derivedKeyBytes(request) == key)

        let call = try #require(kernel.calls.first)
        #expect(call.request == 0xC020_5301)
        #expect(call.messageVersion == 1)
        #expect(call.requestBytes == request.bytes)
        #expect(Array(call.requestBytes[0..<4]) == [4, 0, 0, 0])
        #expect(
            Array(call.requestBytes[0x18..<0x20]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    }

    @Test func refusedDerivedKeyThrowsFirmwareError() throws {
        let kernel = FakeKernel { _, ioctl in
            ioctl.respond(DerivedKeyResponse(status: .invalidKey).bytes)
            return nil
        }
        #expect(throws: FirmwareError(status: .invalidKey, request: "MSG_KEY_REQ")) {
            try kernel.device.derivedKeyBytes(DerivedKeyRequest(root: .vlek))
        }
    }

    @Test func refusesReportDataOfTheWrongSize() throws {
        let kernel = FakeKernel { _, _ in nil }
        var request = try ReportRequest()
        request.reportData = [1, 2, 3]
        #expect(throws: GuestDeviceError.badReportData(path: "/dev/null", count: 3)) {
            try kernel.device.report(request)
        }
        #expect(kernel.calls.isEmpty)
    }

    @Test func missingDeviceNamesThePath() throws {
        let device = SEVGuestDevice(path: "/nonexistent/sev-guest")
        #expect(device.name == "/nonexistent/sev-guest")
        let error = #expect(throws: GuestDeviceError.self) {
            try device.report(try ReportRequest())
        }
        #expect(error == .deviceMissing(path: "/nonexistent/sev-guest"))
        #expect(
            error?.description.hasPrefix(
                "cannot open '/nonexistent/sev-guest': No such file or directory.") == true)
    }

    @Test func defaultPath() {
        #expect(SEVGuestDevice().path == "/dev/sev-guest")
        #expect(SEVGuestDevice().name == "/dev/sev-guest")
    }

    /// certs_len, the u32 at 0x68 of `snp_ext_report_req`.
    private func certsLength(_ bytes: [UInt8]) -> UInt32 {
        bytes[0x68..<0x6C].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
