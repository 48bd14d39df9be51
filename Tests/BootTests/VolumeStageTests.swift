import SNP
import SNPEmulator
import Sealing
import Testing

@testable import Boot

@Suite struct VolumeStageTests {
    let uuid = "07070707-0707-4707-8707-070707070707"

    /// A first boot on a blank /dev/vda, then the volume closed again, as after a power-off.
    func enrolled(
        _ config: BootConfig = BootConfig(), guest: EmulatedGuest = TestLaunch.guest()
    ) throws -> InMemoryVolume {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        _ = try VolumeStage.make(volume, guest: guest, config: config).boot()
        try volume.deactivate(name: config.mapperName)
        return volume
    }

    @Test func aBlankVolumeIsFormattedEnrolledUnlockedAndGivenAFilesystem() throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let log = StageLog()
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log).run()
        #expect(
            result
                == .init(
                    device: "/dev/vda", mappedDevice: "/dev/mapper/vhsm", uuid: uuid, firstBoot: true, integrity: false,
                    provisioning: result.provisioning)
        )
        #expect(result.provisioning != nil)
        #expect(
            volume.calls == [
                "probe /dev/vda", "format /dev/vda", "validate /dev/vda", "verifyMAC /dev/vda", "unlock /dev/vda vhsm",
            ])
        #expect(log.filesystems == ["/dev/mapper/vhsm"])
        guard case .luks(_, let enrollment, _, _, let integrity)? = volume.devices["/dev/vda"] else {
            Issue.record("not formatted")
            return
        }
        #expect(enrollment.mode == .measurement)
        #expect(enrollment.guestFieldSelect == [.guestPolicy, .measurement, .tcbVersion])
        #expect(enrollment.measurement == TestLaunch.measurementA)
        #expect(enrollment.tcb == TestLaunch.chip.tcbVersion)
        #expect(!integrity)
        #expect(log.lines.contains { $0.contains("no recovery_key configured") })
    }

    @Test func theSameLaunchDerivesTheSameKeyAndUnlocksWithoutFormatting() throws {
        let volume = try enrolled()
        let log = StageLog()
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log).run()
        #expect(!result.firstBoot)
        #expect(result.uuid == uuid)
        #expect(!volume.calls.dropFirst(5).contains { $0.hasPrefix("format") })
        #expect(log.filesystems.isEmpty)
        // verifyMAC and unlock on the first boot, verifyMAC when it was marked ready, verifyMAC and unlock now.
        #expect(volume.keysTried.count == 5)
        #expect(Set(volume.keysTried).count == 1)
    }

    /// switch_root into the volume decides on this: the header's integrity, not the configuration's (which only
    /// formats new volumes).
    @Test func theResultReportsTheIntegrityTheHeaderHas() throws {
        var integrity = BootConfig()
        integrity.integrity = true
        let protected = try enrolled(integrity)
        #expect(try VolumeStage.make(protected, guest: TestLaunch.guest()).run().integrity)
        let plain = try enrolled()
        #expect(!(try VolumeStage.make(plain, guest: TestLaunch.guest(), config: integrity).run().integrity))
    }

    @Test func anotherMeasurementIsRefusedWithBothValuesBeforeAnyKeyIsTried() throws {
        let volume = try enrolled()
        let keysBefore = volume.keysTried.count
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest(measurement: TestLaunch.measurementB))
        let error = #expect(throws: BootError.self) { try stage.run() }
        #expect(error?.stage == .volume)
        #expect(error?.cause.contains("expected \(Hex.encode(TestLaunch.measurementA)) (token)") == true)
        #expect(error?.cause.contains("actual \(Hex.encode(TestLaunch.measurementB)) (report)") == true)
        #expect(volume.keysTried.count == keysBefore)
        #expect(volume.calls.last == "validate /dev/vda")
    }

    @Test func platformModeSurvivesAnImageChange() throws {
        var config = BootConfig()
        config.seal = .platform
        let volume = try enrolled(config)
        let result = try VolumeStage.make(
            volume, guest: TestLaunch.guest(measurement: TestLaunch.measurementB), config: config
        ).run()
        #expect(!result.firstBoot)
    }

    @Test func imageModeAcceptsAHigherSVNWithTheSameKeyAndRefusesARollback() throws {
        var config = BootConfig()
        config.seal = .image
        let volume = try enrolled(config, guest: TestLaunch.guest(identity: TestLaunch.identity(svn: 5)))
        let upgraded = TestLaunch.guest(measurement: TestLaunch.measurementB, identity: TestLaunch.identity(svn: 7))
        #expect(try VolumeStage.make(volume, guest: upgraded, config: config).run().firstBoot == false)
        try volume.deactivate(name: "vhsm")
        #expect(Set(volume.keysTried).count == 1)

        let rolledBack = TestLaunch.guest(identity: TestLaunch.identity(svn: 4))
        let stage = try VolumeStage.make(volume, guest: rolledBack, config: config)
        let error = #expect(throws: BootError.self) { try stage.run() }
        #expect(error?.cause == "GUEST_SVN 4 is below the enrolled 5 (rollback refused)")
    }

    @Test func imageModeRefusesAnotherImageID() throws {
        var config = BootConfig()
        config.seal = .image
        let volume = try enrolled(config, guest: TestLaunch.guest(identity: TestLaunch.identity(svn: 5)))
        let other = TestLaunch.guest(identity: TestLaunch.identity(svn: 5, imageID: 0x2F))
        let error = #expect(throws: BootError.self) { try VolumeStage.make(volume, guest: other, config: config).run() }
        #expect(error?.cause.contains("IMAGE_ID \(String(repeating: "1e", count: 16))") == true)
        #expect(error?.cause.contains("actual IMAGE_ID \(String(repeating: "2f", count: 16))") == true)
    }

    @Test func aTokenRewrittenToAWeakerModeFailsItsMAC() throws {
        let volume = try enrolled()
        volume.tamperEnrollment(of: "/dev/vda") {
            $0 = Enrollment(mode: .platform, guestFieldSelect: SealMode.platform.guestFieldSelect, tcb: $0.tcb)
        }
        var config = BootConfig()
        config.seal = .platform
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config)
        let error = #expect(throws: BootError.self) { try stage.run() }
        #expect(error?.cause.hasPrefix("the vhsm-snp token MAC does not verify on /dev/vda") == true)
        #expect(
            Array(volume.calls.dropFirst(9)) == [
                "probe /dev/vda", "unfinished /dev/vda", "validate /dev/vda", "verifyMAC /dev/vda",
            ])
    }

    @Test func aConfiguredModeOtherThanTheEnrolledOneIsRefused() throws {
        let volume = try enrolled()
        var config = BootConfig()
        config.seal = .image
        let error = #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config).run()
        }
        #expect(error?.cause == "seal mode differs: expected image (configuration), actual measurement (token)")
    }

    @Test func aForeignVolumeIsNeverFormatted() throws {
        let volume = InMemoryVolume(["/dev/vda": .foreign("an ext4 filesystem")])
        let error = #expect(throws: BootError.self) { try VolumeStage.make(volume, guest: TestLaunch.guest()).run() }
        #expect(error?.cause.hasPrefix("/dev/vda holds an ext4 filesystem, not a vhsm LUKS2 volume") == true)
        #expect(volume.calls == ["probe /dev/vda"])
    }

    @Test func aFailedFormatIsReportedAndNotRetried() throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        volume.formatFailure = "Cannot format device /dev/vda: No space left on device"
        let error = #expect(throws: BootError.self) { try VolumeStage.make(volume, guest: TestLaunch.guest()).run() }
        #expect(error?.cause == "formatting /dev/vda failed: Cannot format device /dev/vda: No space left on device")
        #expect(volume.calls == ["probe /dev/vda", "format /dev/vda"])
    }

    @Test func aRecoveryKeyGetsItsBlobPrintedOnce() throws {
        var config = BootConfig()
        config.recoveryKeyPEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let log = StageLog()
        _ = try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config, log: log).run()
        #expect(log.lines.filter { $0 == "-----BEGIN VHSM RECOVERY-----" }.count == 1)
    }

    @Test func uuidSelectsTheDeviceHoldingThatLUKSHeader() throws {
        let enrolledVolume = try enrolled()
        let volume = InMemoryVolume(["/dev/vda": .foreign("swap"), "/dev/vdb": enrolledVolume.devices["/dev/vda"]!])
        var config = BootConfig()
        config.volume = "UUID=\(uuid.uppercased())"
        let result = try VolumeStage.make(
            volume, guest: TestLaunch.guest(), config: config, candidates: ["/dev/vda", "/dev/vdb"]
        ).run()
        #expect(result.device == "/dev/vdb")

        config.volume = "UUID=00000000-0000-4000-8000-000000000000"
        let error = #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config, candidates: ["/dev/vda"]).run()
        }
        #expect(error?.cause.contains("looked at: /dev/vda") == true)
    }
}
