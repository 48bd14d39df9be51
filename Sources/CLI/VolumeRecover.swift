import ArgumentParser
import SystemPackage
import Volume

struct VolumeRecover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Decrypt a volume's recovery key with the operator's private key and prove it opens a keyslot.",
        discussion: """
            The recovery key comes from the volume's vhsm-recovery token, or from the blob printed at format time \
            (--blob). It is decrypted with HPKE using your P-384 or X25519 private key, then checked against the \
            recovery keyslot without activating anything. With --passphrase-out it is written (mode 0600, never \
            overwriting) as a key file for 'cryptsetup open --key-file FILE --key-slot N' or for re-enrolment.

            Exit codes: 0 the recovery key opens its keyslot; 1 it does not, the header is refused, or the key file \
            cannot be written; 2 usage error or unreadable input.
            """)

    @Argument(help: "A volume image or block device.") var image: String
    @Option(help: "The recovery private key (unencrypted PEM, P-384 or X25519).") var recoveryKey: String
    @Option(
        help: ArgumentHelp(
            "A file holding the armored blob printed at format time, used instead of the header's token.",
            discussion: "Text around the armor lines, and CRLF line ends from a serial console, are accepted.",
            valueName: "file")) var blob: String?
    @Option(help: "Write the recovery passphrase to this new file (mode 0600).") var passphraseOut: String?

    func run() async throws {
        let privateKey: RecoveryPrivateKey
        do {
            privateKey = try RecoveryPrivateKey(pem: String(decoding: try Inputs.read(recoveryKey), as: UTF8.self))
        } catch let error as VolumeError {
            throw CLIError.input(recoveryKey, error.description)
        }
        let blobText = try blob.map { String(decoding: try Inputs.read($0), as: UTF8.self) }
        let recovered: RecoveredKey
        do { recovered = try LUKSVolume(path: image).recover(blob: blobText, privateKey: privateKey) } catch {
            throw CLIError.volume(error)
        }
        if let passphraseOut { try write(recovered.key, to: passphraseOut) }
        print(
            "\(image): the recovery key opens keyslot \(recovered.keyslot) of volume \(recovered.volumeUUID) "
                + "(checked without activation)")
        if let passphraseOut {
            print("  key file     \(passphraseOut)")
            print("  unlock with  cryptsetup open --key-file \(passphraseOut) --key-slot \(recovered.keyslot) \\")
            print("                 \(image) NAME")
        }
    }

    private func write(_ key: RecoveryKey, to path: String) throws {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: [.ownerReadWrite])
        } catch {
            throw CLIError(
                exitCode: 2, description: "\(path): cannot create the key file: \(error) (it must not exist)")
        }
        defer { try? fd.close() }
        do {
            _ = try key.withPassphraseBytes { try fd.writeAll($0) }
        } catch {
            throw CLIError(exitCode: 1, description: "\(path): cannot write the key file: \(error)")
        }
    }
}
