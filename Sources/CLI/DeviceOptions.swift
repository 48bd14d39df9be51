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
    /// A device or firmware failure, as one sentence naming the provider: exit 3 when the provider could not be
    /// opened or connected to (nothing was asked), 1 when it was asked and said no or failed the request.
    static func device(_ device: any GuestDevice, _ error: any Error) -> CLIError {
        guard DeviceOptions.isUnreachable(error) else { return .refused("\(device.name): \(error)") }
        return .unreachable("cannot reach the Secure Processor (\(device.name)): \(error)")
    }
}

extension DeviceOptions {
    /// Whether `error` says the provider could not be opened or connected to: no device node or no permission on
    /// it, no configfs-tsm, no emulator (or report broker) listening on the socket, or its link breaking.
    static func isUnreachable(_ error: any Error) -> Bool {
        switch error {
        case let error as GuestDeviceError:
            switch error {
            case .deviceMissing, .permissionDenied, .cannotOpen: return true
            default: return false
            }
        case let error as TSMError:
            switch error {
            case .unavailable, .cannotCreateEntry: return true
            default: return false
            }
        case let error as EmulatorError:
            if case .socket = error { return true }
            return false
        case let error as ReportBrokerError:
            if case .socket = error { return true }
            return false
        default: return false
        }
    }
}
