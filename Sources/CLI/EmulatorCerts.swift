import ArgumentParser
import Foundation
import SNP
import SNPEmulator

struct EmulatorCerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Write the emulated chip's certificates: ark.pem, ask.pem, vcek.der (REPORTED_TCB), cert_chain.pem.",
        discussion: """
            cert_chain.pem is ASK then ARK, the shape of AMD's KDS cert_chain.

            Exit codes: 0 written; 1 a certificate could not be made or written; 2 usage error or no readable state.
            """)

    @Option(help: "The emulator's state directory.") var state: String
    @Option(help: "Directory to write the certificates to.") var out: String
    @Option(help: "The VCEK of this REPORTED_TCB (as given to 'serve --reported-tcb'); default: the chip's.")
    var reportedTCB: String?

    func run() async throws {
        let (store, stored) = try EmulatorSupport.load(state)
        let chip = try EmulatorSupport.reporting(stored, reportedTCB)
        let vcek: AMDCertificate
        do { vcek = try store.vcek(for: chip, tcb: chip.reportedTCB) } catch {
            throw CLIError.refused(error.description)
        }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CLIError.refused("\(out): cannot create the directory: \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }
        try Inputs.write(Array(chip.ark.pemRepresentation.utf8), to: path("ark.pem"))
        try Inputs.write(Array(chip.ask.pemRepresentation.utf8), to: path("ask.pem"))
        try Inputs.write(vcek.derRepresentation, to: path("vcek.der"))
        try Inputs.write(
            Array((chip.ask.pemRepresentation + chip.ark.pemRepresentation).utf8), to: path("cert_chain.pem"))
        print("wrote ark.pem, ask.pem, vcek.der (TCB \(chip.reportedTCBVersion.hex)), cert_chain.pem to \(out)")
    }
}
