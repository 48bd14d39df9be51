import ArgumentParser
import SNP
import SNPEmulator
import SNPGuest
import SystemPackage

/// Where requests to the Secure Processor go. Exactly one provider; there is never a fallback to another.
struct DeviceOptions: ParsableArguments {
    @Option(help: "The SEV guest device (default /dev/sev-guest).") var device: String?
    @Flag(help: "Use configfs-tsm (/sys/kernel/config/tsm/report) instead of the device; reports only.") var tsm = false
    @Option(help: "A 'vhsm emulator serve' socket (or the virtio-serial port it is connected to).") var emulator:
        String?

    func validate() throws {
        let chosen = [device != nil, tsm, emulator != nil].filter { $0 }.count
        guard chosen <= 1 else { throw ValidationError("choose one of --device, --tsm and --emulator") }
    }

    func open(allowTSM: Bool = true) throws -> any GuestDevice {
        if let emulator { return EmulatorClient(path: emulator) }
        if tsm {
            guard allowTSM else {
                throw CLIError.usage("--tsm cannot derive keys: configfs-tsm has no MSG_KEY_REQ; use --device")
            }
            return TSMReportDevice()
        }
        return SEVGuestDevice(path: FilePath(device ?? "/dev/sev-guest"))
    }
}

extension CLIError {
    /// A device or firmware failure, as one sentence naming the provider.
    static func device(_ device: any GuestDevice, _ error: any Error) -> CLIError {
        .refused("\(device.name): \(error)")
    }
}
