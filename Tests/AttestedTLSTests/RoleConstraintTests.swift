import AttestedTLS
import Crypto
import Foundation
import SNP
import SNPEmulator
import Testing

/// The role-constraint vocabulary of `ReferenceValues` (issue 15, DESIGN §9): go-sev-guest's validation options,
/// each optional and ANDed, any-of for lists, each met and violated on emulated reports.
@Suite struct RoleConstraintTests {
    static let chip: ChipState = try! ChipState.create(product: .milan)
    static let otherChip: ChipState = try! ChipState.create(product: .milan)
    /// A chip running firmware newer than it committed (CURRENT_TCB microcode 220 over COMMITTED_TCB 219).
    static let provisional: ChipState = try! ChipState.create(
        product: .milan, currentTCB: TCBLevels(bootLoader: 4, tee: 0, snp: 24, microcode: 220))
    static let measurement = Array(repeating: UInt8(0x5A), count: 48)
    static let identity = LaunchIdentity(
        familyID: Array(repeating: 0x0F, count: 16), imageID: Array(repeating: 0x1E, count: 16), guestSVN: 5,
        idKeyDigest: Array(repeating: 0x1D, count: 48), authorKeyDigest: nil)

    let nonce = (0..<32).map { _ in UInt8.random(in: 0...255) }
    let spki = Array(repeating: UInt8(0xEE), count: 32)

