import ArgumentParser
import SNP
import Sealing
import Volume

struct VolumeReenroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reenroll",
        abstract: "Release a volume's recovery key to one attested launch (new chip, MEASUREMENT or TCB) as a grant "
            + "in its header.",
        discussion: """
            After a chip, measurement or TCB change vhsm-init refuses the volume and prints two armored blocks on \
            the console: a VHSM RECOVERY REQUEST (an X25519 key bound to that launch's report by REPORT_DATA) and a \
            VHSM RECOVERY CHALLENGE (sealed to your key). Give the console log with --request (text around the \
            blocks is ignored). This command then:
              1. checks the request is for a volume (its subject is DISK's UUID) and genuine: AMD's chain (or the \
            emulator's root with --trust-emulator-root), REPORT_DATA binding the key, MEASUREMENT equal to \
            --measurement, no DEBUG unless --allow-debug;
              2. opens the challenge and the volume's recovery key with your private key, and proves the recovery \
            key opens the recovery keyslot (nothing is activated);
              3. seals recovery key and challenge to the request's key and writes that grant into the header as the \
            vhsm-reenroll token (replacing an older one; nothing else in the header changes).
            Boot the same launch again: it opens the grant, enrolls a machine keyslot for its own sealing key with \
            the recovery key as authority, removes the grant and unlocks. The host carries request and grant but \
            can read neither, and cannot make a grant the guest accepts.

            --measurement is required: it is what you release the key to. Without it a host could boot any image \
            (one that copies the volume's data out) on any chip and have you release the key to it. Take it from \
            'vhsm measure' of the image you built, never from the console.

            Exit codes: 0 the grant is written; 1 refused (request not genuine or not the expected launch, another \
            volume, a key that does not open); 2 usage error or unreadable input.

            Example:
              vhsm volume reenroll disk.img --recovery-key key.pem \\
                  --request console.log --measurement "$(jq -r .measurement manifest.json)"
            """)

    @Argument(help: "The volume image or block device.") var image: String
    @Option(help: "The operator's recovery private key (unencrypted PEM, P-384 or X25519).") var recoveryKey: String
    @Option(help: "The guest's console log (or a file) with its recovery request and challenge.") var request: String
    @OptionGroup var trust: RecoveryTrustOptions
    @Flag(help: "Print JSON.") var json = false

    struct Outcome: Encodable {
        var file: String
        var volume_uuid: String
        var measurement: String
        var chip_id: String
        var product: String
        var signer: String
        var root: String
        var reported_tcb: String
        var committed_tcb: String
        var guest_key_sha256: String
        var recovery_keyslot: Int
    }

    func run() async throws {
        _ = try trust.expectedMeasurement()  // a usage error before anything is read
        let operatorKey: RecoveryPrivateKey
        do {
            operatorKey = try RecoveryPrivateKey(pem: String(decoding: try Inputs.read(recoveryKey), as: UTF8.self))
        } catch let error as VolumeError {
            throw CLIError.input(recoveryKey, error.description)
        }
        let text = String(decoding: try Inputs.read(request), as: UTF8.self)
        let parsed: RecoveryRequest
        let challenge: SealedSecret
        do {
            parsed = try RecoveryRequest.parse(armored: text)
            challenge = try SealedSecret.parse(armored: text, kind: .recoveryChallenge)
        } catch {
            throw CLIError.input(request, error.description)
        }

        let volume = LUKSVolume(path: image)
        let header: ValidatedHeader
        do { header = try volume.readHeader() } catch { throw CLIError.volume(error) }
        guard parsed.purpose == .volume, parsed.subject == header.uuid else {
            throw CLIError.refused(
                "the recovery request is for \(parsed.purpose.rawValue) '\(parsed.subject)', expected volume "
                    + "'\(header.uuid)' (\(image)): it was made for another volume")
        }
        let context = RecoveryRequest.context(purpose: .volume, subject: header.uuid)
        guard challenge.context == context else {
            throw CLIError.refused(
                "the recovery challenge is for '\(challenge.context)', expected '\(context)': it belongs to "
                    + "another volume")
        }
        let verified = try trust.verify(parsed, source: request)

        var answer: [UInt8]
        do { answer = try challenge.open(with: operatorKey.hpke) } catch {
            throw CLIError.refused(
                "\(error.description) (the guest sealed it to the recovery_key of its configuration)")
        }
        defer { for index in answer.indices { answer[index] = 0 } }
        let recovered: RecoveredKey
        do { recovered = try volume.recover(privateKey: operatorKey) } catch { throw CLIError.volume(error) }
        let grant: SealedSecret
        do {
            var secret = try ReenrollGrant.secret(recoveryKey: recovered.key, challenge: answer)
            defer { for index in secret.indices { secret[index] = 0 } }
            grant = try parsed.grant(secret)
        } catch let error as VolumeError {
            throw CLIError.refused("the recovery challenge does not open to a challenge: \(error.description)")
        } catch {
            throw CLIError.refused("cannot seal the grant to the request's key: \(error)")
        }
        do { try volume.writeReenrollGrant(grant) } catch { throw CLIError.volume(error) }

        let report = verified.report
        let outcome = Outcome(
            file: image, volume_uuid: header.uuid, measurement: Hex.encode(report.measurement),
            chip_id: Hex.encode(report.chipID.prefix(8)), product: verified.product.name,
            signer: verified.signer.description,
            root: verified.rootIsAMD ? "AMD (pinned)" : "operator-trusted (--trust-emulator-root)",
            reported_tcb: report.reportedTCB.hex, committed_tcb: report.committedTCB.hex,
            guest_key_sha256: Hex.encode(grant.recipientFingerprint), recovery_keyslot: recovered.keyslot)
        print(json ? Output.json(outcome) : Self.text(outcome))
    }

    static func text(_ outcome: Outcome) -> String {
        [
            "\(outcome.file): recovery grant written (vhsm-reenroll token) for volume \(outcome.volume_uuid)",
            "  released to  the launch with MEASUREMENT \(outcome.measurement)",
            "  chip         CHIP_ID \(outcome.chip_id)… (\(outcome.product)), report signed by the \(outcome.signer), "
                + "root \(outcome.root)",
            "  tcb          REPORTED_TCB \(outcome.reported_tcb), COMMITTED_TCB \(outcome.committed_tcb) "
                + "(the new enrollment pins COMMITTED_TCB)",
            "  guest key    sha256 \(outcome.guest_key_sha256) (the request's X25519 key)",
            "  recovery     keyslot \(outcome.recovery_keyslot) opens with the recovery key (checked, not activated)",
            "next: boot the same launch again (same chip, image, command line and firmware): vhsm-init re-enrolls "
                + "the volume with the grant, removes it and unlocks",
        ].joined(separator: "\n")
    }
}
