import SNP
import SNPEmulator
import Sealing
import Testing

@testable import Boot

/// What vhsm-init's volume stage pins and refuses, on the emulated firmware with REPORTED_TCB, COMMITTED_TCB and
/// CURRENT_TCB set apart the way a host can set them.
@Suite struct SealingPolicyTests {
    /// TestLaunch's chip (COMMITTED_TCB = CURRENT_TCB = REPORTED_TCB = bl 4, tee 0, snp 24, ucode 219) after the
    /// host loaded newer firmware without committing it and lowered REPORTED_TCB below COMMITTED_TCB.
    static let hostLowered: ChipState = {
        var current = TestLaunch.chip.tcb
        current.snp += 2
        current.microcode += 1
        var reported = TestLaunch.chip.tcb
        reported.snp -= 6
        reported.bootLoader -= 2
        return try! TestLaunch.chip.updatingFirmware(to: current).settingReportedTCB(reported)
    }()

    func enroll(_ config: BootConfig, guest: EmulatedGuest, log: StageLog = StageLog()) throws -> InMemoryVolume {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        _ = try VolumeStage.make(volume, guest: guest, config: config, log: log).boot()
        try volume.deactivate(name: config.mapperName)
        return volume
    }

    func enrollment(_ volume: InMemoryVolume) -> Enrollment? {
        guard case .luks(_, let enrollment, _, _, _)? = volume.devices["/dev/vda"] else { return nil }
        return enrollment
    }

    @Test func aHostLoweredReportedTCBDoesNotLowerThePin() throws {
        let guest = TestLaunch.guest(chip: Self.hostLowered)
        let report = try guest.attestationReport(ReportRequest())
        #expect(report.reportedTCB == Self.hostLowered.reportedTCBVersion)
        #expect(report.committedTCB == TestLaunch.chip.tcbVersion)
        #expect(report.currentTCB == Self.hostLowered.currentTCBVersion)
        #expect(Set([report.reportedTCB, report.committedTCB, report.currentTCB]).count == 3)

        let lowered = try enroll(BootConfig(), guest: guest)
        #expect(enrollment(lowered)?.tcb == TestLaunch.chip.tcbVersion)
        // The same launch on the honest host (REPORTED = CURRENT = COMMITTED) pins the same TCB: one key.
        let honest = try enroll(BootConfig(), guest: TestLaunch.guest())
        #expect(enrollment(honest)?.tcb == enrollment(lowered)?.tcb)
        #expect(lowered.keysTried.first == honest.keysTried.first)
        // And the volume enrolled under the lowered REPORTED_TCB opens on the honest host, and back.
        _ = try VolumeStage.make(lowered, guest: TestLaunch.guest()).run()
        try lowered.deactivate(name: "vhsm")
        _ = try VolumeStage.make(lowered, guest: TestLaunch.guest(chip: Self.hostLowered)).run()
    }

    @Test func aCommittedUpdateKeepsThePinnedKey() throws {
        let volume = try enroll(BootConfig(), guest: TestLaunch.guest())
        let committed = Self.hostLowered.committingFirmware()
        #expect(committed.tcb == Self.hostLowered.currentTCB)
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(chip: committed)).run()
        #expect(!result.firstBoot)
        #expect(Set(volume.keysTried).count == 1)
    }

    @Test func aMinimumAboveCommittedTCBRefusesToEnrollAndFormatsNothing() throws {
        var config = BootConfig()
        var minimum = TestLaunch.chip.tcb
        minimum.snp += 1  // CURRENT_TCB (hostLowered) meets it, COMMITTED_TCB does not
        config.minimumTCB = TCBVersion(minimum, layout: .milanGenoa)
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest(chip: Self.hostLowered), config: config)
        let error = #expect(throws: BootError.self) { try stage.run() }
        #expect(error?.stage == .attest)
        #expect(error?.cause.contains("COMMITTED_TCB: expected at least bl 4, tee 0, snp 25, ucode 219") == true)
        #expect(volume.devices["/dev/vda"] == .blank)
        #expect(volume.calls.isEmpty)

        // At the minimum it enrolls, pinning COMMITTED_TCB.
        config.minimumTCB = TestLaunch.chip.tcbVersion
        #expect(
            try enrollment(enroll(config, guest: TestLaunch.guest(chip: Self.hostLowered)))?.tcb == config.minimumTCB)
    }

    @Test func aMinimumRaisedLaterRefusesToUnlockBeforeAnyKeyIsTried() throws {
        let volume = try enroll(BootConfig(seal: .platform), guest: TestLaunch.guest())
        var config = BootConfig(seal: .platform)
        var minimum = TestLaunch.chip.tcb
        minimum.microcode += 1
        config.minimumTCB = TCBVersion(minimum, layout: .milanGenoa)
        let keys = volume.keysTried.count
        let error = #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config).run()
        }
        #expect(error?.cause.contains("COMMITTED_TCB") == true)
        #expect(volume.keysTried.count == keys)
    }

    @Test(arguments: [
        (GuestPolicy(rawValue: 0xA0000), "debug"), (GuestPolicy(rawValue: 0x60000), "migration-agent"),
        (GuestPolicy(rawValue: 0x30000), "smt"),
    ])
    func aForbiddenPolicyIsRefusedAtEnrollment(policy: GuestPolicy, name: String) throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest(policy: policy))
        let error = #expect(throws: BootError.self) { try stage.run() }
        #expect(error?.stage == .attest)
        #expect(
            error?.cause.contains(
                "POLICY: expected \(name) not allowed, got 0x\(String(policy.rawValue, radix: 16)) allows \(name)")
                == true)
        #expect(volume.devices["/dev/vda"] == .blank)
    }

    @Test func smtIsAcceptedOnlyWhenTheConfigurationAllowsIt() throws {
        var config = BootConfig()
        config.allowSMT = true
        let smt = GuestPolicy(rawValue: 0x30000)
        let volume = try enroll(config, guest: TestLaunch.guest(policy: smt))
        #expect(enrollment(volume)?.mode == .measurement)
        // Debug stays refused with allow_smt.
        let debug = InMemoryVolume(["/dev/vda": .blank])
        #expect(throws: BootError.self) {
            try VolumeStage.make(debug, guest: TestLaunch.guest(policy: GuestPolicy(rawValue: 0xB0000)), config: config)
                .run()
        }
        // The same SMT launch is refused at unlock once the configuration stops allowing it.
        let keys = volume.keysTried.count
        let error = #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(policy: smt)).run()
        }
        #expect(error?.cause.contains("allows smt") == true)
        #expect(volume.keysTried.count == keys)
    }

    @Test func enrollingInPlatformModeWarnsThatNoImageIsBound() throws {
        let log = StageLog()
        _ = try enroll(BootConfig(seal: .platform), guest: TestLaunch.guest(), log: log)
        #expect(log.lines.contains(VolumeStage<InMemoryVolume>.platformWarning))
        #expect(VolumeStage<InMemoryVolume>.platformWarning.contains("binds no image"))
        let quiet = StageLog()
        _ = try enroll(BootConfig(), guest: TestLaunch.guest(), log: quiet)
        #expect(!quiet.lines.contains { $0.contains("binds no image") })
    }
}

extension BootConfig {
    init(seal: SealMode) {
        self.init()
        self.seal = seal
    }
}
