import SNP
import Sealing
import Testing

@testable import Boot

@Suite struct EnrollmentCheckTests {
    var report: AttestationReport = {
        var report = AttestationReport(version: 3)
        report.measurement = Array(repeating: 0xBB, count: 48)
        report.imageID = Array(repeating: 0x01, count: 16)
        report.familyID = Array(repeating: 0x02, count: 16)
        report.guestSVN = 3
        report.reportedTCB = TCBVersion(rawValue: 0x1800_0000_0000_0304)
        report.committedTCB = TCBVersion(rawValue: 0x1800_0000_0000_0304)
        return report
    }()

    @Test func aMatchingEnrollmentPasses() throws {
        for mode in SealMode.allCases {
            #expect(
                EnrollmentCheck.refusal(
                    of: try Enrollment(firstBoot: mode, report: report, requirements: SealingRequirements()),
                    report: report, configured: mode) == nil)
        }
    }

    @Test func aChangedMeasurementNamesExpectedAndActual() throws {
        var enrollment = try Enrollment(firstBoot: .measurement, report: report, requirements: SealingRequirements())
        enrollment.measurement = Array(repeating: 0xAA, count: 48)
        let refusal = EnrollmentCheck.refusal(of: enrollment, report: report, configured: .measurement)
        #expect(
            refusal?.cause
                == "MEASUREMENT differs from the enrolled one: expected \(String(repeating: "aa", count: 48)) "
                + "(token), actual \(String(repeating: "bb", count: 48)) (report)")
        #expect(
            refusal?.next.hasPrefix("boot the kernel, initramfs and command line this volume was enrolled with") == true
        )
    }

    @Test func imageModeComparesIDsAndRefusesALowerSVN() throws {
        var enrollment = try Enrollment(firstBoot: .image, report: report, requirements: SealingRequirements())
        enrollment.familyID = Array(repeating: 0x09, count: 16)
        #expect(
            EnrollmentCheck.refusal(of: enrollment, report: report, configured: .image)?.cause
                == "ID block differs: expected IMAGE_ID \(String(repeating: "01", count: 16)) FAMILY_ID "
                + "\(String(repeating: "09", count: 16)) (token), actual IMAGE_ID \(String(repeating: "01", count: 16)) "
                + "FAMILY_ID \(String(repeating: "02", count: 16)) (report)")
        enrollment = try Enrollment(firstBoot: .image, report: report, requirements: SealingRequirements())
        enrollment.guestSVN = 4
        #expect(
            EnrollmentCheck.refusal(of: enrollment, report: report, configured: .image)?.cause
                == "GUEST_SVN 3 is below the enrolled 4 (rollback refused)")
        enrollment.guestSVN = 2
        #expect(EnrollmentCheck.refusal(of: enrollment, report: report, configured: .image) == nil)
    }

    @Test func aFirmwareRollbackBelowThePinnedTCBIsNamed() throws {
        var enrollment = try Enrollment(firstBoot: .platform, report: report, requirements: SealingRequirements())
        enrollment.tcb = TCBVersion(rawValue: 0x1900_0000_0000_0304)
        let refusal = EnrollmentCheck.refusal(of: enrollment, report: report, configured: .platform)
        #expect(
            refusal?.cause == "the pinned TCB is above COMMITTED_TCB (byte 7: 25 > 24): expected at least "
                + "0403000000000019 (token), actual 0403000000000018 (report)")
    }

    @Test func aTokenWhoseFieldsDoNotMatchItsModeIsNotOurs() throws {
        var enrollment = try Enrollment(firstBoot: .measurement, report: report, requirements: SealingRequirements())
        enrollment.guestFieldSelect = [.measurement]
        #expect(
            EnrollmentCheck.refusal(of: enrollment, report: report, configured: .measurement)?.cause
                == "token GUEST_FIELD_SELECT is 0x8 (measurement), expected 0x29 for mode measurement")
        enrollment = try Enrollment(firstBoot: .measurement, report: report, requirements: SealingRequirements())
        enrollment.measurement = nil
        #expect(
            EnrollmentCheck.refusal(of: enrollment, report: report, configured: .measurement)?.cause
                == "the vhsm-snp token lacks MEASUREMENT for its seal mode")
    }

    @Test func firstComponentAboveComparesEveryByte() throws {
        #expect(
            EnrollmentCheck.firstComponentAbove(TCBVersion(rawValue: 0x0102), TCBVersion(rawValue: 0x0201))
                == "byte 0: 2 > 1")
        #expect(EnrollmentCheck.firstComponentAbove(TCBVersion(rawValue: 0x0101), TCBVersion(rawValue: 0x0202)) == nil)
    }
}
