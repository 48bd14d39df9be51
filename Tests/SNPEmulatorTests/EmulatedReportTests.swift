import Foundation
import SNP
import Testing

@testable import SNPEmulator

@Suite struct EmulatedReportTests {
    static func chip(_ product: Product) -> ChipState {
        switch product {
        case .milan: TestChips.milan
        case .genoa: TestChips.genoa
        case .turin: TestChips.turin
        }
    }

    @Test(arguments: Product.allCases)
    func reportsPassTheProductionVerifierWithTheEmulatorRootTrusted(_ product: Product) throws {
        let chip = Self.chip(product)
        let launch = LaunchContext(measurement: TestChips.measurementA, hostData: Array(repeating: 7, count: 32))
        let guest = TestChips.guest(chip, launch)
        let data = Array(repeating: UInt8(0x5A), count: 64)
        let report = try guest.attestationReport(try ReportRequest(reportData: data, vmpl: 1))
        let vcek = try chip.mintVCEK(for: chip.tcb)

        let verified = try ReportVerifier.amd.trusting(chip.ark).verify(
            report, endorsement: vcek, candidates: [chip.ask, chip.ark], at: Date())
        #expect(verified.product == chip.product)
        #expect(!verified.rootIsAMD)
        #expect(try AttestationReport(bytes: report.bytes) == report)
        #expect(report.version == chip.profile.reportVersion)
        #expect(report.reportData == data)
        #expect(report.vmpl == 1)
        #expect(report.measurement == TestChips.measurementA)
        #expect(report.hostData == Array(repeating: 7, count: 32))
        #expect(report.reportedTCB == chip.tcbVersion)
        #expect(report.chipID == chip.chipID)
        #expect(report.product == chip.product)
        #expect(report.reportIDMA == Array(repeating: 0xFF, count: 32))
    }

    @Test(arguments: Product.allCases)
    func reportsAreRefusedWithoutTheEmulatorRoot(_ product: Product) throws {
        let chip = Self.chip(product)
        let report = try TestChips.guest(chip).attestationReport(ReportRequest())
        let vcek = try chip.mintVCEK(for: chip.tcb)
        #expect(throws: VerificationFailure.self) {
            try ReportVerifier.amd.verify(report, endorsement: vcek, candidates: [chip.ask, chip.ark], at: Date())
        }
    }

    @Test func aReportFromAnotherChipDoesNotVerifyWithThisChipsVCEK() throws {
        let other = TestChips.chip(.milan, secret: 2)
        let report = try TestChips.guest(other).attestationReport(ReportRequest())
        let vcek = try TestChips.milan.mintVCEK(for: TestChips.milan.tcb)
        #expect(throws: VerificationFailure.self) {
            try ReportVerifier(roots: [TestChips.milan.ark]).verify(
                report, endorsement: vcek, candidates: [TestChips.milan.ask], at: Date())
        }
    }

    @Test func theIDBlockIdentityAppearsInReports() throws {
        let guest = TestChips.guest(TestChips.milan, LaunchContext(idBlock: TestChips.identity))
        let report = try guest.attestationReport(ReportRequest())
        #expect(report.guestSVN == 5)
        #expect(report.familyID == TestChips.identity.familyID)
        #expect(report.imageID == TestChips.identity.imageID)
        #expect(report.idKeyDigest == TestChips.identity.idKeyDigest)
        #expect(!report.keyInfo.authorKeyEnabled)
    }

    @Test func reportRequestsFollowTheFirmwareRules() throws {
        let guest = TestChips.guest(TestChips.milan, LaunchContext(callerVMPL: 2))
        #expect(guest.report(try ReportRequest(vmpl: 1)).status == .invalidParam)  // below the caller's VMPL
        #expect(guest.report(try ReportRequest(vmpl: 4)).status == .invalidParam)
        #expect(guest.report(try ReportRequest(vmpl: 2, keySelect: 2)).status == .invalidKey)  // no VLEK loaded
        #expect(guest.report(try ReportRequest(vmpl: 2, keySelect: 3)).status == .invalidParam)
        #expect(guest.report(try ReportRequest(vmpl: 3, keySelect: 1)).status == .success)
        var reserved = try ReportRequest(vmpl: 2).bytes
        reserved[0x50] = 1
        #expect(guest.report(requestBytes: reserved).status == .invalidParam)
        #expect(throws: FirmwareError(status: .invalidParam, request: "MSG_REPORT_REQ")) {
            try guest.attestationReport(try ReportRequest(vmpl: 0))
        }
    }

    @Test func launchesWithABadPolicyAreRefused() {
        for (raw, reason) in [(0x10000, "bit 17"), (0x3_0000 | 1 << 30, "reserved"), (0x3_3800, "ABI")]
            as [(UInt64, String)]
        {
            #expect(throws: EmulatorError.self, "\(reason)") {
                try EmulatedGuest(chip: TestChips.milan, launch: LaunchContext(policy: GuestPolicy(rawValue: raw)))
            }
        }
    }

    @Test func theTurinVCEKUsesTheTurinLayout() throws {
        let vcek = try TestChips.turin.mintVCEK(for: TestChips.turin.tcb)
        #expect(vcek.tcbLevels == TCBLevels(fmc: 0, bootLoader: 1, tee: 0, snp: 2, microcode: 71))
        #expect(vcek.hardwareID?.count == 8)
        #expect(vcek.structVersion == 1)
    }
}
