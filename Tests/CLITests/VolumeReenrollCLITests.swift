import ArgumentParser
import Crypto
import Foundation
import SNP
import SNPEmulator
import Sealing
import Testing
import Volume

@testable import CLI

/// `vhsm volume reenroll` with genuine requests from an emulated chip, as a refused vhsm-init prints them.
@Suite struct VolumeReenrollCLITests {
    static let chip: ChipState = try! ChipState.create(product: .milan)
    static let measurement = Array(repeating: UInt8(0x5E), count: 48)
    /// The new launch's sealing key (in the guest it comes from MSG_KEY_REQ).
    static let sealingKey = Array(repeating: UInt8(0x42), count: 32)

    /// A console log of a refused boot of `measurement` on the test chip, asking for volume `subject`, with the
    /// challenge sealed to the workspace's recovery key; the emulator's ARK as a PEM file.
    struct Launch {
        var console: String
        var ark: String
        var requestKey: Curve25519.KeyAgreement.PrivateKey
        var subject: String
    }

    func launch(_ workspace: VolumeCLITests.Workspace, subject: String? = nil) throws -> Launch {
        let subject = subject ?? workspace.uuid
        let guest = try EmulatedGuest(
            chip: Self.chip,
            launch: LaunchContext(measurement: Self.measurement, policy: GuestPolicy(rawValue: 0x20000)))
        let requestKey = try ReenrollGrant.requestKey(sealingKey: Self.sealingKey, volumeUUID: subject)
        let request = try RecoveryRequest.make(
            device: guest, purpose: .volume, subject: subject, publicKey: requestKey.publicKey)
        let operatorKey = try RecoveryPrivateKey(
            pem: String(contentsOfFile: workspace.privateKeyPEM, encoding: .utf8))
        let challenge = try ReenrollGrant.challenge(sealingKey: Self.sealingKey, volumeUUID: subject).withUnsafeBytes {
            try SealedSecret.seal(
                Array($0), kind: .recoveryChallenge, context: "volume|\(subject)", to: operatorKey.recipient.hpke)
        }
        let console =
            "vhsm-init 0.1.0 as PID 1\r\nvhsm-init: recovery request for volume \(subject):\r\n"
            + request.armored.replacingOccurrences(of: "\n", with: "\r\n")
            + "vhsm-init: recovery challenge for volume \(subject):\n" + challenge.armored
            + "vhsm-init: volume failed: MEASUREMENT differs\nnext: …\n"
        let consolePath = workspace.path("console-\(UUID().uuidString).log")
        try console.write(toFile: consolePath, atomically: true, encoding: .utf8)
        let ark = workspace.path("ark.pem")
        try Self.chip.ark.pemRepresentation.write(toFile: ark, atomically: true, encoding: .utf8)
        return Launch(console: consolePath, ark: ark, requestKey: requestKey, subject: subject)
    }

    func command(
        _ workspace: VolumeCLITests.Workspace, _ launch: Launch, measurement: [UInt8] = measurement,
        trust: Bool = true
    ) throws -> VolumeReenroll {
        var arguments = [
            "volume", "reenroll", workspace.image, "--recovery-key", workspace.privateKeyPEM, "--request",
            launch.console, "--measurement", Hex.encode(measurement),
        ]
        if trust { arguments += ["--trust-emulator-root", launch.ark] }
        return try #require(try VHSM.parseAsRoot(arguments) as? VolumeReenroll)
    }

    func headerArea(_ workspace: VolumeCLITests.Workspace) throws -> Data {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: workspace.image))
        defer { try? handle.close() }
        return try handle.read(upToCount: 2 << 20) ?? Data()
    }

    @Test func parsesTheSurfaceAndRequiresTheMeasurement() throws {
        let parsed = try #require(
            try VHSM.parseAsRoot([
                "volume", "reenroll", "disk.img", "--recovery-key", "k.pem", "--request", "console.log",
                "--measurement", "aa", "--trust-emulator-root", "ark.pem", "--cert", "vcek.der", "--allow-debug",
                "--json",
            ]) as? VolumeReenroll)
        #expect(parsed.image == "disk.img" && parsed.request == "console.log" && parsed.trust.measurement == "aa")
        #expect(
            parsed.trust.trustEmulatorRoot == "ark.pem" && parsed.trust.cert == "vcek.der" && parsed.trust.allowDebug
                && parsed.json)
        // Without --measurement the key would go to whatever launch the host chose: a usage error (exit 2).
        #expect {
            try VHSM.parseAsRoot([
                "volume", "reenroll", "disk.img", "--recovery-key", "k.pem", "--request", "console.log",
            ])
        } throws: { error in
            VHSM.exitCode(for: error) == .validationFailure && VHSM.message(for: error).contains("--measurement")
        }
    }

    @Test func writesAGrantTheLaunchOpensAndThatValidates() async throws {
        let workspace = try VolumeCLITests.Workspace()
        let launch = try launch(workspace)
        try await command(workspace, launch).run()

        let header = try LUKSVolume(path: workspace.image).readHeader()
        let grant = try #require(header.reenrollGrant)
        #expect(grant.context == "volume|\(workspace.uuid)")
        // The guest side: the grant opens with the request key and answers the challenge with the recovery key.
        let secret = try grant.open(with: .x25519(launch.requestKey))
        let recoveryKey = try ReenrollGrant.recoveryKey(
            in: secret, challenge: ReenrollGrant.challenge(sealingKey: Self.sealingKey, volumeUUID: workspace.uuid),
            volumeUUID: workspace.uuid)
        let recovered = try LUKSVolume(path: workspace.image).recover(
            privateKey: try RecoveryPrivateKey(pem: String(contentsOfFile: workspace.privateKeyPEM, encoding: .utf8)))
        #expect(recoveryKey.key == recovered.key.key)
    }

    @Test func anotherMeasurementIsRefusedAndTheDiskIsUnchanged() async throws {
        let workspace = try VolumeCLITests.Workspace()
        let launch = try launch(workspace)
        let before = try headerArea(workspace)
        let command = try command(workspace, launch, measurement: Array(repeating: 0x11, count: 48))
        await #expect {
            try await command.run()
        } throws: { error in
            guard let error = error as? CLIError else { return false }
            return error.exitCode == 1 && error.description.contains("not the expected one")
                && error.description.contains(Hex.encode(Self.measurement))
        }
        #expect(try headerArea(workspace) == before)
    }

    @Test func aRequestForAnotherVolumeIsRefused() async throws {
        let workspace = try VolumeCLITests.Workspace()
        let launch = try launch(workspace, subject: "00000000-0000-4000-8000-000000000000")
        let before = try headerArea(workspace)
        let command = try command(workspace, launch)
        await #expect {
            try await command.run()
        } throws: { error in
            (error as? CLIError)?.exitCode == 1 && "\(error)".contains("made for another volume")
        }
        #expect(try headerArea(workspace) == before)
    }

    @Test func aRequestFromAnUntrustedRootIsRefused() async throws {
        let workspace = try VolumeCLITests.Workspace()
        let launch = try launch(workspace)
        let command = try command(workspace, launch, trust: false)
        await #expect {
            try await command.run()
        } throws: { error in
            (error as? CLIError)?.exitCode == 1 && "\(error)".contains("not genuine")
        }
        #expect(try LUKSVolume(path: workspace.image).readHeader().reenrollGrant == nil)
    }
}
