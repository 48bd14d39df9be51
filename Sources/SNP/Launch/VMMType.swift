/// The VMM that launches the guest (`--vmm-type`). It changes a few VMSA fields and how some metadata
/// sections are measured; QEMU is the default and the only one this project launches itself.
public enum VMMType: String, CaseIterable, Sendable {
    /// QEMU ≥ 9.1 with KVM_SEV_INIT2: the layout in the research note, §5.
    case qemu
    /// AWS EC2: BSP CS attrib 0x9a, SS 0x92, TR 0x83, RDX 0x600, MXCSR/FCW 0; CPUID pages measured last.
    case ec2
    /// Google Compute Engine: RDX 0x600, MXCSR/FCW 0, G_PAT 0x00070106; SNP_SEC_MEM pages UNMEASURED.
    case gce
}
