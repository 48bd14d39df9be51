import ArgumentParser
import Foundation
import SNP

@main
struct VHSM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhsm",
        abstract:
            "Read, get and verify AMD SEV-SNP evidence; derive sealing keys; run the software SEV-SNP emulator; "
            + "inspect and recover volumes; take vhsmd's root token with the operator key; verify a running vhsmd "
            + "(attested TLS); log in to it with this VM's evidence.",
        discussion: """
            Exit codes: 0 success (for 'report verify': genuine and acceptable; for 'server verify': trusted), 1 \
            refused (the evidence is not genuine, not bound or not acceptable, the server is unreachable, or the \
            Secure Processor said no), 2 usage error or unreadable input.

            Examples:
              vhsm emulator init --state /tmp/chip --product milan
              vhsm emulator certs --state /tmp/chip --out /tmp/certs
              vhsm emulator report --state /tmp/chip --report-data 00ff -o /tmp/report.bin
              vhsm report show /tmp/report.bin
              vhsm report verify /tmp/report.bin --cert /tmp/certs/vcek.der \\
                  --chain /tmp/certs/ask.pem --trust-emulator-root /tmp/certs/ark.pem
              vhsm server verify https://127.0.0.1:8200 --manifest out/manifest.json \\
                  --trust-emulator-root /tmp/certs/ark.pem --ca-out vhsmd.pem
              vhsm login https://127.0.0.1:8200 --role vm --manifest out/manifest.json \\
                  --trust-emulator-root /tmp/certs/ark.pem --emulator /tmp/chip.sock -o /tmp/token
            """,
        version: Release.version,
        subcommands: [
            Report.self, Key.self, Measure.self, Emulator.self, IDBlock.self, VolumeCommands.self, Operator.self,
            Server.self, Login.self, ClusterCommands.self,
        ]
    )

    /// Parses, runs, and turns every failure into one line on stderr and the documented exit code.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("vhsm: \(error.description)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            // Parse and validation errors: the message and usage, exit 2 (not ArgumentParser's 64).
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : (code.rawValue == 1 ? 1 : 2))
        }
    }
}

extension VHSM {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, verify and get SEV-SNP attestation reports.",
            subcommands: [ReportShow.self, ReportVerify.self, ReportGet.self])
    }

    struct Server: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a running vhsmd before trusting it (attested TLS).", subcommands: [ServerVerify.self])
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Derive keys from the Secure Processor (MSG_KEY_REQ).", subcommands: [KeyDerive.self])
    }

    struct Emulator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The software SEV-SNP Secure Processor, for tests and development without SEV hardware.",
            discussion: """
                The emulator mints its own AMD-shaped PKI (RSA-4096 ARK and ASK, P-384 VCEK per TCB). Its root is \
                not AMD's: verifiers accept its reports only when told to with --trust-emulator-root.
                """,
            subcommands: [EmulatorInit.self, EmulatorCerts.self, EmulatorReport.self, EmulatorServe.self])
    }
}
