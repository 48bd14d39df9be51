/// Everything a launch measurement depends on, as sev-snp-measure's command line names it. Record these
/// next to every expected measurement: the guest features and the vCPU signature come from the host and
/// the QEMU version, not from the image.
public struct LaunchInputs: Sendable {
    /// The firmware image (`--ovmf`), or only its last 4 KiB together with `ovmfHash`.
    public var ovmf: [UInt8]
    /// The bzImage as on disk (`--kernel`); nil measures the hashes page as ZERO pages.
    public var kernel: MeasuredFile?
    /// The initrd (`--initrd`); nil is hashed as empty input.
    public var initrd: MeasuredFile?
    /// The kernel command line (`--append`); nil or "" is hashed as a single NUL.
    public var append: String?
    /// The number of vCPUs present at boot (`-smp`, `--vcpus`); ignored by `LaunchDigest.sev`.
    public var vcpus: Int
    /// CPUID Fn0000_0001_EAX placed in RDX of every VMSA (`--vcpu-type`/`--vcpu-sig`/family-model-stepping).
    public var vcpuSignature: UInt32
    /// SEV_FEATURES of every SNP VMSA (`--guest-features`): 0x1 for QEMU ≥ 9.1 with KVM_SEV_INIT2,
    /// 0x21 for hosts that enabled DebugSwap by default.
    public var guestFeatures: UInt64 = 1
    /// The VMM (`--vmm-type`).
    public var vmmType: VMMType = .qemu
    /// The `--snp-ovmf-hash` seed (48 bytes): the digest after the firmware pages, which are then skipped.
    public var ovmfHash: [UInt8]? = nil

    public init(
        ovmf: [UInt8], kernel: [UInt8]? = nil, initrd: [UInt8]? = nil, append: String? = nil, vcpus: Int,
        vcpuSignature: UInt32, guestFeatures: UInt64 = 1, vmmType: VMMType = .qemu, ovmfHash: [UInt8]? = nil
    ) {
        self.ovmf = ovmf
        self.kernel = kernel.map(MeasuredFile.init(bytes:))
        self.initrd = initrd.map(MeasuredFile.init(bytes:))
        self.append = append
        self.vcpus = vcpus
        self.vcpuSignature = vcpuSignature
        self.guestFeatures = guestFeatures
        self.vmmType = vmmType
        self.ovmfHash = ovmfHash
    }

    /// The same, with the kernel and initrd given as files already hashed.
    public init(
        ovmf: [UInt8], kernelFile: MeasuredFile?, initrdFile: MeasuredFile?, append: String? = nil, vcpus: Int,
        vcpuSignature: UInt32, guestFeatures: UInt64 = 1, vmmType: VMMType = .qemu, ovmfHash: [UInt8]? = nil
    ) {
        self.init(
            ovmf: ovmf, append: append, vcpus: vcpus, vcpuSignature: vcpuSignature, guestFeatures: guestFeatures,
            vmmType: vmmType, ovmfHash: ovmfHash)
        kernel = kernelFile
        initrd = initrdFile
    }
}
