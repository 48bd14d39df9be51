import Crypto
import SNP
import SNPEmulator
import Sealing
import Testing
import Volume

@testable import Boot

/// Moving a volume to a new launch: a refused launch prints a genuine request and a challenge only the operator
/// opens; the operator's grant for that launch re-enrolls it; nothing else does.
@Suite struct ReenrollStageTests {
    let uuid = "07070707-0707-4707-8707-070707070707"
    static let operatorKey = P384.KeyAgreement.PrivateKey()
    static let measurementC = Array(repeating: UInt8(0xC3), count: 48)

    var config: BootConfig {
        var config = BootConfig()
        config.recoveryKeyPEM = Self.operatorKey.publicKey.pemRepresentation
        return config
    }

    /// Formatted and enrolled on launch A (with a recovery keyslot), then closed.
    func enrolled() throws -> InMemoryVolume {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        _ = try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config).boot()
        try volume.deactivate(name: config.mapperName)
        return volume
    }

    /// A boot of `guest` that is refused; returns the error and the console.
    func refusedBoot(_ volume: InMemoryVolume, _ guest: EmulatedGuest) throws -> (BootError?, String) {
        let log = StageLog()
        let stage = try VolumeStage.make(volume, guest: guest, config: config, log: log)
        let error = #expect(throws: BootError.self) { try stage.run() }
        return (error, log.lines.joined(separator: "\n"))
    }

    /// What `vhsm volume reenroll` does with the console log, minus the disk: the checked request, the challenge
    /// opened with the operator's key, and `secret` (default: the volume's recovery key) with it, sealed to the
    /// request's key.
    func operatorGrant(
        _ console: String, measurement: [UInt8], recoveryKey: [UInt8]? = nil, volume: InMemoryVolume
    ) throws -> SealedSecret {
        let request = try RecoveryRequest.parse(armored: console)
        #expect(request.purpose == .volume && request.subject == uuid)
        _ = try request.verify(verifier: ReportVerifier.amd.trusting(TestLaunch.chip.ark), measurement: measurement)
        let challenge = try SealedSecret.parse(armored: console, kind: .recoveryChallenge)
        #expect(challenge.context == "volume|\(uuid)")
        let answer = try challenge.open(with: .p384(Self.operatorKey))
        let key = recoveryKey ?? volume.recoveryKeys["/dev/vda"]!
        return try request.grant(key + answer)
    }

    @Test func aRefusedLaunchPrintsARequestWhoseReportDataBindsItsKeyAndChangesNothing() throws {
        let volume = try enrolled()
        let before = volume.devices
        let (error, console) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        #expect(error?.cause.contains("MEASUREMENT differs from the enrolled one") == true)
        #expect(
            error?.next.contains(
                "vhsm volume reenroll DISK --recovery-key KEY --request CONSOLE_LOG --measurement "
                    + Hex.encode(TestLaunch.measurementB)) == true)
        let lines = console.split(separator: "\n").map(String.init)
        #expect(lines.contains("-----BEGIN VHSM RECOVERY REQUEST-----"))
        #expect(lines.contains("-----END VHSM RECOVERY REQUEST-----"))
        #expect(lines.contains("-----BEGIN VHSM RECOVERY CHALLENGE-----"))
        #expect(lines.contains { $0.hasPrefix("vhsm-init: recovery request for volume \(uuid)") })

        let request = try RecoveryRequest.parse(armored: console)
        #expect(request.report.measurement == TestLaunch.measurementB)
        #expect(
            request.report.reportData
                == RecoveryRequest.reportData(purpose: .volume, subject: uuid, publicKey: request.publicKey))
        let verified = try request.verify(
            verifier: ReportVerifier.amd.trusting(TestLaunch.chip.ark), measurement: TestLaunch.measurementB)
        #expect(verified.report.chipID == TestLaunch.chip.chipID)
        // The request key is the one the next boot of this launch derives: same key on every boot.
        let (_, again) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        #expect(
            try RecoveryRequest.parse(armored: again).publicKey.rawRepresentation == request.publicKey.rawRepresentation
        )
        // The challenge opens only with the operator's key.
        let challenge = try SealedSecret.parse(armored: console, kind: .recoveryChallenge)
        #expect(try challenge.open(with: .p384(Self.operatorKey)).count == 32)
        #expect(throws: SealingError.self) { try challenge.open(with: .p384(P384.KeyAgreement.PrivateKey())) }

        #expect(volume.devices == before)
        #expect(!volume.calls.contains { $0.hasPrefix("reenroll") || $0.hasPrefix("removeReenrollGrant") })
    }

    @Test func theOperatorsGrantForThisLaunchReenrollsAndUnlocks() throws {
        let volume = try enrolled()
        let launchB = TestLaunch.guest(measurement: TestLaunch.measurementB)
        let (_, console) = try refusedBoot(volume, launchB)
        volume.grants["/dev/vda"] = try operatorGrant(console, measurement: TestLaunch.measurementB, volume: volume)

        let log = StageLog()
        let result = try VolumeStage.make(
            volume, guest: TestLaunch.guest(measurement: TestLaunch.measurementB), config: config, log: log
        ).run()
        #expect(result.reenrolled && !result.firstBoot && result.mappedDevice == "/dev/mapper/vhsm")
        #expect(
            log.lines.contains {
                $0.hasPrefix(
                    "vhsm-init: /dev/vda re-enrolled with the operator's recovery grant: seal measurement, TCB "
                        + "\(TestLaunch.chip.tcbVersion.hex) (COMMITTED_TCB), keyslot 2")
            })
        #expect(volume.grants["/dev/vda"] == nil)
        guard case .luks(_, let enrollment, _, _, _)? = volume.devices["/dev/vda"] else {
            Issue.record("no longer a volume")
            return
        }
        #expect(enrollment.measurement == TestLaunch.measurementB)
        #expect(
            Array(volume.calls.suffix(5)) == [
                "reenroll /dev/vda", "removeReenrollGrant /dev/vda", "validate /dev/vda", "verifyMAC /dev/vda",
                "unlock /dev/vda vhsm",
            ])
        try volume.deactivate(name: "vhsm")

        // From now on launch B unlocks normally, and launch A is the one refused.
        let normal = try VolumeStage.make(
            volume, guest: TestLaunch.guest(measurement: TestLaunch.measurementB), config: config
        ).run()
        #expect(!normal.reenrolled)
        try volume.deactivate(name: "vhsm")
        let (error, _) = try refusedBoot(volume, TestLaunch.guest())
        #expect(error?.cause.contains("actual \(Hex.encode(TestLaunch.measurementA)) (report)") == true)
    }

    @Test func aGrantForAnotherLaunchIsRefusedWithBothKeysAndANewRequest() throws {
        let volume = try enrolled()
        let (_, consoleB) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        let grant = try operatorGrant(consoleB, measurement: TestLaunch.measurementB, volume: volume)
        volume.grants["/dev/vda"] = grant
        let before = volume.devices

        let (error, consoleC) = try refusedBoot(volume, TestLaunch.guest(measurement: Self.measurementC))
        let requestC = try RecoveryRequest.parse(armored: consoleC)
        let expected = Hex.encode(grant.recipientFingerprint)
        let actual = Hex.encode(HPKEPublicKey.x25519(requestC.publicKey).fingerprint)
        #expect(expected != actual)
        #expect(error?.cause.contains("is not for this launch") == true)
        #expect(error?.cause.contains("sealed to key \(expected)") == true)
        #expect(error?.cause.contains("not to \(actual)") == true)
        #expect(error?.next.hasPrefix("make a new grant from the request printed above: vhsm volume reenroll") == true)
        #expect(volume.devices == before)
        #expect(volume.grants["/dev/vda"] == grant)
        #expect(!volume.calls.contains { $0.hasPrefix("reenroll") })
    }

    @Test func aGrantWithAnotherRecoveryKeyIsRefusedByTheKeyslot() throws {
        let volume = try enrolled()
        let (_, console) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        volume.grants["/dev/vda"] = try operatorGrant(
            console, measurement: TestLaunch.measurementB, recoveryKey: Array(repeating: 0x11, count: 32),
            volume: volume)
        let before = volume.devices
        let (error, _) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        #expect(error?.cause.hasPrefix("re-enrolling /dev/vda with the operator's recovery grant failed") == true)
        #expect(volume.devices == before)
        #expect(volume.calls.last == "reenroll /dev/vda")
    }

    /// The host sees the request's public key and can seal anything to it, such as the recovery key of a header
    /// it made itself (whose volume key it knows). Without the operator's answer to the challenge, nothing is
    /// enrolled.
    @Test func aGrantTheHostSealedItselfIsRefusedBeforeAnyKeyslotIsTried() throws {
        let volume = try enrolled()
        let (_, console) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        let request = try RecoveryRequest.parse(armored: console)
        volume.grants["/dev/vda"] = try request.grant(volume.recoveryKeys["/dev/vda"]! + Array(repeating: 0, count: 32))
        let before = volume.devices
        let (error, _) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        #expect(error?.cause.contains("does not answer this launch's challenge") == true)
        #expect(volume.devices == before)
        #expect(!volume.calls.contains { $0.hasPrefix("reenroll") })
    }

    @Test func aVolumeWithoutRecoveryKeyslotPrintsNoRequest() throws {
        let volume = InMemoryVolume(["/dev/vda": .blank])
        _ = try VolumeStage.make(volume, guest: TestLaunch.guest()).boot()
        try volume.deactivate(name: "vhsm")
        let (error, console) = try refusedBoot(volume, TestLaunch.guest(measurement: TestLaunch.measurementB))
        #expect(error?.cause.contains("MEASUREMENT differs") == true)
        #expect(console.contains("has no vhsm-recovery token: it cannot be moved to this launch"))
        #expect(!console.contains("VHSM RECOVERY REQUEST"))
    }

    @Test func aMACThatDoesNotVerifyAlsoPrintsARequest() throws {
        let volume = try enrolled()
        // Another chip: same enrollment values, another sealing key.
        let otherChip = try ChipState.create(product: .milan)
        let (error, console) = try refusedBoot(volume, TestLaunch.guest(chip: otherChip))
        #expect(error?.cause.hasPrefix("the vhsm-snp token MAC does not verify on /dev/vda") == true)
        #expect(error?.next.contains("vhsm volume reenroll DISK") == true)
        let request = try RecoveryRequest.parse(armored: console)
        #expect(request.report.chipID == otherChip.chipID)
    }

    @Test func aNormalBootRemovesTheGrantAnInterruptedReenrollmentLeft() throws {
        let volume = try enrolled()
        // The grant launch A's own request key would get: what is left when the boot stopped after the keyslot
        // moved and before the token was removed.
        let enrollment = try Enrollment(
            firstBoot: .measurement, report: try Attestation(device: TestLaunch.guest()).report(),
            requirements: BootConfig().sealing)
        let key = try Attestation(device: TestLaunch.guest()).sealingKey(for: enrollment)
        let requestKey = try ReenrollGrant.requestKey(sealingKey: key, volumeUUID: uuid)
        volume.grants["/dev/vda"] = try SealedSecret.seal(
            Array(repeating: 1, count: 64), kind: .recoveryGrant, context: "volume|\(uuid)",
            to: .x25519(requestKey.publicKey))
        let log = StageLog()
        let result = try VolumeStage.make(volume, guest: TestLaunch.guest(), config: config, log: log).run()
        #expect(!result.reenrolled)
        #expect(volume.grants["/dev/vda"] == nil)
        #expect(log.lines.contains { $0.hasPrefix("vhsm-init: removed the recovery grant an interrupted") })
    }
}
