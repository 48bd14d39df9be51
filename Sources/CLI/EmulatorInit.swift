import ArgumentParser
import Foundation
import SNP
import SNPEmulator

struct EmulatorInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an emulated chip: secret, CHIP_ID, TCB and an AMD-shaped test PKI.",
        discussion: """
            Writes STATE/chip.json (secret, mode 0600), ark.key, ask.key (0600), ark.pem and ask.pem. Generating the \
            two RSA-4096 keys takes a few seconds. An existing chip is never overwritten.

            Exit codes: 0 created; 1 the state could not be written; 2 usage error (an existing chip, inconsistent \
            TCB options).
            """)

    @Option(help: "State directory to create.") var state: String
    @Option(help: "Product line: milan, genoa or turin.") var product: Product
    @Option(help: "COMMITTED_TCB of the platform (8 bytes hex in report order); default: a recent real one.")
    var tcb: String?
    @Option(help: "CURRENT_TCB, at or above --tcb per component (an update not yet committed); default: --tcb.")
    var currentTCB: String?
    @Option(help: "REPORTED_TCB, the host's SNP_SET_CONFIG choice, at most CURRENT_TCB; default: CURRENT_TCB.")
    var reportedTCB: String?

    func run() async throws {
        let store = ChipStore(directory: state)
        guard !store.exists else { throw CLIError.usage(EmulatorError.stateExists(path: state).description) }
        let levels = try EmulatorSupport.levels(tcb, option: "--tcb", product: product)
        let current = try EmulatorSupport.levels(currentTCB, option: "--current-tcb", product: product)
        let reported = try EmulatorSupport.levels(reportedTCB, option: "--reported-tcb", product: product)
        FileHandle.standardError.write(Data("generating the emulator's ARK and ASK (RSA-4096)…\n".utf8))
        let chip: ChipState
        do {
            chip = try ChipState.create(product: product, tcb: levels, currentTCB: current, reportedTCB: reported)
        } catch let error as EmulatorError {
            // Inconsistent TCB options are a usage error (exit 2), like any other bad option value.
            if case .tcbOrder = error { throw CLIError.usage("cannot create the chip: \(error)") }
            throw CLIError.refused("cannot create the chip: \(error)")
        } catch {
            throw CLIError.refused("cannot create the chip: \(error)")
        }
        do { try store.create(chip) } catch { throw CLIError.refused(error.description) }
        let ark = Hex.encode(chip.ark.fingerprintSHA256)
        print(
            """
            created an emulated \(product.name) chip in \(state)
              chip id      \(Hex.encode(chip.chipID.prefix(product.chipIDLength)))
              committed    \(chip.tcbVersion.hex)  (\(chip.tcb))
              current      \(chip.currentTCBVersion.hex)  (\(chip.currentTCB))
              reported     \(chip.reportedTCBVersion.hex)  (\(chip.reportedTCB))
              report       version \(chip.profile.reportVersion), firmware \(chip.profile.firmware)
              emulator ARK SHA-256 \(ark) (not an AMD root: verifiers need --trust-emulator-root)
            """)
    }
}

extension AMDCertificate {
    var fingerprintSHA256: [UInt8] { SHA256Digest.of(derRepresentation) }
}
