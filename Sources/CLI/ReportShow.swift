import ArgumentParser
import SNP

struct ReportShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print every field of a raw ATTESTATION_REPORT (1184 bytes).",
        discussion: """
            Does not check the signature; use 'vhsm report verify' for that.

            Exit codes: 0 printed; 1 not a valid ATTESTATION_REPORT (e.g. a version vhsm does not know); 2 usage \
            error or unreadable input (missing, or not 1184 bytes).
            """)

    @Argument(help: "A raw report file, as 'vhsm report get' or snpguest writes it.") var file: String
    @Flag(help: "Print JSON (every field, bytes as hex).") var json = false

    func run() async throws {
        let report = try Inputs.report(file)
        print(json ? Output.json(ReportJSON(report)) : Output.text(report))
    }
}
