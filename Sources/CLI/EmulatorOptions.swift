public import ArgumentParser
public import SNP
import SNPEmulator

/// The launch inputs the hypervisor and guest owner fix (SNP_LAUNCH_START / SNP_LAUNCH_UPDATE / SNP_LAUNCH_FINISH).
///
/// MEASUREMENT is either given or measured from the very files QEMU boots (--ovmf, --kernel, --initrd, --append,
/// --vcpus, --vcpu-type, --guest-features), with the same calculator as 'vhsm measure'.
struct LaunchOptions: ParsableArguments {
    @Option(help: "MEASUREMENT to report (48 bytes hex); default: measured from --ovmf, else all zero.")
    var measurement: String?
    @Option(help: "Guest POLICY (hex; default 0x30000: SMT allowed, bit 17).") var policy: String?
    @Option(help: "HOST_DATA (32 bytes hex; default all zero).") var hostData: String?
    @Option(help: "Measure the launch: the OVMF firmware QEMU loads with -bios.") var ovmf: String?
    @Option(help: "The kernel QEMU boots (with --ovmf).") var kernel: String?
    @Option(help: "The initrd QEMU boots (with --ovmf and --kernel).") var initrd: String?
    @Option(parsing: .unconditional, help: "The kernel command line (with --ovmf and --kernel).")
    var append: String?
    @Option(help: "vCPUs at boot (with --ovmf; default 1).") var vcpus: Int = 1
    @Option(help: "QEMU vCPU model (with --ovmf; default EPYC-v4).") var vcpuType: String = "EPYC-v4"
    @Option(help: "SEV_FEATURES of the VMSAs (with --ovmf; default 0x1).") var guestFeatures: String = "0x1"
    @Option(help: "An ID block directory from 'vhsm idblock create' (id-block.bin, id-auth.bin).") var idBlock: String?

    func context(callerVMPL: UInt32) throws -> LaunchContext {
        var context = LaunchContext(
            measurement: try launchMeasurement(),
            policy: try policy.map(Inputs.policy) ?? GuestPolicy(rawValue: 0x30000),
            hostData: try hostData.map { try Inputs.hex($0, option: "--host-data", count: 32) }
                ?? Array(repeating: 0, count: 32),
            callerVMPL: callerVMPL)
        if let idBlock {
            let (block, authentication) = try IDBlockInputs.load(idBlock)
            do { try context.accept(idBlock: block, authentication: authentication) } catch {
                throw CLIError.refused(error.description)
            }
        }
        return context
    }

    private func launchMeasurement() throws -> [UInt8] {
        if let measurement {
            guard ovmf == nil else {
                throw CLIError.usage("give either --measurement or --ovmf (to measure), not both")
            }
            return try Inputs.hex(measurement, option: "--measurement", count: 48)
        }
        guard let ovmf else {
            guard kernel == nil, initrd == nil, append == nil else {
                throw CLIError.usage("--kernel, --initrd and --append are measured only together with --ovmf")
            }
            return Array(repeating: 0, count: 48)
        }
        guard let signature = CPUSignature.named(vcpuType) else {
            throw CLIError.usage(
                "--vcpu-type '\(vcpuType)' is not a known QEMU model (\(CPUSignature.names.joined(separator: ", ")))")
        }
        let inputs = LaunchInputs(
            ovmf: try Inputs.read(ovmf, limit: Inputs.measuredLimit),
            kernel: try kernel.map { try Inputs.read($0, limit: Inputs.measuredLimit) },
            initrd: try initrd.map { try Inputs.read($0, limit: Inputs.measuredLimit) },
            append: append, vcpus: vcpus, vcpuSignature: signature,
            guestFeatures: try Measure.number(guestFeatures, option: "--guest-features"))
        do { return try LaunchDigest.snp(inputs) } catch { throw CLIError.refused("\(ovmf): \(error)") }
    }
}

extension Product: ExpressibleByArgument {}

enum EmulatorSupport {
    static func load(_ state: String) throws -> (ChipStore, ChipState) {
        let store = ChipStore(directory: state)
        do { return (store, try store.load()) } catch { throw CLIError.usage(error.description) }
    }

    /// An optional TCB option as levels of `product`'s layout; reserved bytes are refused.
    static func levels(_ text: String?, option: String, product: Product) throws -> TCBLevels? {
        guard let text else { return nil }
        let tcb = try Inputs.tcb(text, option: option)
        guard !tcb.hasReservedBits(product.tcbLayout) else {
            throw CLIError.usage("\(option) \(text) sets bytes that are reserved in the \(product.name) TCB layout")
        }
        return tcb.levels(product.tcbLayout)
    }

    /// `chip` with the host's REPORTED_TCB from `--reported-tcb`, when given (SNP_SET_CONFIG before the launch).
    static func reporting(_ chip: ChipState, _ reportedTCB: String?) throws -> ChipState {
        guard let reported = try levels(reportedTCB, option: "--reported-tcb", product: chip.product) else {
            return chip
        }
        do { return try chip.settingReportedTCB(reported) } catch { throw CLIError.usage(error.description) }
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
