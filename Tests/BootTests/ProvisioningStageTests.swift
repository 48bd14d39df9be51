import SNP
import SNPEmulator
import Sealing
import Testing

@testable import Boot

/// A first boot cut by a power failure at each point, then booted again (issue 16): the stage resumes a volume
/// whose authenticated token says provisioning, formats again its own token-less header whose provisioning mark
/// verifies, refuses everything else, and never formats a volume that reached ready.
@Suite struct ProvisioningStageTests {
    let uuid = "07070707-0707-4707-8707-070707070707"

    /// A first boot on a blank /dev/vda cut at `cut`; the mapping is gone as after a power cut.
    func cutFirstBoot(_ cut: InMemoryVolume.Cut, config: BootConfig = BootConfig()) throws -> InMemoryVolume {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        volume.cut = cut
        #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config).run()
        }
        return volume
    }

    @Test func aFirstBootStaysProvisioningUntilMarkedReadyThenUnlocksWithoutAFilesystem() throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let log = StageLog()
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log)
        let result = try stage.run()
        #expect(result.provisioning != nil)
        #expect(volume.provisioning == ["/dev/vda"])
        try stage.markReady(result)
        #expect(volume.provisioning.isEmpty)
        #expect(volume.calls.suffix(3) == ["validate /dev/vda", "markReady /dev/vda", "verifyMAC /dev/vda"])
        #expect(log.lines.last?.contains("is ready") == true)
        try volume.deactivate(name: "vhsm")

        let before = volume.calls.count
        let again = StageLog()
        let next = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: again).run()
        #expect(next.provisioning == nil && !next.firstBoot)
        #expect(again.filesystems.isEmpty)
        // markReady of a ready volume's result does nothing.
        try VolumeStage.make(volume, guest: TestLaunch.guest(), log: again).markReady(next)
        #expect(
            Array(volume.calls.dropFirst(before)) == [
                "probe /dev/vda", "unfinished /dev/vda", "validate /dev/vda", "verifyMAC /dev/vda",
                "unlock /dev/vda vhsm",
            ])
    }

    @Test(arguments: [InMemoryVolume.Cut.afterHeader, .afterKeyslot])
    func itsOwnTokenlessHeaderIsFormattedAgainWithTheSameUUID(cut: InMemoryVolume.Cut) throws {
        let volume = try cutFirstBoot(cut)
        guard case .unfinished(let found, let markKey)? = volume.devices["/dev/vda"] else {
            Issue.record("the cut did not leave a token-less header")
            return
        }
        #expect(found == uuid && markKey != nil)
        let before = volume.calls.count
        let log = StageLog()
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log).run()
        #expect(result.uuid == uuid && result.firstBoot && result.provisioning != nil)
        #expect(
            Array(volume.calls.dropFirst(before)) == [
                "probe /dev/vda", "unfinished /dev/vda", "verifyUnfinished /dev/vda", "format /dev/vda replacing",
                "validate /dev/vda", "verifyMAC /dev/vda", "unlock /dev/vda vhsm",
            ])
        #expect(volume.provisioning == ["/dev/vda"])
        #expect(log.lines.contains { $0.contains("own unfinished first boot") && $0.contains("formatting it again") })
        #expect(log.filesystems == ["/dev/mapper/vhsm"])
    }

    @Test func aProvisioningTokenIsResumedWithANewFilesystemAndNoFormat() throws {
        let volume = try cutFirstBoot(.afterToken)
        #expect(volume.provisioning == ["/dev/vda"])
        let before = volume.calls.count
        let log = StageLog()
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log).run()
        #expect(result.provisioning != nil && result.firstBoot)
        #expect(!volume.calls.dropFirst(before).contains { $0.hasPrefix("format") })
        #expect(log.filesystems == ["/dev/mapper/vhsm"])
        #expect(log.lines.contains { $0.contains("resuming provisioning") })
    }

    @Test func aResumedIntegrityVolumeIsWipedAgainBeforeItsFilesystem() throws {
        var config = BootConfig()
        config.integrity = true
        let volume = try cutFirstBoot(.afterToken, config: config)
        let before = volume.calls.count
        _ = try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config).run()
        let calls = Array(volume.calls.dropFirst(before))
        let wipe = try #require(calls.firstIndex(of: "initializeIntegrity /dev/vda"))
        let unlock = try #require(calls.firstIndex(of: "unlock /dev/vda vhsm"))
        #expect(wipe < unlock)
    }

    @Test func anotherChipsProvisioningMarkIsRefusedAndNeverFormatted() throws {
        let volume = try cutFirstBoot(.afterKeyslot)
        let other = try ChipState.create(product: .milan)
        let error = #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(chip: other)).run()
        }
        #expect(error?.cause.contains("not this launch's own unfinished first boot") == true)
        #expect(error?.next.contains("dd if=/dev/zero") == true)
        #expect(!volume.calls.contains { $0.hasPrefix("format /dev/vda replacing") })
        guard case .unfinished(let found, _)? = volume.devices["/dev/vda"] else {
            Issue.record("the header was changed")
            return
        }
        #expect(found == uuid)
    }

    @Test func aTokenlessHeaderWithoutAMarkIsRefusedWithTheBlankingCommand() throws {
        let volume = InMemoryVolume(["/dev/vda": .unfinished(uuid: uuid, markKey: nil)])
        let error = #expect(throws: BootError.self) { try VolumeStage.make(volume, guest: TestLaunch.guest()).run() }
        #expect(error?.cause.contains("without a vhsm-snp token or provisioning mark") == true)
        #expect(error?.next.contains("dd if=/dev/zero of=DISK") == true)
        #expect(volume.calls == ["probe /dev/vda", "unfinished /dev/vda"])
    }

    @Test func anotherChipsProvisioningTokenIsRefusedNotResumed() throws {
        let volume = try cutFirstBoot(.afterToken)
        let before = volume.calls.count
        let other = try ChipState.create(product: .milan)
        let log = StageLog()
        #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(chip: other), log: log).run()
        }
        #expect(!volume.calls.dropFirst(before).contains { $0.hasPrefix("format") || $0.hasPrefix("unlock") })
        #expect(log.filesystems.isEmpty)
        #expect(volume.provisioning == ["/dev/vda"])
    }

    @Test func aReadyVolumeIsNeverFormattedNorGivenAFilesystemOnAnyChip() throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        let stage = try VolumeStage.make(volume, guest: TestLaunch.guest())
        try stage.markReady(try stage.run())
        try volume.deactivate(name: "vhsm")
        let before = volume.calls.count
        let other = try ChipState.create(product: .milan)
        let log = StageLog()
        #expect(throws: BootError.self) {
            try VolumeStage.make(volume, guest: TestLaunch.guest(chip: other), log: log).run()
        }
        let same = try VolumeStage.make(volume, guest: TestLaunch.guest(), log: log).run()
        #expect(!same.firstBoot && same.provisioning == nil)
        #expect(!volume.calls.dropFirst(before).contains { $0.hasPrefix("format") || $0.hasPrefix("verifyUnfinished") })
        #expect(log.filesystems.isEmpty)
    }
}
