import ArgumentParser
import Foundation
import SNP

struct Measure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Compute the SEV-SNP launch MEASUREMENT (or the SEV/SEV-ES launch digest) of a QEMU guest, offline.",
        discussion: """
            The result is what the Secure Processor will put in MEASUREMENT (report offset 0x90) for a guest \
            launched with '-bios OVMF -kernel K -initrd I -append S' and kernel-hashes=on. It agrees with \
            sev-snp-measure 0.0.13 for the same arguments (the flag names are the same).

            The vCPU signature comes from --vcpu-family/--vcpu-model/--vcpu-stepping, else --vcpu-sig, else \
            --vcpu-type (a QEMU model: \(CPUSignature.names.joined(separator: ", "))); as in the reference, a \
            signature or family of 0 counts as not given. Record --guest-features (0x1 for QEMU ≥ 9.1 with \
            KVM_SEV_INIT2, 0x21 for older DebugSwap-by-default hosts) and the vCPU signature with every expected \
            measurement: both come from the host, not the image.

            Refused, where the reference tool silently prints a meaningless value or crashes: firmware without \
            SEV metadata, a firmware size that is not a multiple of 4 KiB, a kernel with firmware that has no \
            SNP_KERNEL_HASHES section, zero vCPUs.

            Example: vhsm measure --ovmf OVMF.amdsev.fd --kernel vmlinuz --initrd initrd.img \\
                       --append "console=ttyS0" --vcpus 2 --vcpu-type EPYC-Milan

            Exit codes: 0 measured; 1 refused (the inputs above); 2 usage error or unreadable input.
            """)

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case snp, seves, sev
        case snpOVMFHash = "snp:ovmf-hash"
    }

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case hex, base64, json
    }

    @Option(help: "The OVMF firmware (the AmdSev build, loaded with -bios).") var ovmf: String
    @Option(help: "The kernel (bzImage) booted with -kernel.") var kernel: String?
    @Option(help: "The initrd booted with -initrd (needs --kernel).") var initrd: String?
    @Option(parsing: .unconditional, help: "The kernel command line given with -append (needs --kernel).")
    var append: String?
    @Option(help: "Number of vCPUs at boot (-smp); every mode but sev needs it.") var vcpus: Int?
    @Option(help: "QEMU vCPU model, e.g. EPYC-Milan.") var vcpuType: String?
    @Option(help: "vCPU signature, CPUID(1).EAX (decimal, or 0x hex).") var vcpuSig: String?
    @Option(help: "vCPU family (with --vcpu-model and --vcpu-stepping).") var vcpuFamily: Int?
    @Option(help: "vCPU model.") var vcpuModel: Int?
    @Option(help: "vCPU stepping.") var vcpuStepping: Int?
    @Option(help: "SEV_FEATURES of the VMSAs (default 0x1: SNPActive).") var guestFeatures: String = "0x1"
    @Option(help: "VMM: qemu (QEMU), ec2 or gce.") var vmmType: String = "qemu"
    @Option(help: "Precomputed 'snp:ovmf-hash' of the firmware (48 bytes hex): the firmware pages are skipped.")
    var snpOvmfHash: String?
    @Option(help: "snp (48-byte MEASUREMENT), seves or sev (32-byte SHA-256 digests), snp:ovmf-hash.")
    var mode: Mode = .snp
    @Option(name: [.customLong("output"), .customLong("output-format")], help: "hex, base64 or json.")
    var output: OutputFormat = .hex

    struct Result: Encodable {
        var mode: String
        var measurement: String
        var vcpus: Int?
        var vcpu_signature: String?
        var guest_features: String
        var vmm_type: String
        var ovmf_sha256: String
        var kernel_sha256: String?
        var initrd_sha256: String?
        var cmdline: String?
    }

    func run() async throws {
        if let append, Self.argparseTakesAsOption(append) {
            // sev-snp-measure (argparse) reads a dash-led token without spaces as another option, so such a
            // command line cannot be given to it: refuse the same way rather than measure something else.
            throw CLIError.usage("argument --append: expected one argument ('\(append)' reads as an option)")
        }
        if initrd != nil && kernel == nil { throw CLIError.usage("--kernel required when using --initrd") }
        if let append, !append.isEmpty, kernel == nil { throw CLIError.usage("--kernel required when using --append") }
        let vmm = try Self.vmm(vmmType)
        let features = try Self.number(guestFeatures, option: "--guest-features")
        // The kernel and initrd enter only through their SHA-256, hashed from their mappings. The initrd (usually
        // the largest input) hashes on the other core while this one does the firmware pages and the kernel.
        async let initrdDigest = initrd.map { try MappedFile.sha256(of: $0) }
        let firmware = try MappedFile(ovmf).bytes
        if mode == .snpOVMFHash {
            return try emit(try measured { try LaunchDigest.ovmfHash(firmware) }, inputs: nil, firmware: firmware)
        }
        if mode != .sev && vcpus == nil { throw CLIError.usage("missing --vcpus N in guest mode '\(mode.rawValue)'") }
        if let vcpus, vcpus < 1, mode != .sev { throw CLIError.usage("--vcpus must be at least 1, got \(vcpus)") }
        var inputs = LaunchInputs(
            ovmf: firmware, kernelFile: nil, initrdFile: nil, append: append, vcpus: vcpus ?? 0,
            vcpuSignature: try signature(vmm: vmm), guestFeatures: features, vmmType: vmm)
        if let snpOvmfHash {
            guard mode == .snp else { throw CLIError.usage("--snp-ovmf-hash only works with --mode snp") }
            inputs.ovmfHash = try Inputs.hex(snpOvmfHash, option: "--snp-ovmf-hash", count: 48)
        } else if mode == .snp {
            // The firmware pages' digest is the seed the rest of the launch continues from (what
            // --snp-ovmf-hash gives): computed here while the kernel and initrd hash on the other core.
            inputs.ovmfHash = try measured { try LaunchDigest.ovmfHash(firmware) }
        }
        inputs.kernel = try kernel.map { try MeasuredFile(sha256: try MappedFile.sha256(of: $0)) }
        inputs.initrd = try await initrdDigest.map { try MeasuredFile(sha256: $0) }
        let digest: [UInt8]
        switch mode {
        case .snp: digest = try measured { try LaunchDigest.snp(inputs) }
        case .seves: digest = try measured { try LaunchDigest.sevES(inputs) }
        case .sev: digest = try measured { try LaunchDigest.sev(inputs) }
        case .snpOVMFHash: digest = []
        }
        try emit(digest, inputs: inputs, firmware: firmware)
    }

    /// The vCPU signature, with sev-snp-measure 0.0.13's precedence and its rule that 0 means "not given".
    private func signature(vmm: VMMType) throws -> UInt32 {
        if mode == .sev { return 0 }
        if let vcpuFamily, vcpuFamily != 0 {
            guard let vcpuModel, let vcpuStepping else {
                throw CLIError.usage("--vcpu-family needs --vcpu-model and --vcpu-stepping")
            }
            return CPUSignature.of(family: vcpuFamily, model: vcpuModel, stepping: vcpuStepping)
        }
        if let vcpuSig {
            let value = try Self.number(vcpuSig, option: "--vcpu-sig")
            guard value <= UInt32.max else { throw CLIError.usage("--vcpu-sig \(vcpuSig) does not fit in 32 bits") }
            if value != 0 { return UInt32(value) }
        }
        if let vcpuType {
            guard let signature = CPUSignature.named(vcpuType) else {
                throw CLIError.usage(
                    "--vcpu-type '\(vcpuType)' is not a known QEMU model; known: "
                        + CPUSignature.names.joined(separator: ", ") + " (or give --vcpu-sig)")
            }
            return signature
        }
        guard vmm != .qemu else {
            throw CLIError.usage("missing --vcpu-type or --vcpu-sig or --vcpu-family in guest mode '\(mode.rawValue)'")
        }
        return 0
    }

    private func measured(_ body: () throws -> [UInt8]) throws -> [UInt8] {
        do { return try body() } catch let error as MeasurementError {
            throw CLIError.refused("\(ovmf): \(error)")
        }
    }

    private func emit(_ digest: [UInt8], inputs: LaunchInputs?, firmware: [UInt8]) throws {
        switch output {
        case .hex: print(Hex.encode(digest))
        case .base64: print(Data(digest).base64EncodedString())
        case .json:
            let result = Result(
                mode: mode.rawValue, measurement: Hex.encode(digest), vcpus: inputs.map(\.vcpus),
                vcpu_signature: inputs.map { "0x" + String($0.vcpuSignature, radix: 16) },
                guest_features: "0x" + String(inputs?.guestFeatures ?? 1, radix: 16),
                vmm_type: inputs?.vmmType.rawValue ?? "qemu", ovmf_sha256: Hex.encode(SHA256Digest.of(firmware)),
                kernel_sha256: inputs?.kernel.map { Hex.encode($0.sha256) },
                initrd_sha256: inputs?.initrd.map { Hex.encode($0.sha256) }, cmdline: inputs?.append)
            print(Output.json(result))
        }
    }

    static func vmm(_ text: String) throws -> VMMType {
        guard let vmm = VMMType(rawValue: text == "QEMU" ? "qemu" : text) else {
            throw CLIError.usage("unknown VMM type '\(text)'; use qemu, ec2 or gce")
        }
        return vmm
    }

    /// argparse's rule for a value after an option: a token starting with "-" is another option unless it is "-"
    /// alone, a negative number, or contains a space.
    static func argparseTakesAsOption(_ value: String) -> Bool {
        guard value.hasPrefix("-"), value != "-" else { return false }
        if value.contains(" ") { return false }
        if Double(value) != nil { return false }
        return true
    }

    /// An integer as Python's `int(text, 0)` reads it: decimal, or 0x/0o/0b prefixed.
    static func number(_ text: String, option: String) throws -> UInt64 {
        let lower = text.lowercased().replacing("_", with: "")
        let parsed: UInt64?
        if lower.hasPrefix("0x") {
            parsed = UInt64(lower.dropFirst(2), radix: 16)
        } else if lower.hasPrefix("0o") {
            parsed = UInt64(lower.dropFirst(2), radix: 8)
        } else if lower.hasPrefix("0b") {
            parsed = UInt64(lower.dropFirst(2), radix: 2)
        } else {
            parsed = UInt64(lower, radix: 10)
        }
        guard let parsed else { throw CLIError.usage("\(option) '\(text)' is not a number (decimal or 0x hex)") }
        return parsed
    }
}
