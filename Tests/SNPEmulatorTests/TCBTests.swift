import Foundation
import SNP
import Testing

@testable import SNPEmulator

/// REPORTED_TCB, COMMITTED_TCB and CURRENT_TCB kept apart as on hardware: the host lowers REPORTED_TCB at will,
/// CURRENT_TCB runs ahead of COMMITTED_TCB until an update is committed, and MSG_KEY_REQ may pin any TCB up to
/// COMMITTED_TCB.
@Suite struct TCBTests {
    static let committed = TCBLevels(bootLoader: 4, tee: 0, snp: 24, microcode: 219)
    static let current = TCBLevels(bootLoader: 4, tee: 0, snp: 26, microcode: 220)
    static let reported = TCBLevels(bootLoader: 2, tee: 0, snp: 18, microcode: 200)

    static let chip = TestChips.chip(.milan, secret: 9, tcb: committed, current: current, reported: reported)

    func version(_ levels: TCBLevels) -> TCBVersion { TCBVersion(levels, layout: .milanGenoa) }

    @Test func theReportCarriesEachTCBAndIsSignedByTheReportedTCBsVCEK() throws {
        let guest = TestChips.guest(Self.chip)
        let report = try guest.attestationReport(ReportRequest())
        #expect(report.reportedTCB == version(Self.reported))
        #expect(report.committedTCB == version(Self.committed))
        #expect(report.currentTCB == version(Self.current))
        #expect(report.launchTCB == version(Self.current))

        let table = try guest.certificateTable()
        let vcek = try AMDCertificate(derEncoded: try #require(table[.vcek]))
        #expect(vcek.tcbLevels == Self.reported)
        let verified = try ReportVerifier.amd.trusting(Self.chip.ark).verify(
            report, endorsement: vcek, candidates: [Self.chip.ask, Self.chip.ark], at: Date())
        #expect(verified.product == .milan)
        // The VCEK of COMMITTED_TCB did not sign it: its SPLs differ from REPORTED_TCB.
        #expect(throws: VerificationFailure.self) {
            try ReportVerifier.amd.trusting(Self.chip.ark).verify(
                report, endorsement: try Self.chip.mintVCEK(for: Self.committed), candidates: [Self.chip.ask],
                at: Date())
        }
    }

    @Test func keysMayBePinnedUpToCommittedTCBOnlyWhateverTheHostReports() throws {
        func pinned(_ levels: TCBLevels) -> DerivedKeyRequest {
            DerivedKeyRequest(root: .vcek, guestFieldSelect: [.guestPolicy, .tcbVersion], tcbVersion: version(levels))
        }
        let guest = TestChips.guest(Self.chip)
        #expect(guest.derivedKey(pinned(Self.committed)).status == .success)
        #expect(guest.derivedKey(pinned(Self.reported)).status == .success)
        // CURRENT_TCB is above COMMITTED_TCB: the firmware refuses it.
        #expect(guest.derivedKey(pinned(Self.current)).status == .invalidParam)

        // The key pinned at COMMITTED_TCB does not depend on what the host reports or on an uncommitted update.
        let plain = TestChips.chip(.milan, secret: 9, tcb: Self.committed)
        #expect(
            try guest.derivedKeyBytes(pinned(Self.committed))
                == TestChips.guest(plain).derivedKeyBytes(pinned(Self.committed)))
        let lowered = try plain.settingReportedTCB(Self.reported)
        #expect(
            try TestChips.guest(lowered).derivedKeyBytes(pinned(Self.committed))
                == TestChips.guest(plain).derivedKeyBytes(pinned(Self.committed)))
        // After the update is committed the old pin still derives the same key, and the new TCB can be pinned.
        let updated = try plain.updatingFirmware(to: Self.current).committingFirmware()
        #expect(
            try TestChips.guest(updated).derivedKeyBytes(pinned(Self.committed))
                == TestChips.guest(plain).derivedKeyBytes(pinned(Self.committed)))
        #expect(TestChips.guest(updated).derivedKey(pinned(Self.current)).status == .success)
    }

    @Test func theFirmwareKeepsCurrentTCBAtOrAboveTheOthers() throws {
        var above = Self.current
        above.snp += 1
        #expect(throws: EmulatorError.self) { try Self.chip.settingReportedTCB(above) }
        var below = Self.committed
        below.microcode -= 1
        #expect(throws: EmulatorError.self) { try Self.chip.updatingFirmware(to: below) }
        #expect(try Self.chip.settingReportedTCB(Self.current).reportedTCB == Self.current)
    }

    @Test func aStoreKeepsTheThreeTCBs() throws {
        let directory = NSTemporaryDirectory() + "vhsm-chip-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ChipStore(directory: directory)
        try store.create(Self.chip)
        let loaded = try store.load()
        #expect(loaded.tcb == Self.committed)
        #expect(loaded.currentTCB == Self.current)
        #expect(loaded.reportedTCB == Self.reported)
    }
}
