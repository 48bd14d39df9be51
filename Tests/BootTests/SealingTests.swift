import SNP
import Sealing
import Testing

@testable import Boot

@Suite struct SealingTests {
    @Test(arguments: [
        (SealMode.measurement, UInt64(0x29), "policy,measurement,tcb"),
        (SealMode.platform, UInt64(0x21), "policy,tcb"),
        (SealMode.image, UInt64(0x37), "policy,image-id,family-id,guest-svn,tcb"),
    ])
    func eachModeSelectsTheFieldsOfDesignSection4(mode: SealMode, raw: UInt64, names: String) {
        #expect(mode.guestFieldSelect.rawValue == raw)
        #expect(mode.guestFieldSelect.names.joined(separator: ",") == names)
    }

    func report() -> AttestationReport {
        var report = AttestationReport(version: 3)
        report.measurement = Array(repeating: 0xA1, count: 48)
        report.imageID = Array(repeating: 0x1E, count: 16)
        report.familyID = Array(repeating: 0x0F, count: 16)
        report.guestSVN = 9
        // The host lowered REPORTED_TCB below COMMITTED_TCB; CURRENT_TCB runs ahead of it (uncommitted update).
        report.reportedTCB = TCBVersion(rawValue: 0x1700_0000_0000_0304)
        report.committedTCB = TCBVersion(rawValue: 0x1800_0000_0000_0304)
        report.currentTCB = TCBVersion(rawValue: 0x1900_0000_0000_0304)
        return report
    }

    @Test func aFirstBootPinsTheCommittedTCBAndRecordsTheModesValues() throws {
        let measurement = try Enrollment(firstBoot: .measurement, report: report(), requirements: SealingRequirements())
        #expect(measurement.tcb == report().committedTCB)
        #expect(measurement.measurement == report().measurement)
        #expect(measurement.imageID == nil && measurement.guestSVN == nil)

        let platform = try Enrollment(firstBoot: .platform, report: report(), requirements: SealingRequirements())
        #expect(platform.measurement == nil && platform.imageID == nil)

        let image = try Enrollment(firstBoot: .image, report: report(), requirements: SealingRequirements())
        #expect(image.imageID == report().imageID && image.familyID == report().familyID && image.guestSVN == 9)
        #expect(image.measurement == nil)
    }

    @Test func theKeyRequestUsesTheVCEKThePinnedTCBAndTheEnrolledSVN() throws {
        var image = try Enrollment(firstBoot: .image, report: report(), requirements: SealingRequirements())
        image.guestSVN = 5
        let request = image.keyRequest
        #expect(request.rootKeySelect == 0b010)
        #expect(!request.usesVMRK)
        #expect(request.keySelect == 1)
        #expect(request.vmpl == 0)
        #expect(request.guestSVN == 5)
        #expect(request.tcbVersion == report().committedTCB)
        #expect(request.guestFieldSelect == SealMode.image.guestFieldSelect)

        // Without GUEST_SVN selected the SVN stays 0, whatever the token says.
        var measurement = try Enrollment(firstBoot: .measurement, report: report(), requirements: SealingRequirements())
        measurement.guestSVN = 5
        #expect(measurement.keyRequest.guestSVN == 0)
    }

    @Test func theEmulatedFirmwareDerivesOneKeyPerModeAndLaunch() throws {
        let attestation = Attestation(device: TestLaunch.guest(identity: TestLaunch.identity(svn: 3)))
        let report = try attestation.report()
        var keys: [[UInt8]] = []
        for mode in SealMode.allCases {
            let key = try attestation.sealingKey(
                for: try Enrollment(firstBoot: mode, report: report, requirements: SealingRequirements()))
            #expect(key.count == 32)
            #expect(
                try attestation.sealingKey(
                    for: try Enrollment(firstBoot: mode, report: report, requirements: SealingRequirements())) == key)
            keys.append(key)
        }
        #expect(Set(keys).count == 3)
    }

    @Test func aTCBAboveCommittedIsRefusedByTheFirmwareAsADeriveFailure() throws {
        let attestation = Attestation(device: TestLaunch.guest())
        let report = try attestation.report()
        var enrollment = try Enrollment(firstBoot: .platform, report: report, requirements: SealingRequirements())
        enrollment.tcb = TCBVersion(rawValue: report.committedTCB.rawValue + (1 << 56))
        let error = #expect(throws: BootError.self) { try attestation.sealingKey(for: enrollment) }
        #expect(error?.stage == .derive)
        #expect(error?.cause.contains("MSG_KEY_REQ (root VCEK, fields policy,tcb, TCB \(enrollment.tcb.hex)") == true)
    }

    @Test func theReportSummaryShowsWhatAnOperatorCompares() throws {
        let report = try Attestation(device: TestLaunch.guest()).report()
        let lines = Attestation.summary(report)
        #expect(lines.count == 2)
        #expect(
            lines[0].hasPrefix(
                "vhsm-init: report MEASUREMENT=\(String(repeating: "a1", count: 48)) POLICY=0x20000 REPORTED_TCB=\(report.reportedTCB.hex) (bl "
            ))
        #expect(lines[0].hasSuffix(") COMMITTED_TCB=\(report.committedTCB.hex)"))
        #expect(
            lines[1].hasPrefix(
                "vhsm-init: report CHIP_ID=\(Hex.encode(report.chipID.prefix(8)))… HOST_DATA=\(String(repeating: "0", count: 64)) VMPL=0"
            ))
        #expect(lines[1].hasSuffix("Milan"))
    }
}
