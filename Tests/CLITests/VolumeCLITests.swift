// Belongs in Tests/CLITests (whose target then also needs the "Volume" dependency).
import ArgumentParser
import Crypto
import Foundation
import Sealing
import Testing

@testable import CLI
@testable import Volume

@Suite struct VolumeCLITests {
    /// A formatted 32 MiB image and the PEM files of its P-384 recovery key pair, in a temporary directory.
    final class Workspace {
        let directory: URL
        let image: String
        let privateKeyPEM: String
        let blob: String
        let uuid = "6a1e7c2d-3b4f-4a5e-8f60-718293a4b5c6"

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsm-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            image = directory.appendingPathComponent("volume.img").path
            guard FileManager.default.createFile(atPath: image, contents: nil) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
            try handle.truncate(atOffset: 32 << 20)
            try handle.close()
            let recovery = P384.KeyAgreement.PrivateKey()
            privateKeyPEM = directory.appendingPathComponent("recovery.pem").path
            try recovery.pemRepresentation.write(toFile: privateKeyPEM, atomically: true, encoding: .utf8)
            let keys = VolumeKeys.derive(
                sealingKey: [UInt8](repeating: 7, count: 32), volumeUUID: uuid, mode: .platform)
            let result = try LUKSVolume(path: image).format(
                .init(
                    uuid: uuid,
                    binding: SNPBinding(mode: .platform, guestFieldSelect: 33, tcb: [UInt8](repeating: 0, count: 8)),
                    recoveryRecipient: .p384(recovery.publicKey)),
                keys: keys)
            blob = directory.appendingPathComponent("recovery.txt").path
            try (result.recoveryBlob ?? "").write(toFile: blob, atomically: true, encoding: .utf8)
        }

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test func parsesTheVolumeSurface() throws {
        let inspect = try #require(try VHSM.parseAsRoot(["volume", "inspect", "disk.img", "--json"]) as? VolumeInspect)
        #expect(inspect.image == "disk.img" && inspect.json)
        let recover = try #require(
            try VHSM.parseAsRoot([
                "volume", "recover", "disk.img", "--recovery-key", "k.pem", "--blob", "b.txt", "--passphrase-out", "p",
            ]) as? VolumeRecover)
        #expect(recover.recoveryKey == "k.pem" && recover.blob == "b.txt" && recover.passphraseOut == "p")
        #expect(throws: (any Error).self) { try VHSM.parseAsRoot(["volume", "recover", "disk.img"]) }
    }

    @Test func inspectDescribesAnAcceptedHeader() async throws {
        let workspace = try Workspace()
        let report = VolumeInspect.Report(
            file: workspace.image, state: "luks2", verdict: "accepted",
            header: VolumeInspect.header(try LUKSVolume(path: workspace.image).readHeader().metadata))
        let text = VolumeInspect.text(report)
        #expect(text.contains("uuid         \(workspace.uuid)"))
        #expect(text.contains("keyslot 0    machine, pbkdf2-sha256, 1000 iterations"))
        #expect(text.contains("vhsm-snp     keyslot 0, seal mode platform, guest field select 0x21"))
        let command = try #require(try VHSM.parseAsRoot(["volume", "inspect", workspace.image]) as? VolumeInspect)
        try await command.run()
    }

    /// A first boot cut after its token was written (the token says provisioning), then marked ready.
    @Test func inspectShowsWhetherTheFirstBootFinished() throws {
        let workspace = try Workspace()
        let cut = try VolumeInspect.report(workspace.image)
        #expect(cut.state == "provisioning" && cut.problem == nil)
        #expect(cut.header?.provisioning == true)
        #expect(cut.verdict.contains("resumes it"))
        #expect(VolumeInspect.text(cut).contains("  state        provisioning (first boot unfinished"))
        try LUKSVolume(path: workspace.image).markReady(
            keys: VolumeKeys.derive(
                sealingKey: [UInt8](repeating: 7, count: 32), volumeUUID: workspace.uuid, mode: .platform))
        let ready = try VolumeInspect.report(workspace.image)
        #expect(ready.state == "luks2" && ready.header?.provisioning == false)
        #expect(VolumeInspect.text(ready).contains("  state        ready (it will never be formatted again)"))
    }

    /// A first boot cut before its token: a LUKS2 header with the provisioning mark and no vhsm-snp token is
    /// "unfinished" (exit 0: the launch that wrote it formats it again), not a refused header.
    @Test func inspectShowsAnUnfinishedTokenlessHeader() async throws {
        let workspace = try Workspace()
        let image = workspace.path("unfinished.img")
        #expect(FileManager.default.createFile(atPath: image, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        try handle.truncate(atOffset: 32 << 20)
        try handle.close()
        let keys = VolumeKeys.derive(
            sealingKey: [UInt8](repeating: 7, count: 32), volumeUUID: workspace.uuid, mode: .platform)
        try CryptLibrary.run { () throws(VolumeError) in
            let device = try CryptDevice(device: image)
            try device.formatLUKS2(
                uuid: workspace.uuid, integrity: false, label: ProvisioningMark.label,
                subsystem: ProvisioningMark.subsystem(uuid: workspace.uuid, key: keys.macKey))
        }
        let report = try VolumeInspect.report(image)
        #expect(report.state == "unfinished" && report.problem == nil && report.header == nil)
        #expect(report.found?.contains("provisioning mark and no vhsm-snp token, UUID \(workspace.uuid)") == true)
        let command = try #require(try VHSM.parseAsRoot(["volume", "inspect", image]) as? VolumeInspect)
        try await command.run()
    }

    @Test func inspectExitsOneForAHeaderItRefuses() async throws {
        let workspace = try Workspace()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: workspace.image))
        try handle.seek(toOffset: 4096 + 10)
        try handle.write(contentsOf: Data("X".utf8))
        try handle.close()
        let command = try #require(try VHSM.parseAsRoot(["volume", "inspect", workspace.image]) as? VolumeInspect)
        await #expect(throws: ExitCode(1)) { try await command.run() }
    }

    @Test func recoverWritesAKeyFileThatOpensTheRecoveryKeyslot() async throws {
        let workspace = try Workspace()
        let keyFile = workspace.path("recovery.key")
        let command = try #require(
            try VHSM.parseAsRoot([
                "volume", "recover", workspace.image, "--recovery-key", workspace.privateKeyPEM, "--blob",
                workspace.blob,
                "--passphrase-out", keyFile,
            ]) as? VolumeRecover)
        try await command.run()
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let passphrase = try Data(contentsOf: URL(fileURLWithPath: keyFile))
        #expect(passphrase.count == 44)
        // The same passphrase comes out of the library directly.
        let recovered = try LUKSVolume(path: workspace.image).recover(
            privateKey: try RecoveryPrivateKey(pem: String(contentsOfFile: workspace.privateKeyPEM, encoding: .utf8)))
        #expect(recovered.key.withPassphraseBytes { Data($0) } == passphrase)
        // It never overwrites.
        await #expect(throws: CLIError.self) { try await command.run() }
        // The blob as copied from a serial console: CRLF line ends, console lines around it.
        let console = workspace.path("console.txt")
        let blob = try String(contentsOfFile: workspace.blob, encoding: .utf8)
        try ("[  OK  ] Started vhsm-init\r\n" + blob.replacingOccurrences(of: "\n", with: "\r\n") + "login: \r\n")
            .write(toFile: console, atomically: true, encoding: .utf8)
        let fromConsole = try #require(
            try VHSM.parseAsRoot([
                "volume", "recover", workspace.image, "--recovery-key", workspace.privateKeyPEM, "--blob", console,
                "--passphrase-out", workspace.path("recovery-2.key"),
            ]) as? VolumeRecover)
        try await fromConsole.run()
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.path("recovery-2.key"))) == passphrase)
    }

    @Test func recoverRefusesAnotherKeyWithExitOne() async throws {
        let workspace = try Workspace()
        let stranger = workspace.path("stranger.pem")
        try P384.KeyAgreement.PrivateKey().pemRepresentation.write(toFile: stranger, atomically: true, encoding: .utf8)
        let command = try #require(
            try VHSM.parseAsRoot(["volume", "recover", workspace.image, "--recovery-key", stranger]) as? VolumeRecover)
        await #expect {
            try await command.run()
        } throws: { error in
            (error as? CLIError)?.exitCode == 1 && "\(error)".contains("not to this private key")
        }
    }
}
