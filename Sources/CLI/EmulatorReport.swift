import ArgumentParser
import SNP
import SNPEmulator

struct EmulatorReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Launch an emulated guest once and write one signed report, without a socket.",
        discussion: """
            Exit codes: 0 written; 1 the emulated firmware refused the launch or the request (the policy, an ID \
            block that does not match) or the report could not be written; 2 usage error or no readable state.
            """)

    @Option(help: "The emulator's state directory.") var state: String
    @Option(help: "REPORT_DATA: up to 64 bytes hex, zero-padded.") var reportData: String
    @OptionGroup var launch: LaunchOptions
    @Option(help: "The VMPL the report is requested for (0–3).") var vmpl: UInt32 = 0
    @Option(name: .shortAndLong, help: "Where to write the raw report.") var output: String
    @Option(help: "REPORTED_TCB the host sets (SNP_SET_CONFIG), up to CURRENT_TCB; default: the chip's.")
    var reportedTCB: String?

    func run() async throws {
        let (store, stored) = try EmulatorSupport.load(state)
        let chip = try EmulatorSupport.reporting(stored, reportedTCB)
        let data = try Inputs.paddedHex(reportData, option: "--report-data", count: 64)
        guard vmpl <= 3 else { throw CLIError.usage("--vmpl must be 0 to 3") }
        let guest = try EmulatorSupport.launch(
            chip, store, try launch.context(callerVMPL: 0), name: "emulator \(state)")
        let report: AttestationReport
        do { report = try guest.attestationReport(try ReportRequest(reportData: data, vmpl: vmpl)) } catch {
            throw CLIError.refused("emulator \(state): \(error)")
        }
        try Inputs.write(report.bytes, to: output)
        print("wrote \(output): \(chip.product.name) report version \(report.version), signed by the emulator's VCEK")
    }
}