    /// The violations `reference` finds in a genuine report of a guest on `chip` (EvidenceCheck's verified path).
    func violations(
        _ reference: ReferenceValues, chip: ChipState = chip, identity: LaunchIdentity? = identity, vmpl: UInt32 = 0
    ) throws -> [PolicyViolation] {
        let guest = try EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: Self.measurement, idBlock: identity))
        let data = try #require(AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spki))
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data, vmpl: vmpl))
        let report = try response.checked()
        let evidence = AttestationEvidence(
            nonce: nonce, report: report.bytes,
            certificates: AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey))
        let verdict = EvidenceCheck.check(
            evidence, nonce: nonce, handshakeSPKISHA256: spki, reference: reference,
            verifier: ReportVerifier.amd.trusting(chip.ark))
        #expect(verdict.genuine && verdict.bound, "\(verdict.problems)")
        #expect(verdict.acceptable == verdict.violations.isEmpty)
        return verdict.violations
    }

    /// A report of `chip` as it would come signed with a VLEK: KEY_INFO says VLEK and CHIP_ID is zero (MASK_CHIP_ID
    /// style). The emulator signs with VCEKs only, so the VLEK rules are checked on the report's own claim.
    func vlekReport() throws -> AttestationReport {
        let guest = try EmulatedGuest(
            chip: Self.chip, launch: LaunchContext(measurement: Self.measurement, idBlock: Self.identity))
        var report = try guest.report(try ReportRequest()).checked()
        report.keyInfo = KeyInfo(signingKey: .vlek)
        report.chipID = Array(repeating: 0, count: 64)
        return report
    }

    static func fields(_ violations: [PolicyViolation]) -> [String] { violations.map(\.field) }

    @Test func theDefaultsAddNothingToAMeasurement() throws {
        let reference = ReferenceValues(measurements: [Self.measurement])
        #expect(reference.allowVLEK && !reference.permitProvisionalFirmware)
        #expect(try violations(reference) == [])
        // Only a measurement, an ID key or an author key names an identity: family and image IDs are any owner's.
        #expect(
            !ReferenceValues(familyIDs: [Self.identity.familyID], imageIDs: [Self.identity.imageID]).namesAnIdentity)
        #expect(ReferenceValues(idKeyDigests: [Self.identity.idKeyDigest]).namesAnIdentity)
    }

    @Test func familyAndImageIDsAreAnyOf() throws {
        let other = Array(repeating: UInt8(0x77), count: 16)
        #expect(
            try violations(
                ReferenceValues(
                    measurements: [Self.measurement], familyIDs: [other, Self.identity.familyID],
                    imageIDs: [Self.identity.imageID])) == [])
        let found = try violations(
            ReferenceValues(measurements: [Self.measurement], familyIDs: [other], imageIDs: [other, other]))
        #expect(
            found == [
                PolicyViolation(
                    field: "FAMILY_ID", expected: Hex.encode(other), actual: Hex.encode(Self.identity.familyID)),
                PolicyViolation(
                    field: "IMAGE_ID", expected: "one of \(Hex.encode(other)), \(Hex.encode(other))",
                    actual: Hex.encode(Self.identity.imageID)),
            ])
        // An unsigned image has zero IDs: a role that names IDs refuses it.
        #expect(
            Self.fields(
                try violations(
                    ReferenceValues(measurements: [Self.measurement], familyIDs: [Self.identity.familyID]),
                    identity: nil)) == ["FAMILY_ID"])
    }

    @Test func productIsAnyOf() throws {
        #expect(try violations(ReferenceValues(measurements: [Self.measurement], products: [.genoa, .milan])) == [])
        #expect(
            try violations(ReferenceValues(measurements: [Self.measurement], products: [.genoa, .turin])) == [
                PolicyViolation(field: "PRODUCT", expected: "one of Genoa, Turin", actual: "Milan")
            ])
    }

    @Test func chipIDIsAnyOfForAVCEKSignedReport() throws {
        #expect(
            try violations(
                ReferenceValues(measurements: [Self.measurement], chipIDs: [Self.otherChip.chipID, Self.chip.chipID]))
                == [])
        #expect(
            try violations(ReferenceValues(measurements: [Self.measurement], chipIDs: [Self.otherChip.chipID])) == [
                PolicyViolation(
                    field: "CHIP_ID", expected: Hex.encode(Self.otherChip.chipID), actual: Hex.encode(Self.chip.chipID))
            ])
    }

    @Test func aVLEKSignedReportHasNoChipIdentity() throws {
        let report = try vlekReport()
        // Even the zero CHIP_ID it carries does not match a role naming zeros: a VLEK names no chip.
        let found = ReferenceValues(
            measurements: [Self.measurement], chipIDs: [Self.chip.chipID, report.chipID]
        ).violations(in: report, layout: .milanGenoa)
        #expect(Self.fields(found) == ["CHIP_ID"])
        #expect(found.first?.actual == "a report signed with the VLEK, which names no chip")
        #expect(ReferenceValues(measurements: [Self.measurement]).violations(in: report, layout: .milanGenoa) == [])
    }

    @Test func allowVLEKFalseRefusesAVLEKSignedReportOnly() throws {
        let reference = ReferenceValues(measurements: [Self.measurement], allowVLEK: false)
        #expect(
            reference.violations(in: try vlekReport(), layout: .milanGenoa) == [
                PolicyViolation(field: "SIGNER", expected: "VCEK (VLEK not allowed)", actual: "VLEK")
            ])
        #expect(try violations(reference) == [])
    }

    @Test func vmplIsExact() throws {
        #expect(try violations(ReferenceValues(measurements: [Self.measurement], vmpl: 1), vmpl: 1) == [])
        #expect(
            try violations(ReferenceValues(measurements: [Self.measurement], vmpl: 0), vmpl: 1) == [
                PolicyViolation(field: "VMPL", expected: "0", actual: "1")
            ])
    }

    @Test func provisionalFirmwareIsRefusedUnlessPermitted() throws {
        let chip = Self.provisional
        let found = try violations(ReferenceValues(measurements: [Self.measurement]), chip: chip)
        #expect(Self.fields(found) == ["COMMITTED_TCB"])
        #expect(found.first?.expected.hasPrefix("equal to CURRENT_TCB bl 4, tee 0, snp 24, ucode 220") == true)
        #expect(found.first?.actual.hasPrefix("bl 4, tee 0, snp 24, ucode 219") == true)
        #expect(
            try violations(
                ReferenceValues(measurements: [Self.measurement], permitProvisionalFirmware: true), chip: chip)
                == [])
        // Once committed, the same firmware is no longer provisional.
        #expect(
            try violations(ReferenceValues(measurements: [Self.measurement]), chip: chip.committingFirmware()) == [])
    }

    @Test func aCommittedFirmwareVersionBelowTheCurrentOneIsProvisional() throws {
        var report = try vlekReport()
        report.keyInfo = KeyInfo(signingKey: .vcek)
        report.committedVersion = FirmwareVersion(major: 1, minor: 55, build: 21)
        #expect(
            ReferenceValues(measurements: [Self.measurement]).violations(in: report, layout: .milanGenoa) == [
                PolicyViolation(
                    field: "COMMITTED_VERSION",
                    expected: "equal to the current firmware version 1.55.29: provisional firmware not permitted",
                    actual: "1.55.21")
            ])
        let permitted = ReferenceValues(measurements: [Self.measurement], permitProvisionalFirmware: true)
        #expect(permitted.violations(in: report, layout: .milanGenoa) == [])
        // Permitted means committed at most current: a COMMITTED_TCB above CURRENT_TCB is still refused.
        report.committedTCB = TCBVersion(
            TCBLevels(bootLoader: 4, tee: 0, snp: 25, microcode: 219), layout: .milanGenoa)
        #expect(Self.fields(permitted.violations(in: report, layout: .milanGenoa)) == ["COMMITTED_TCB"])
    }

    @Test func launchTCBIsAMinimumPerComponent() throws {
        let chip = Self.provisional
        #expect(
            try violations(
                ReferenceValues(
                    measurements: [Self.measurement], permitProvisionalFirmware: true,
                    minimumLaunchTCB: chip.currentTCBVersion), chip: chip) == [])
        let minimum = TCBVersion(TCBLevels(bootLoader: 4, tee: 0, snp: 25, microcode: 0), layout: .milanGenoa)
        let found = try violations(
            ReferenceValues(
                measurements: [Self.measurement], permitProvisionalFirmware: true, minimumLaunchTCB: minimum),
            chip: chip)
        #expect(Self.fields(found) == ["LAUNCH_TCB"])
        #expect(found.first?.expected == "at least bl 4, tee 0, snp 25, ucode 0 (\(minimum.hex))")
    }

    @Test func everyViolationIsListedAtOnce() throws {
        let other = Array(repeating: UInt8(0x77), count: 16)
        let found = try violations(
            ReferenceValues(
                measurements: [Self.measurement], familyIDs: [other], imageIDs: [other], products: [.turin],
                chipIDs: [Self.otherChip.chipID], vmpl: 2,
                minimumLaunchTCB: TCBVersion(
                    TCBLevels(bootLoader: 9, tee: 0, snp: 0, microcode: 0), layout: .milanGenoa)),
            chip: Self.provisional)
        #expect(
            Set(Self.fields(found)) == [
                "FAMILY_ID", "IMAGE_ID", "PRODUCT", "CHIP_ID", "VMPL", "COMMITTED_TCB", "LAUNCH_TCB",
            ])
    }
}
