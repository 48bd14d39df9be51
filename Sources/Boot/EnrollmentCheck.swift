import SNP
import Sealing

/// Compares what a volume's token says it was enrolled with against this boot's report and configuration,
/// before any key is derived or tried, so a refusal names the value that changed instead of a failed unlock.
enum EnrollmentCheck {
    /// Nil when the enrollment can be opened on this launch; otherwise the refusal, with expected (token)
    /// and actual (report or configuration) values.
    static func refusal(of enrollment: Enrollment, report: AttestationReport, configured: SealMode) -> BootError? {
        let recover = "move the volume to this launch: " + reenrollCommand(report)
        guard enrollment.mode == configured else {
            return BootError(
                stage: .volume,
                cause: "seal mode differs: expected \(configured.rawValue) (configuration), "
                    + "actual \(enrollment.mode.rawValue) (token)",
                next: "set vhsm.seal=\(enrollment.mode.rawValue) if that is how this volume was enrolled, "
                    + "or check the disk is the right one")
        }
        guard enrollment.guestFieldSelect == enrollment.mode.guestFieldSelect else {
            return BootError(
                stage: .volume,
                cause: "token GUEST_FIELD_SELECT is 0x\(String(enrollment.guestFieldSelect.rawValue, radix: 16)) "
                    + "(\(enrollment.guestFieldSelect.names.joined(separator: ","))), expected "
                    + "0x\(String(enrollment.mode.guestFieldSelect.rawValue, radix: 16)) for mode "
                    + enrollment.mode.rawValue,
                next: "this token was not written by vhsm-init; check the disk")
        }
        switch enrollment.mode {
        case .measurement:
            guard let enrolled = enrollment.measurement else { return missing("MEASUREMENT") }
            if enrolled != report.measurement {
                return BootError(
                    stage: .volume,
                    cause: "MEASUREMENT differs from the enrolled one: expected \(Hex.encode(enrolled)) (token), "
                        + "actual \(Hex.encode(report.measurement)) (report)",
                    next: "boot the kernel, initramfs and command line this volume was enrolled with, or " + recover)
            }
        case .platform:
            break
        case .image:
            guard let imageID = enrollment.imageID, let familyID = enrollment.familyID,
                let svn = enrollment.guestSVN
            else { return missing("IMAGE_ID, FAMILY_ID and GUEST_SVN") }
            if imageID != report.imageID || familyID != report.familyID {
                return BootError(
                    stage: .volume,
                    cause: "ID block differs: expected IMAGE_ID \(Hex.encode(imageID)) FAMILY_ID "
                        + "\(Hex.encode(familyID)) (token), actual IMAGE_ID \(Hex.encode(report.imageID)) "
                        + "FAMILY_ID \(Hex.encode(report.familyID)) (report)",
                    next: "launch with an ID block for this image and family, or " + recover)
            }
            if report.guestSVN < svn {
                return BootError(
                    stage: .volume,
                    cause: "GUEST_SVN \(report.guestSVN) is below the enrolled \(svn) (rollback refused)",
                    next: "boot an image signed with GUEST_SVN \(svn) or later")
            }
        }
        if let component = firstComponentAbove(enrollment.tcb, report.committedTCB) {
            return BootError(
                stage: .volume,
                cause: "the pinned TCB is above COMMITTED_TCB (\(component)): expected at least "
                    + "\(enrollment.tcb.hex) (token), actual \(report.committedTCB.hex) (report)",
                next: "the host's firmware was rolled back; update the SEV firmware and microcode, or " + recover)
        }
        return nil
    }

    /// The operator's command that moves a volume to the launch of `report` (from the recovery request and
    /// challenge a refused boot prints): `vhsm volume reenroll`, with this launch's MEASUREMENT.
    static func reenrollCommand(_ report: AttestationReport) -> String {
        "vhsm volume reenroll DISK --recovery-key KEY --request CONSOLE_LOG --measurement "
            + Hex.encode(report.measurement)
    }

    /// The first TCB byte (component) where `pinned` exceeds `committed`, named by position. Every component is
    /// one byte of TCB_VERSION on all products, so a byte-wise comparison needs no product layout.
    static func firstComponentAbove(_ pinned: TCBVersion, _ committed: TCBVersion) -> String? {
        let pinnedBytes = pinned.bytes
        let committedBytes = committed.bytes
        for index in 0..<8 where pinnedBytes[index] > committedBytes[index] {
            return "byte \(index): \(pinnedBytes[index]) > \(committedBytes[index])"
        }
        return nil
    }

    private static func missing(_ fields: String) -> BootError {
        BootError(
            stage: .volume, cause: "the vhsm-snp token lacks \(fields) for its seal mode",
            next: "this token was not written by vhsm-init; check the disk")
    }
}
