public import ArgumentParser
public import SNP
import SNPEmulator

/// The launch inputs the hypervisor and guest owner fix (SNP_LAUNCH_START / SNP_LAUNCH_FINISH).
struct LaunchOptions: ParsableArguments {
    @Option(help: "MEASUREMENT to report (48 bytes hex; default all zero).") var measurement: String?
    @Option(help: "Guest POLICY (hex; default 0x30000: SMT allowed, bit 17).") var policy: String?
    @Option(help: "HOST_DATA (32 bytes hex; default all zero).") var hostData: String?

    func context(callerVMPL: UInt32) throws -> LaunchContext {
        LaunchContext(
            measurement: try measurement.map { try Inputs.hex($0, option: "--measurement", count: 48) }
                ?? Array(repeating: 0, count: 48),
            policy: try policy.map(Inputs.policy) ?? GuestPolicy(rawValue: 0x30000),
            hostData: try hostData.map { try Inputs.hex($0, option: "--host-data", count: 32) }
                ?? Array(repeating: 0, count: 32),
            callerVMPL: callerVMPL)
    }
}

extension Product: ExpressibleByArgument {}

enum EmulatorSupport {
    static func load(_ state: String) throws -> (ChipStore, ChipState) {
        let store = ChipStore(directory: state)
        do { return (store, try store.load()) } catch { throw CLIError.usage(error.description) }
    }

    static func launch(
        _ chip: ChipState, _ store: ChipStore, _ context: LaunchContext, name: String
    ) throws
        -> EmulatedGuest
    {
        do { return try EmulatedGuest(chip: chip, launch: context, store: store, name: name) } catch {
            throw CLIError.refused(error.description)
        }
    }
}
