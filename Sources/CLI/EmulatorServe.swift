import ArgumentParser
import Foundation
import SNP
import SNPEmulator

struct EmulatorServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Launch an emulated guest and answer its report and key requests on a unix socket.",
        discussion: """
            One launch per process: REPORT_ID and the VMRK are drawn at start. Point 'vhsm report get --emulator \
            SOCKET', 'vhsm key derive --emulator SOCKET' or a QEMU virtio-serial chardev at the socket. Stops on \
            SIGINT or SIGTERM and removes the socket.

            Exit codes: 0 stopped by SIGINT or SIGTERM; 1 refused (the socket is in use by another emulator or its \
            path holds another file, the emulated firmware refused the launch) or the socket failed; 2 usage error \
            or no readable state.
            """)

    @Option(help: "The emulator's state directory.") var state: String
    @Option(help: "The unix socket to listen on.") var socket: String
    @OptionGroup var launch: LaunchOptions
    @Option(help: "The guest's own VMPL: requests for a lower VMPL are refused (INVALID_PARAM).") var vmpl: UInt32 = 0
    @Option(
        help: """
            REPORTED_TCB the host sets for this launch (SNP_SET_CONFIG; 8 bytes hex in report order): anything up \
            to CURRENT_TCB, also below COMMITTED_TCB. Default: the chip's.
            """)
    var reportedTCB: String?

    func run() async throws {
        let (store, stored) = try EmulatorSupport.load(state)
        let chip = try EmulatorSupport.reporting(stored, reportedTCB)
        guard vmpl <= 3 else { throw CLIError.usage("--vmpl must be 0 to 3") }
        let guest = try EmulatorSupport.launch(
            chip, store, try launch.context(callerVMPL: vmpl), name: "emulator \(socket)")
        do { _ = try guest.certificateTable() } catch { throw CLIError.refused("cannot mint the VCEK: \(error)") }
        let server = EmulatorServer(guest: guest, socketPath: socket)
        let path = socket
        for signal in [SIGINT, SIGTERM] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                unlink(path)
                FileHandle.standardError.write(Data("vhsm emulator: stopped\n".utf8))
                Foundation.exit(0)
            }
            source.resume()
            SignalSources.keep(source)
        }
        let summary = """
            vhsm emulator: \(chip.product.name) chip \(Hex.encode(chip.chipID.prefix(4)))…, TCB committed \(chip.tcbVersion.hex) \
            current \(chip.currentTCBVersion.hex) reported \(chip.reportedTCBVersion.hex), \
            policy 0x\(String(guest.launch.policy.rawValue, radix: 16)), measurement \(Hex.encode(guest.launch.measurement.prefix(8)))…
            vhsm emulator: listening on \(path)
            """
        let thread = Thread {
            do {
                try server.run { FileHandle.standardError.write(Data((summary + "\n").utf8)) }
            } catch {
                FileHandle.standardError.write(Data("vhsm: \(error)\n".utf8))
                Foundation.exit(1)
            }
        }
        thread.start()
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    static func keep(_ source: any DispatchSourceSignal) { sources.append(source) }
}
