import ArgumentParser
import Foundation
import SNP
import Testing

@testable import CLI

/// One contract for exit codes: 0 success, 1 refused, 2 usage error or unreadable input, 3 the Secure Processor or
/// the server could not be reached. Every command's --help states the codes it returns.
@Suite struct ExitCodeContractTests {
    /// Every leaf command under `command`, with its name as typed ("report verify").
    static func leaves(
        of command: any ParsableCommand.Type, path: [String] = []
    ) -> [(name: String, type: any ParsableCommand.Type)] {
        let subcommands = command.configuration.subcommands
        guard !subcommands.isEmpty else { return [(path.joined(separator: " "), command)] }
        return subcommands.flatMap { leaves(of: $0, path: path + [$0._commandName]) }
    }

    /// The paragraph of `help` that starts with "Exit codes:", its line breaks and indentation folded to spaces.
    static func exitCodeStatement(_ help: String) -> String? {
        let paragraphs = help.components(separatedBy: "\n\n")
        guard let paragraph = paragraphs.first(where: { $0.contains("Exit codes:") }) else { return nil }
        let folded = paragraph.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return String(folded[folded.range(of: "Exit codes:")!.lowerBound...])
    }

    /// Whether the statement gives `code` a meaning: "Exit codes: 0 …", "…; 1 …".
    static func names(_ statement: String, _ code: Int) -> Bool {
        statement.contains("Exit codes: \(code) ") || statement.contains("; \(code) ")
    }

    @Test func theTreeHasTheCommandsTheREADMETours() {
        let names = Set(Self.leaves(of: VHSM.self).map(\.name))
        for expected in [
            "report show", "report verify", "report get", "key derive", "measure", "emulator init", "emulator serve",
            "idblock create", "volume recover", "operator init", "operator recover", "server verify", "login",
            "cluster members",
        ] {
            #expect(names.contains(expected), "\(expected) is not in \(names.sorted())")
        }
    }

    /// Every leaf says "Exit codes:" and gives 0, 1 and 2 a meaning; 3 exactly when it reaches the Secure Processor
    /// (it takes --emulator, --device and --tsm) or a server (it takes a URL).
    @Test func everyLeafCommandsHelpStatesEachExitCodeItReturns() {
        let leaves = Self.leaves(of: VHSM.self)
        #expect(leaves.count >= 20)
        for (name, command) in leaves {
            let help = VHSM.helpMessage(for: command, columns: 120)
            guard let statement = Self.exitCodeStatement(help) else {
                Issue.record("vhsm \(name) --help states no exit codes:\n\(help)")
                continue
            }
            let reachesOut = help.contains("--emulator <") || help.contains("<url>")
            for code in [0, 1, 2] {
                #expect(
                    Self.names(statement, code), "vhsm \(name) --help does not say what \(code) means: \(statement)")
            }
            #expect(
                Self.names(statement, 3) == reachesOut,
                "vhsm \(name) --help \(reachesOut ? "does not say" : "says") what 3 means: \(statement)")
            if reachesOut { #expect(statement.contains("could not be reached"), "vhsm \(name): \(statement)") }
        }
    }

    @Test func theRootHelpListsTheContractAndTheGroupsPointAtIt() {
        let help = VHSM.helpMessage(for: VHSM.self, columns: 120)
        for line in [
            "0  success", "1  refused", "2  usage error",
            "3  could not reach the Secure Processor (/dev/sev-guest, configfs-tsm",
        ] {
            #expect(help.contains(line), "\(line)")
        }
        func groups(_ command: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
            let subcommands = command.configuration.subcommands
            return subcommands.isEmpty ? [] : [command] + subcommands.flatMap(groups)
        }
        let below = groups(VHSM.self).dropFirst()
        #expect(below.count >= 8)
        for group in below {
            let statement = Self.exitCodeStatement(VHSM.helpMessage(for: group, columns: 120)) ?? ""
            #expect(statement.hasPrefix("Exit codes:"), "vhsm \(group._commandName) --help states no exit codes")
        }
    }

    /// Refused, unreachable and usage failures of the device are told apart by the provider's own typed errors.
    @Test func deviceFailuresAreUnreachableOnlyWhenNothingWasAsked() throws {
        let device = try DeviceOptions.parse(["--emulator", "/nonexistent/vhsm-test.sock"]).open()
        let error = #expect(throws: (any Error).self) { _ = try device.attestationReport(.init()) }
        let failure = CLIError.device(device, try #require(error))
        #expect(failure.exitCode == 3)
        #expect(
            failure.description.hasPrefix(
                "cannot reach the Secure Processor (emulator at /nonexistent/vhsm-test.sock): connect to "
                    + "'/nonexistent/vhsm-test.sock' failed: No such file or directory"), "\(failure.description)")
        let missing = try DeviceOptions.parse(["--device", "/nonexistent/sev-guest"]).open()
        let absent = #expect(throws: (any Error).self) { _ = try missing.attestationReport(.init()) }
        #expect(CLIError.device(missing, try #require(absent)).exitCode == 3)
        struct Refusal: Error {}
        #expect(CLIError.device(device, Refusal()).exitCode == 1)
    }

    /// A parse error names the command whose --help the hint points at; a usage error thrown by a command too.
    @Test func usageHintsNameTheCommandTyped() {
        func typed(_ arguments: [String]) -> String {
            VHSM.commandPath(arguments: arguments).map { $0._commandName }.joined(separator: " ")
        }
        #expect(typed(["report", "verify", "x.bin", "--frobnicate"]) == "vhsm report verify")
        #expect(typed(["report", "--frobnicate"]) == "vhsm report")
        #expect(typed(["--frobnicate"]) == "vhsm")
        #expect(typed(["cluster", "rotate-root", "https://h:1"]) == "vhsm cluster rotate-root")
        // A positional value that happens to be a command's name is not a command below a leaf.
        #expect(typed(["report", "show", "verify"]) == "vhsm report show")
        #expect(VHSM.path(to: ServerVerify.self).map { $0._commandName } == ["vhsm", "server", "verify"])
        #expect(
            VHSM.usageLine(for: ValidationError("choose one of --device, --tsm and --emulator"))
                == "choose one of --device, --tsm and --emulator")
    }
}
