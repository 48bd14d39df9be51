import ArgumentParser
import Foundation
import SNP

struct ReportGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Ask the Secure Processor for an attestation report (MSG_REPORT_REQ) and save it raw.",
        discussion: """
            Inside an SEV-SNP guest this uses /dev/sev-guest (or configfs-tsm with --tsm); with --emulator it asks \
            a running 'vhsm emulator serve'. With --certs-out the extended report also brings the host's \
            certificate table, written as vcek.der (or vlek.der), ask.pem, ark.pem and certs.bin (the table).

            Exit codes: 0 the report was written; 1 the Secure Processor refused or failed the request (e.g. a VMPL \
            below the guest's own), or an output could not be written; 2 usage error; 3 the Secure Processor could \
            not be reached (no /dev/sev-guest or no permission on it, no configfs-tsm, or no emulator listening on \
            --emulator): nothing was asked, check the device or start 'vhsm emulator serve'.
            """)

    @Option(help: "REPORT_DATA: up to 64 bytes hex (a nonce or a hash), zero-padded.") var reportData: String?
    @Option(help: "The VMPL to report for (0–3; not below the guest's own).") var vmpl: UInt32 = 0
    @OptionGroup var source: DeviceOptions
    @Option(help: "Write the host's certificates to this directory (extended report).") var certsOut: String?
    @Option(name: .shortAndLong, help: "Where to write the raw report.") var output: String
    @Flag(help: "Print the report as JSON after saving it.") var json = false

    func run() async throws {
        let data = try reportData.map { try Inputs.paddedHex($0, option: "--report-data", count: 64) }
        let request: ReportRequest
        do { request = try ReportRequest(reportData: data ?? Array(repeating: 0, count: 64), vmpl: vmpl) } catch {
            throw CLIError.usage("\(error)")
        }
        guard vmpl <= 3 else { throw CLIError.usage("--vmpl must be 0 to 3") }
        let device = try source.open()
        let report: AttestationReport
        var table: CertificateTable?
        do {
            if certsOut != nil {
                let (response, certificates) = try device.extendedReport(request)
                report = try response.checked()
                table = certificates
            } else {
                report = try device.attestationReport(request)
            }
        } catch {
            throw CLIError.device(device, error)
        }
        try Inputs.write(report.bytes, to: output)
        if let certsOut, let table { try writeCertificates(table, to: certsOut) }
        if json {
            print(Output.json(ReportJSON(report)))
        } else {
            print("wrote \(output): version \(report.version) report, measurement \(Hex.encode(report.measurement))")
        }
    }

    private func writeCertificates(_ table: CertificateTable, to directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CLIError.refused("\(directory): cannot create the directory: \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        try Inputs.write(table.bytes, to: path("certs.bin"))
        var written: [String] = ["certs.bin"]
        for entry in table.entries {
            let name: String
            var bytes = entry.data
            switch entry.kind {
            case .vcek?: name = "vcek.der"
            case .vlek?: name = "vlek.der"
            case .ask?, .ark?:
                let base = entry.kind == .ark ? "ark" : "ask"
                let certificate = try? AMDCertificate(derEncoded: entry.data)
                let isASVK = certificate?.subject.commonName?.hasPrefix("SEV-VLEK") == true
                name = (isASVK ? "asvk" : base) + ".pem"
                bytes = Array((certificate?.pemRepresentation ?? "").utf8)
            case .crl?: name = "crl.der"
            case nil: name = "\(entry.guidString).bin"
            }
            try Inputs.write(bytes, to: path(name))
            written.append(name)
        }
        FileHandle.standardError.write(Data("wrote \(written.joined(separator: ", ")) to \(directory)\n".utf8))
    }
}
