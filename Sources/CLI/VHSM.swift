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
            Exit codes, the same for every command (each command's --help says which it returns and when):
              0  success (for 'report verify': genuine and acceptable; for 'server verify': trusted)
              1  refused: the evidence is not genuine, not bound or not acceptable, the server or the Secure \
            Processor said no, or an output could not be written
              2  usage error (a second line names the command's --help), or unreadable input
              3  could not reach the Secure Processor (/dev/sev-guest, configfs-tsm or the emulator's socket) or \
            the server (no connection, or no answer in time): nothing was decided; trying again later may work
            Errors are one line on stderr, starting 'vhsm: ', that names the file, option, device or server.

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

    /// Parses, runs, and turns every failure into one line on stderr and the documented exit code (see
    /// `CLIError`). A usage error, ArgumentParser's own included, adds a second line naming the command's --help.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            // --help, --version, --generate-completion-script: printed as ArgumentParser prints them, exit 0.
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(usageLine(for: error), code: CLIError.usageCode, help: commandPath(arguments: arguments))
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            fail(error.description, code: error.exitCode, help: error.pointsAtHelp ? path(to: type(of: command)) : nil)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            switch exitCode(for: error) {
            case .success: exit(withError: error)  // 'vhsm help COMMAND'
            case .validationFailure:
                fail(usageLine(for: error), code: CLIError.usageCode, help: path(to: type(of: command)))
            default: fail(message(for: error), code: CLIError.refusedCode, help: nil)
            }
        }
    }

    /// Writes `vhsm: TEXT` (and, for a usage error, where its --help is) to stderr and exits with `code`.
    static func fail(_ text: String, code: Int32, help: [any ParsableCommand.Type]?) -> Never {
        var lines = "vhsm: \(text)\n"
        if let help { lines += "vhsm: see '\(help.map { $0._commandName }.joined(separator: " ")) --help'\n" }
        FileHandle.standardError.write(Data(lines.utf8))
        Foundation.exit(code)
    }

    /// ArgumentParser's message for a parse or validation error, as one line that starts in lower case.
    static func usageLine(for error: any Error) -> String {
        let text = message(for: error).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else {
            return text
        }
        return first.lowercased() + text.dropFirst()
    }

    /// The commands `arguments` name, from the root to the deepest one they reach (what a parse error is about).
    static func commandPath(arguments: [String]) -> [any ParsableCommand.Type] {
        var path: [any ParsableCommand.Type] = [VHSM.self]
        for argument in arguments {
            if argument == "--" { break }
            let current = path[path.count - 1]
            if let next = current.configuration.subcommands.first(where: {
                $0._commandName == argument || $0.configuration.aliases.contains(argument)
            }) {
                path.append(next)
            }
        }
        return path
    }

    /// The commands from the root to `command` (just the root if it is not in the tree).
    static func path(to command: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
        func search(_ path: [any ParsableCommand.Type]) -> [any ParsableCommand.Type]? {
            if ObjectIdentifier(path[path.count - 1]) == ObjectIdentifier(command) { return path }
            for next in path[path.count - 1].configuration.subcommands {
                if let found = search(path + [next]) { return found }
            }
            return nil
        }
        return search([VHSM.self]) ?? [VHSM.self]
    }
}

extension VHSM {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, verify and get SEV-SNP attestation reports.",
            discussion:
                "Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.",
            subcommands: [ReportShow.self, ReportVerify.self, ReportGet.self])
    }

    struct Server: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a running vhsmd before trusting it (attested TLS).",
            discussion:
                "Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.",
            subcommands: [ServerVerify.self])
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Derive keys from the Secure Processor (MSG_KEY_REQ).",
            discussion:
                "Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.",
            subcommands: [KeyDerive.self])
    }

    struct Emulator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The software SEV-SNP Secure Processor, for tests and development without SEV hardware.",
            discussion: """
                The emulator mints its own AMD-shaped PKI (RSA-4096 ARK and ASK, P-384 VCEK per TCB). Its root is \
                not AMD's: verifiers accept its reports only when told to with --trust-emulator-root.

                Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.
                """,
            subcommands: [EmulatorInit.self, EmulatorCerts.self, EmulatorReport.self, EmulatorServe.self])
    }
}
